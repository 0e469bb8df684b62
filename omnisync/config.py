"""Loading and validating the YAML configuration.

The whole file is validated up front and every problem is reported at once with its file,
line and dotted key (``config.yaml:14: channels.shop.expect.price.vat: ...``). Unknown keys
are errors, so a typo never silently turns a rule off. ``${VAR}`` (or ``${VAR:-default}``) is
replaced by an environment variable and ``${file:path}`` by a file's content; a default may
hold references itself (``${A:-${B}}``). Only what is secret is registered for masking (see
:mod:`omnisync.secrets`): options a connector declares secret and the passwords in URLs.
"""

from __future__ import annotations

import hashlib
import os
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    field_validator,
)

from omnisync import secrets
from omnisync.errors import ConfigError, Problem, UnknownConnectorError
from omnisync.expect import (
    Expectations,
    PriceBasis,
    Strict,
)
from omnisync.models import Field as RecordField
from omnisync.sdk.connector import (
    Connector,
    ConnectorContext,
    ConnectorOptions,
    PullState,
    load_connector,
)
from omnisync.watch.settings import WatchSettings

# ---------------------------------------------------------------- schema


class Settings(Strict):
    """Global settings."""

    #: IANA time zone that sale windows without an offset are read in.
    timezone: str = "UTC"
    #: Run history: a path (relative to the config file) or a database URL.
    state: str = ".omnisync/state.db"
    #: Memory the diff engine may hold (DuckDB's notation: ``800MB``, ``2GB``); past it,
    #: tables and joins spill to a temporary folder. ``null``: DuckDB's default, 80% of RAM.
    #: ``OMNISYNC_MEMORY_LIMIT`` overrides it for one run.
    memory_limit: str | None = "1GB"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return value

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and (problem := memory_problem(value)):
            raise ValueError(problem)
        return value


#: An amount of memory as DuckDB reads it.
MEMORY = re.compile(r"(\d+(?:\.\d+)?) ?(([KMGT])(i?)B|B)", re.IGNORECASE | re.ASCII)
#: The memory limits a check can run with: below, DuckDB fails even a tiny diff ("Out of
#: Memory"); above, DuckDB refuses the setting ("value is too large", at 2^64 bytes).
MIN_MEMORY = 32 * 10**6
MAX_MEMORY = 2**63


def memory_problem(value: str) -> str | None:
    """Why ``value`` cannot be the engine's memory limit, or None when it can."""
    match = MEMORY.fullmatch(value)
    if not match:
        return f"{value!r} is not an amount of memory (use e.g. 800MB or 2GB)"
    number, _, prefix, binary = match.groups()
    power = "KMGT".index(prefix.upper()) + 1 if prefix else 0
    size = Decimal(number) * (1024 if binary else 1000) ** power
    if size < MIN_MEMORY:
        return f"{value!r} is too little memory for the diff engine (at least 32MB)"
    if size > MAX_MEMORY:
        return f"{value!r} is more memory than the diff engine can address (at most 8000000TB)"
    return None


class GuardRules(Strict):
    """Limits a push refuses to exceed without --force (see README, "Guardrails")."""

    #: Most records one push may change in this channel.
    max_records: int = Field(default=500, ge=0)
    #: Most records one push may change, in percent of the channel's catalogue.
    max_records_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(20)
    #: Largest price move allowed, in percent of the current price: one number for
    #: price and sale_price, or per field (`{price: 30, sale_price: 60}`).
    max_price_change_pct: Decimal | dict[Literal["price", "sale_price"], Decimal] = Decimal(50)
    #: Most SKUs whose stock may drop to zero, in percent of the SKUs compared.
    max_zero_stock_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(10)

    def price_limit(self, field: str) -> Decimal:
        limit = self.max_price_change_pct
        if isinstance(limit, dict):
            return limit.get(field, Decimal(50))  # type: ignore[call-overload]
        return limit


