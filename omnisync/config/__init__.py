"""Loading and validating the YAML configuration.

The whole file is validated up front and every problem is reported at once with its file,
line and dotted key (``config.yaml:14: channels.shop.expect.price.vat: ...``). Unknown keys
are errors, so a typo never silently turns a rule off. ``${VAR}`` (or ``${VAR:-default}``) is
replaced by an environment variable and ``${file:path}`` by a file's content; a default may
hold references itself (``${A:-${B}}``). Only what is secret is registered for masking (see
:mod:`omnisync.secrets`): options a connector declares secret and the passwords in URLs.

One module per step: :mod:`.reading` (YAML with line numbers, interpolation),
:mod:`.schema` (the models of the file and the loaded :class:`Config`), :mod:`.loader`
(:func:`load_config`: validation, connectors, the rules that span keys).
"""

from __future__ import annotations

from omnisync.config.loader import load_config
from omnisync.config.schema import (
    CanonicalConfig,
    CanonicalGuard,
    ChannelConfig,
    Config,
    ConfigModel,
    GuardRules,
    PushRules,
    Settings,
    Source,
    SourceConfig,
    memory_problem,
)

__all__ = [
    "CanonicalConfig",
    "CanonicalGuard",
    "ChannelConfig",
    "Config",
    "ConfigModel",
    "GuardRules",
    "PushRules",
    "Settings",
    "Source",
    "SourceConfig",
    "load_config",
    "memory_problem",
]
