"""Validating a config file read by :mod:`omnisync.config.reading`: the schema, then each
connector and its options (even when other keys are wrong, so that one `omnisync validate`
lists everything), then the rules that span keys. Every problem names its file, line and
dotted key; the options a connector declares secret are registered before they are
validated, so that no message can echo them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from omnisync import secrets
from omnisync.config.reading import ConfigFile, Locator, Pieces, dotted, read_config_file
from omnisync.config.schema import (
    ChannelConfig,
    Config,
    ConfigModel,
    Source,
    SourceConfig,
    model_of,
)
from omnisync.errors import ConfigError, Problem, UnknownConnectorError
from omnisync.sdk.connector import Connector, load_connector
from omnisync.sdk.mapping import FieldMapping


def load_config(path: str | Path) -> Config:
    """Read, interpolate and validate a config file; raise :class:`ConfigError` listing every problem."""
    config_path = Path(path).expanduser()
    read = read_config_file(config_path, str(path))
    locate = read.locate
    problems = [Problem(f"{locate(p)}: {dotted(p)}", m) for p, m in read.problems]

    # A value whose ${VAR} is missing fails its own validation too; say it once.
    unset = {p for p, _ in read.problems}

    try:
        model: ConfigModel | None = ConfigModel.model_validate(read.data)
    except ValidationError as exc:
        model = None
        problems.extend(_pydantic_problems(exc, (), locate, skip=unset))

    # Connectors and their options are validated even when other keys are wrong, so one
    # run of `omnisync validate` lists everything.
    sources = _sources(read, problems, unset)
    if model is not None:
        for name, channel in model.channels.items():
            source = sources.get(f"channels.{name}")
            if source is not None:
                problems.extend(_cross_check(name, channel, source, locate, read.base_dir))
                problems.extend(_price_list_problems(name, channel, sources, locate))
        problems.extend(_webhook_problems(model, locate))
        secrets.register_model(model.watch)  # webhook secrets, however they were written
    if problems or model is None:
        raise ConfigError(problems, hint="fix the keys above (see config.example.yaml)")
    return _config(config_path, read.raw, model, sources)


def _sources(
    read: ConfigFile, problems: list[Problem], skip: set[tuple[Any, ...]]
) -> dict[str, Source]:
    """The connector and options of canonical and every channel block that names one, by
    dotted path (``channels.shop``); each problem goes to ``problems``."""
    data = read.data
    raw_sources: list[tuple[str, tuple[Any, ...], Any]] = [
        ("canonical", ("canonical",), data.get("canonical"))
    ]
    raw_channels = data.get("channels")
    if isinstance(raw_channels, dict):
        raw_sources += [(str(n), ("channels", n), c) for n, c in raw_channels.items()]
    sources: dict[str, Source] = {}
    for name, block_path, block in raw_sources:
        if not isinstance(block, dict) or not isinstance(block.get("connector"), str):
            continue  # reported by the schema validation
        options = block.get("options") or {}
        if not isinstance(options, dict):
            continue
        source = _source(
            name, block_path, block["connector"], options, read.locate, problems, skip, read.pieces
        )
        if source is not None:
            sources[".".join(map(str, block_path))] = source
    return sources


def _source(
    name: str,
    path: tuple[Any, ...],
    connector: str,
    raw_options: dict[str, Any],
    locate: Locator,
    problems: list[Problem],
    skip: set[tuple[Any, ...]],
    pieces: Pieces,
) -> Source | None:
    try:
        cls = load_connector(connector)
    except UnknownConnectorError as exc:
        key = (*path, "connector")
        problems.append(Problem(f"{locate(key)}: {dotted(key)}", f"{exc.message}; {exc.hint}"))
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


def _config(path: Path, raw: bytes, model: ConfigModel, sources: dict[str, Source]) -> Config:
    """The loaded config; its sources carry the validated model of their block (with
    `expect`, `prices`, ...)."""
    found = sources["canonical"]
    canonical = Source("canonical", model.canonical, found.connector_class, found.options)
    channels = {}
    for name, block in model.channels.items():
        found = sources[f"channels.{name}"]
        channels[name] = Source(name, block, found.connector_class, found.options)
    return Config(
        path=path,
        model=model,
        canonical=canonical,
        channels=channels,
        fingerprint=hashlib.sha256(raw).hexdigest(),
    )


def _webhook_problems(model: ConfigModel, locate: Locator) -> list[Problem]:
    """Webhook sources and followed feeds must be canonical or a channel of this config."""
    problems = []
    known = ", ".join(["canonical", *model.channels])
    for name, hook in model.watch.webhooks.items():
        source = model.watch.source_of(name)
        if source != "canonical" and source not in model.channels:
            key: tuple[Any, ...] = ("watch", "webhooks", name)
            key = (*key, "source") if hook.source else key
            problems.append(
                Problem(
                    f"{locate(key)}: {dotted(key)}",
                    f"{source!r} is neither canonical nor a channel; set `source:` to one of: "
                    f"{known}",
                )
            )
    for n, name in enumerate(model.watch.feeds):
        if name != "canonical" and name not in model.channels:
            key = ("watch", "feeds", n)
            problems.append(
                Problem(
                    f"{locate(key)}: {dotted(key)}",
                    f"{name!r} is neither canonical nor a channel; use one of: {known}",
                )
            )
    return problems


def _cross_check(
    name: str, channel: ChannelConfig, source: Source, locate: Locator, base_dir: Path
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
                f"{locate(key)}: {dotted(key)}", "a conversion `rate` needs a target `currency`"
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
                        f"{locate(key)}: {dotted(key)}",
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
                        f"{locate(key)}: {dotted(key)}",
                        f"connector {channel.connector!r} cannot write {wanted.entity.value} "
                        f"(it writes: {', '.join(sorted(e.value for e in writes)) or 'nothing'})",
                    )
                )
    locations = channel.expect.stock.locations
    if locations:
        for loc_name, sources_ in locations.items():
            if len(set(sources_)) != len(sources_):
                key = ("channels", name, "expect", "stock", "locations", loc_name)
                problems.append(Problem(f"{locate(key)}: {dotted(key)}", "lists a location twice"))
    return problems


def _price_list_problems(
    name: str, channel: ChannelConfig, sources: dict[str, Source], locate: Locator
) -> list[Problem]:
    """``expect.price.source`` / ``sale_source`` name price lists canonical's mapping has.

    Known here for connectors with a ``mapping`` (files, SQL); the diff checks the others."""
    canonical = sources.get("canonical")
    mapping = getattr(canonical.options, "mapping", None) if canonical else None
    if not isinstance(mapping, FieldMapping):
        return []
    known = sorted(mapping.price_lists or {})
    rules = channel.expect.price
    problems = []
    for key, wanted, also in (
        ("source", rules.price_list, "price"),
        ("sale_source", rules.sale_source, "sale_price"),
    ):
        if wanted is None or wanted == also or wanted in known:
            continue
        path = ("channels", name, "expect", "price", key)
        listed = ", ".join([also, *known])
        problems.append(
            Problem(
                f"{locate(path)}: {dotted(path)}",
                f"{wanted!r} is not a price list canonical maps (use one of: {listed}; "
                "name more under canonical's mapping.price_lists)",
            )
        )
    return problems


def _pydantic_problems(
    exc: ValidationError,
    prefix: tuple[Any, ...],
    locate: Locator,
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
        problems.append(Problem(f"{where}: {dotted(path)}", message))
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
        inner = model_of(info.annotation)
        if inner is not None:
            cls = inner
    return sorted(cls.model_fields)


_MODELS: dict[str, type[BaseModel]] = {"ConfigModel": ConfigModel}