class PushRules(Strict):
    """What omnisync may write to a channel. Fields not listed are owned by the channel."""

    #: Fields a push may write; every other field belongs to the channel and is never touched.
    fields: list[RecordField] = Field(default_factory=list)
    #: Create records the channel lacks (from the expected values).
    create: bool = False
    #: Delete records canonical lacks. Off unless you are sure: the channel may own them.
    delete: bool = False
    guard: GuardRules = GuardRules()


class CanonicalGuard(Strict):
    """Refuse to push when the canonical source looks broken."""

    #: Refuse when canonical has fewer SKUs than this fraction of the last successful check.
    min_ratio: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.5")
    #: Refuse price changes when more than this percentage of canonical prices is zero or
    #: missing (a broken price column, not a few free samples).
    max_unpriced_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(2)


class SourceConfig(Strict):
    """A connector and its options."""

    connector: str
    options: dict[str, Any] = Field(default_factory=dict)


class CanonicalConfig(SourceConfig):
    """The source of truth (ERP/PIM export)."""

    #: Whether canonical prices are net or gross.
    prices: PriceBasis = PriceBasis.NET
    guard: CanonicalGuard = CanonicalGuard()
    #: A canonical row without a SKU: ``error`` (the check stops, listing every such line)
    #: or ``skip`` (each is reported as a data-quality finding and left out).
    on_missing_sku: Literal["error", "skip"] = "error"


class ChannelConfig(SourceConfig):
    """A sales channel to keep consistent."""

    #: Set false to keep a channel in the file but skip it.
    enabled: bool = True
    expect: Expectations = Expectations()
    #: Omitted: the channel is only checked, never written.
    push: PushRules | None = None


