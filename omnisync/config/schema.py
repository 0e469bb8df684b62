"""The config's models: the file's schema (strict pydantic models: an unknown key is an
error, so a typo never silently turns a rule off) and the loaded :class:`Config` with its
:class:`Source` per connector."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from omnisync.durations import Duration
from omnisync.expect import Expectations, PriceBasis, Strict
from omnisync.models import Field as RecordField
from omnisync.publish.settings import PublishRules
from omnisync.sdk.connector import Connector, ConnectorContext, ConnectorOptions, PullState
from omnisync.watch.settings import WatchSettings


class HistorySettings(Strict):
    """How long the run history is kept (``omnisync runs --prune`` and after every check)."""

    #: Runs older than this are pruned (``90d``); the newest of each kind, the guards'
    #: baselines and pushes still to finish are always kept.
    keep: Duration | None = None
    #: At most this many runs are kept (the newest).
    keep_runs: int | None = Field(default=None, ge=1)


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
    #: Retention of the run history (default: everything is kept).
    history: HistorySettings = HistorySettings()
    #: Keep what every recorded check read as Parquet, for ``check --from-snapshot RUN``:
    #: ``true`` (in ``.omnisync/snapshots`` beside the config) or a folder.
    snapshots: bool | str = False

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
    #: A feed omnisync writes from canonical (``omnisync publish``) into the file the
    #: connector reads; omitted: the channel is not published.
    publish: PublishRules | None = None


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


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field's annotation holds (``Foo``, ``Foo | None``, ``dict[str, Foo]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_of(arg)
        if found is not None:
            return found
    return None


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