class ConfigModel(Strict):
    """The whole file."""

    version: Literal[1] = 1
    settings: Settings = Settings()
    canonical: CanonicalConfig
    channels: dict[str, ChannelConfig] = Field(min_length=1)
    #: ``omnisync watch``: event intake and passes.
    watch: WatchSettings = WatchSettings()

    @field_validator("channels")
    @classmethod
    def _names(cls, value: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        for name in value:
            if name == "canonical":
                raise ValueError(
                    "a channel cannot be called 'canonical'; that name is the source of truth"
                )
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
                raise ValueError(f"channel name {name!r}: use letters, digits, '-', '_' or '.'")
        return value


# ---------------------------------------------------------------- loaded config


@dataclass(frozen=True)
class Source:
    """A validated source: its config, connector class and parsed options."""

    name: str
    config: SourceConfig
    connector_class: type[Connector]
    options: ConnectorOptions

    def connector(
        self,
        base_dir: Path,
        timezone: str = "UTC",
        *,
        store: PullState | None = None,
        full: bool = False,
        run_id: str | None = None,
    ) -> Connector:
        context = ConnectorContext(
            name=self.name,
            base_dir=base_dir,
            timezone=timezone,
            store=store,
            full=full,
            run_id=run_id,
        )
        return self.connector_class(self.options, context)


@dataclass(frozen=True)
class Config:
    """A loaded, fully validated configuration."""

    path: Path
    model: ConfigModel
    canonical: Source
    channels: dict[str, Source]
    #: sha256 of the file's bytes: which exact config produced a run.
    fingerprint: str

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def connector(
        self,
        name: str,
        *,
        store: PullState | None = None,
        full: bool = False,
        run_id: str | None = None,
    ) -> Connector:
        """A connector for the source ``name`` (``canonical`` or a channel), ready to use
        (the caller closes it); with ``store`` it may pull incrementally (unless ``full``),
        with ``run_id`` it writes for that push run."""
        source = self.canonical if name == "canonical" else self.channels[name]
        return source.connector(
            self.base_dir, self.model.settings.timezone, store=store, full=full, run_id=run_id
        )

    def channel_config(self, name: str) -> ChannelConfig:
        return self.model.channels[name]


# ---------------------------------------------------------------- YAML with line numbers


#: A config is a few levels deep; deeper nesting is an attack or an accident (and would
#: exhaust Python's recursion).
MAX_DEPTH = 64
#: Values a config may expand to through its aliases (``*name``): an "alias bomb" of a few
#: lines expands to billions and would hang the loader.
MAX_VALUES = 200_000
_COLLECTION_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every key and value by its dotted path, and
    refuses nesting beyond :data:`MAX_DEPTH` while it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, _too_deep(), self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep"


def _yaml_problem(name: str, mark: Any, message: str, hint: str) -> ConfigError:
    line = mark.line + 1 if mark else 0
    return ConfigError([Problem(f"{name}:{line}", message)], hint=hint)


def _unreadable(name: str, text: str, exc: yaml.reader.ReaderError) -> ConfigError:
    """A character YAML refuses (NUL, other control characters): the line it is on."""
    line = text.count("\n", 0, max(exc.position, 0)) + 1
    character = (
        exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    )
    return ConfigError(
        [Problem(f"{name}:{line}", f"character U+{character:04X} is not allowed in YAML")],
        hint="remove the control character (an editor or a copy from a terminal put it there)",
    )


_TAG_HINT = (
    "omnisync reads plain YAML: no custom tags such as !include; quote values that start with !"
)


def _load_with_lines(text: str, name: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(name, text, exc) from None
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise _unreadable(name, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_problem(
            name,
            exc.problem_mark,
            f"not valid YAML: {exc.problem}",
            "fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    if node is None:
        return None, lines
    try:
        return _walk(loader, node, name, lines), lines
    except yaml.MarkedYAMLError as exc:
        problem = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem)
        raise _yaml_problem(name, exc.problem_mark, problem, _TAG_HINT) from None


def _walk(loader: _Loader, node: yaml.Node, name: str, lines: dict[tuple[Any, ...], int]) -> Any:
    """The Python value of ``node``, recording lines; aliases are expanded within
    :data:`MAX_VALUES` and nesting (recursive aliases too) within :data:`MAX_DEPTH`."""
    budget = [MAX_VALUES]

    def problem(n: yaml.Node, message: str, hint: str = _TAG_HINT) -> ConfigError:
        return _yaml_problem(name, n.start_mark, message, hint)

    def scalar(n: yaml.Node) -> Any:
        try:
            return loader.construct_object(n, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise problem(n, f"cannot read {n.value!r} as {n.tag}: {exc.problem}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise problem(n, f"cannot read {n.value!r} as {n.tag}: {exc}") from None

    def walk(n: yaml.Node, path: tuple[Any, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise problem(
                n,
                f"aliases (*name) expand the configuration beyond {MAX_VALUES} values",
                "repeat a block by alias a few times only; an alias of an alias of ... "
                "expands exponentially",
            )
        if len(path) > MAX_DEPTH:
            raise problem(n, _too_deep(), "a recursive alias (an anchor used inside itself)?")
        lines.setdefault(path, n.start_mark.line + 1)
        wanted = _COLLECTION_TAGS.get(type(n))
        if wanted is not None and n.tag != wanted:
            raise problem(n, f"the tag {n.tag!r} is not supported here")
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise problem(key_node, "a key must be a plain value, not a block", "")
                key = scalar(key_node)
                if key in out:
                    raise ConfigError(
                        [
                            Problem(
                                f"{name}:{key_node.start_mark.line + 1}", f"duplicate key {key!r}"
                            )
                        ],
                        hint="each key may appear once per block",
                    )
                lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = walk(value_node, (*path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(child, (*path, i)) for i, child in enumerate(n.value)]
        return scalar(n)

    return walk(node, ())


#: What ``${...}`` substituted, by config path: registered as secrets where the path is a
#: field its connector declares secret (a token written as ``Bearer ${TOKEN}``).
Pieces = dict[tuple[Any, ...], list[str]]


def _interpolate(
    value: Any,
    path: tuple[Any, ...],
    base_dir: Path,
    problems: list[tuple[tuple[Any, ...], str]],
    pieces: Pieces,
) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, (*path, k), base_dir, problems, pieces) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, (*path, i), base_dir, problems, pieces) for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _Expander(path, base_dir, problems, pieces).expand(value)


@dataclass
class _Expander:
    """Expands ``${VAR}``, ``${VAR:-default}`` and ``${file:path}`` in one config value.

    A default may itself hold references (``${A:-${B}}``: A, else B, else an error naming B),
    so braces are matched by nesting depth rather than by a regex that would stop at the
    first ``}`` and leave ``${B`` in the value."""

    path: tuple[Any, ...]
    base_dir: Path
    problems: list[tuple[tuple[Any, ...], str]]
    pieces: Pieces

    def expand(self, text: str) -> str:
        out, i = [], 0
        while (start := text.find("${", i)) >= 0:
            end = _closing_brace(text, start + 2)
            if end < 0:
                self.problems.append(
                    (self.path, f"{text[start:]!r} has no closing brace (write ${{NAME}})")
                )
                return ""
            out += [text[i:start], self.resolve(text[start + 2 : end].strip())]
            i = end + 1
        out.append(text[i:])
        return "".join(out)

    def resolve(self, body: str) -> str:
        if body.startswith("file:"):
            return self.read_file(body[5:].strip())
        var, sep, default = body.partition(":-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            self.problems.append(
                (self.path, f"${{{body}}} is not a valid variable reference (use ${{NAME}})")
            )
            return ""
        env = os.environ.get(var)
        if env is None:
            if sep:
                return self.expand(default)
            self.problems.append((self.path, f"environment variable {var} is not set"))
            return ""
        self.pieces.setdefault(self.path, []).append(env)
        return env

    def read_file(self, name: str) -> str:
        file_path = Path(name).expanduser()
        if not file_path.is_absolute():
            file_path = self.base_dir / file_path
        try:
            content = file_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.problems.append((self.path, f"cannot read file {file_path}: {exc.strerror}"))
            return ""
        self.pieces.setdefault(self.path, []).append(content)
        return content


def _closing_brace(text: str, i: int) -> int:
    """Index of the ``}`` closing the ``${`` just before ``i`` (nested ones counted), or -1."""
    depth = 1
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _register_url_passwords(value: Any) -> None:
    """Register the password of every credentialed URL in the config (DSNs, store URLs)."""
    if isinstance(value, dict):
        for v in value.values():
            _register_url_passwords(v)
    elif isinstance(value, list):
        for v in value:
            _register_url_passwords(v)
    elif isinstance(value, str):
        secrets.register_url_passwords(value)


def _register_secret_options(
    cls: type[Connector], raw_options: dict[str, Any], path: tuple[Any, ...], pieces: Pieces
) -> None:
    """Register the options ``cls`` declares secret, with what ``${...}`` put into them.

    Done on the options as written, before validating them, so that their values are masked
    in the validation errors too."""
    extra = getattr(cls, "secret_options", ())
    for key in secrets.secret_paths(cls.Options, raw_options, extra):
        value: Any = raw_options
        for part in key:
            value = value[part]
        if isinstance(value, str):
            secrets.register(value)
        for piece in pieces.get((*path, "options", *key), ()):
            secrets.register(piece)


# ---------------------------------------------------------------- validation


class _Locator:
    def __init__(self, name: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.name = name
        self.lines = lines

    def __call__(self, path: tuple[Any, ...]) -> str:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        return f"{self.name}:{line}"


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pydantic_problems(
    exc: ValidationError,
    prefix: tuple[Any, ...],
    locate: _Locator,
    skip: set[tuple[Any, ...]] = frozenset(),  # type: ignore[assignment]
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = (*prefix, *loc)
        if path in skip:
            continue
        kind = err["type"]
        if kind == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
            allowed = _allowed_keys(exc, loc)
            if allowed:
                message += f" (allowed here: {', '.join(allowed)})"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
        # Errors on a missing key point at the parent block's line.
        where = locate(path)
        problems.append(Problem(f"{where}: {_dotted(path)}", message))
    return problems


def _allowed_keys(exc: ValidationError, loc: tuple[Any, ...]) -> list[str]:
    model = exc.title
    cls = _MODELS.get(model)
    if cls is None:
        return []
    # Walk the model tree along the location (skipping dict keys and list indexes).
    for part in loc[:-1]:
        info = cls.model_fields.get(str(part)) if isinstance(part, str) else None
        if info is None:
            continue
        inner = _model_of(info.annotation)
        if inner is not None:
            cls = inner
    return sorted(cls.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


_MODELS: dict[str, type[BaseModel]] = {"ConfigModel": ConfigModel}


def load_config(path: str | Path) -> Config:
    """Read, interpolate and validate a config file; raise :class:`ConfigError` listing every problem."""
    config_path = Path(path).expanduser()
    shown = str(path)
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [Problem(shown, "config file not found")],
            hint="pass -c PATH or copy config.example.yaml to get started",
        ) from None
    except OSError as exc:
        raise ConfigError([Problem(shown, f"cannot read config file: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [Problem(f"{shown}:{line}", "config file is not UTF-8")], hint="save it as UTF-8"
        ) from None
    data, lines = _load_with_lines(text, shown)
    locate = _Locator(shown, lines)
    base_dir = config_path.resolve().parent
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(f"{shown}:1", "expected a mapping with `canonical:` and `channels:`")],
            hint="start from config.example.yaml",
        )
    env_problems: list[tuple[tuple[Any, ...], str]] = []
    pieces: Pieces = {}
    data = _interpolate(data, (), base_dir, env_problems, pieces)
    _register_url_passwords(data)
    problems = [Problem(f"{locate(p)}: {_dotted(p)}", m) for p, m in env_problems]

    # A value whose ${VAR} is missing fails its own validation too; say it once.
    unset = {p for p, _ in env_problems}

    try:
        model: ConfigModel | None = ConfigModel.model_validate(data)
    except ValidationError as exc:
        model = None
        problems.extend(p for p in _pydantic_problems(exc, (), locate, skip=unset))

    # Connectors and their options are validated even when other keys are wrong, so one
    # run of `omnisync validate` lists everything.
    raw_sources: list[tuple[str, tuple[Any, ...], Any]] = [
        ("canonical", ("canonical",), data.get("canonical"))
    ]
    raw_channels = data.get("channels")
    if isinstance(raw_channels, dict):
        raw_sources += [(str(n), ("channels", n), c) for n, c in raw_channels.items()]
    sources: dict[str, Source] = {}
    for name, block_path, block in raw_sources:
        if not isinstance(block, dict) or not isinstance(block.get("connector"), str):
            continue  # reported by the schema validation above
        options = block.get("options") or {}
        if not isinstance(options, dict):
            continue
        source = _source(
            name, block_path, block["connector"], options, locate, problems, unset, pieces
        )
        if source is not None:
            sources[".".join(map(str, block_path))] = source
    if model is not None:
        for name, channel in model.channels.items():
            source = sources.get(f"channels.{name}")
            if source is not None:
                problems.extend(_cross_check(name, channel, source, locate, base_dir))
        problems.extend(_webhook_problems(model, locate))
    if problems or model is None:
        raise ConfigError(problems, hint="fix the keys above (see config.example.yaml)")
    # Sources carry the validated model of their block (with `expect`, `prices`, ...).
    found = sources["canonical"]
    canonical = Source("canonical", model.canonical, found.connector_class, found.options)
    channels = {}
    for name, block in model.channels.items():
        found = sources[f"channels.{name}"]
        channels[name] = Source(name, block, found.connector_class, found.options)
    return Config(
        path=config_path,
        model=model,
        canonical=canonical,
        channels=channels,
        fingerprint=hashlib.sha256(raw).hexdigest(),
    )


def _webhook_problems(model: ConfigModel, locate: _Locator) -> list[Problem]:
    """A webhook's source must be canonical or a channel of this config."""
    problems = []
    known = ", ".join(["canonical", *model.channels])
    for name, hook in model.watch.webhooks.items():
        source = model.watch.source_of(name)
        if source != "canonical" and source not in model.channels:
            key: tuple[Any, ...] = ("watch", "webhooks", name)
            key = (*key, "source") if hook.source else key
            problems.append(
                Problem(
                    f"{locate(key)}: {_dotted(key)}",
                    f"{source!r} is neither canonical nor a channel; set `source:` to one of: "
                    f"{known}",
                )
            )
    return problems


def _source(
    name: str,
    path: tuple[Any, ...],
    connector: str,
    raw_options: dict[str, Any],
    locate: _Locator,
    problems: list[Problem],
    skip: set[tuple[Any, ...]],
    pieces: Pieces,
) -> Source | None:
    try:
        cls = load_connector(connector)
    except UnknownConnectorError as exc:
        key = (*path, "connector")
        problems.append(Problem(f"{locate(key)}: {_dotted(key)}", f"{exc.message}; {exc.hint}"))
        return None
    _register_secret_options(cls, raw_options, path, pieces)
    try:
        options = cls.Options.model_validate(raw_options)
    except ValidationError as exc:
        _MODELS[exc.title] = cls.Options
        problems.extend(_pydantic_problems(exc, (*path, "options"), locate, skip=skip))
        return None
    config = SourceConfig(connector=connector, options=raw_options)
    return Source(name=name, config=config, connector_class=cls, options=options)


def _cross_check(
    name: str, channel: ChannelConfig, source: Source, locate: _Locator, base_dir: Path
) -> list[Problem]:
    """Rules that span keys: a currency change needs a rate, and so on."""
    problems = []
    price = channel.expect.price
    path: tuple[Any, ...] = ("channels", name, "expect", "price")
    key: tuple[Any, ...]
    if price.rate is not None and price.currency is None:
        key = (*path, "rate")
        problems.append(
            Problem(
                f"{locate(key)}: {_dotted(key)}", "a conversion `rate` needs a target `currency`"
            )
        )
    checked = channel.expect.check
    if checked is not None:
        with source.connector(base_dir) as with_source:
            available = with_source.fields()
        for i, wanted in enumerate(checked):
            if wanted not in available:
                key = ("channels", name, "expect", "check", i)
                problems.append(
                    Problem(
                        f"{locate(key)}: {_dotted(key)}",
                        f"field {wanted.value!r} is not provided by this channel's mapping "
                        f"(it provides: {', '.join(sorted(f.value for f in available))})",
                    )
                )
    if channel.push is not None:
        writes = source.connector_class.capabilities.writes
        for i, wanted in enumerate(channel.push.fields):
            if wanted.entity not in writes:
                key = ("channels", name, "push", "fields", i)
                problems.append(
                    Problem(
                        f"{locate(key)}: {_dotted(key)}",
                        f"connector {channel.connector!r} cannot write {wanted.entity.value} "
                        f"(it writes: {', '.join(sorted(e.value for e in writes)) or 'nothing'})",
                    )
                )
    locations = channel.expect.stock.locations
    if locations:
        for loc_name, sources_ in locations.items():
            if len(set(sources_)) != len(sources_):
                key = ("channels", name, "expect", "stock", "locations", loc_name)
                problems.append(Problem(f"{locate(key)}: {_dotted(key)}", "lists a location twice"))
    return problems
