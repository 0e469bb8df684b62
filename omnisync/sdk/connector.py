"""The connector contract and the registry that finds connectors.

A connector is a class with four things::

    class MyConnector(Connector):
        Options = MyOptions                  # pydantic model of its `options:` block
        def fields(self) -> frozenset[Field]: ...   # what its records carry
        def check(self) -> None: ...         # cheap connectivity probe; raise ConnectorError
        def read(self) -> Iterator[Record]: ...     # stream every record

and optionally one more, the columnar fast path::

        def read_table(self, target: TableTarget) -> bool: ...   # records as two DuckDB tables

``read()`` is the definition of what a source holds; ``read_table()`` is an optimisation a
connector may add when it can hand the diff engine the same records as columns (the CSV
connector lets DuckDB parse the file and normalises in SQL), returning False whenever it
cannot be sure of giving exactly what ``read()`` gives. The engine then streams ``read()``.

plus ``capabilities`` (what it reads and writes, whether it reads incrementally, how many
records one write request may carry). A connector that writes also implements
``write(changes) -> [WriteResult]`` (one result per change, in order; raise
:class:`~omnisync.errors.TransientError` for a failure a retry may cure, and return
``ok=False`` with the channel's message for a record the channel rejected), and may override
``current()`` (re-read the targets before a batch; the default reads everything) and
``preview()`` (the exact payloads ``write`` would send, for ``--dry-run``).

A connector that holds resources (an HTTP client, a database engine) releases them in
``close()``; the core closes every connector it opens, and a connector is a context manager
(``with config.connector("shop") as shop: ...``). Building one should stay offline: open
clients on first use. Connectors are found through the ``omnisync.connectors``
entry-point group; the built-in ones register there exactly like a third-party package would,
and the core never imports a connector module by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, cast

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypeVar

from omnisync.errors import ConnectorError, UnknownConnectorError
from omnisync.models import Change, Entity, Field, QualityNote, Record, WriteResult

if TYPE_CHECKING:
    import duckdb

    from omnisync.sdk.feed import ChangeFeed

ENTRY_POINT_GROUP = "omnisync.connectors"


@dataclass(frozen=True)
class UpdateLimit:
    """A channel's own rule on how often one record may be updated: at most ``updates``
    pushes that change a SKU within any ``window`` seconds (Google Merchant Center takes a
    product's updates at most twice a day). The planner holds back a change that would
    exceed it, counting the pushes the state store's journal recorded, and says when the
    SKU may be updated next; a push of a saved plan that would exceed it is refused."""

    updates: int
    #: Seconds; the limit holds in every window of this length (rolling, not per calendar day).
    window: float
    #: Whether changes at a location (``Change.location``: a store's stock or price) count.
    #: Google's limit is on products; a store's local inventory is written apart from them.
    located: bool = False

    def counts(self, change: Change) -> bool:
        """Whether ``change`` is an update this limit counts."""
        return self.located or change.location is None

    def describe(self) -> str:
        """``2 per SKU per 24 h``."""
        hours = self.window / 3600
        span = f"{hours:g} h" if hours >= 1 else f"{self.window:g} s"
        return f"{self.updates} per SKU per {span}"


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do. ``max_batch`` is the most records one write request may carry."""

    reads: frozenset[Entity]
    writes: frozenset[Entity] = frozenset()
    incremental: bool = False
    max_batch: int = 1
    #: :meth:`Connector.read_skus` reads just the given SKUs (by query, not by reading all).
    targeted: bool = False
    #: How often the channel lets one record be updated (None: as often as pushes come).
    update_limit: UpdateLimit | None = None

    def describe(self) -> dict[str, str]:
        order = list(Entity)
        return {
            "reads": ", ".join(e.value for e in order if e in self.reads) or "-",
            "writes": ", ".join(e.value for e in order if e in self.writes) or "-",
            "incremental": "yes" if self.incremental else "no",
            "targeted": "yes" if self.targeted else "no",
            "max batch": str(self.max_batch) if self.writes else "-",
            "update limit": self.update_limit.describe() if self.update_limit else "-",
        }


class ConnectorOptions(BaseModel):
    """Base for every connector's options model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PullState(Protocol):
    """What an incremental pull keeps between runs (the state store implements it)."""

    def pull_mark(self, source: str, key: str) -> str | None:
        """The source's high-water mark under ``key`` (None before its first full pull)."""

    def set_pull_mark(self, source: str, key: str, value: str) -> None: ...

    def cache(self, source: str) -> Iterator[dict[str, Any]]:
        """The cached catalogue, record by record (``record_to_json`` dicts)."""

    def cache_replace(self, source: str, records: Iterable[dict[str, Any]]) -> int:
        """Replace the cached catalogue (after a full pull); the number of records kept."""

    def cache_merge(
        self, source: str, records: Iterable[dict[str, Any]], deleted: Iterable[str] = ()
    ) -> None:
        """Upsert changed records and drop deleted SKUs."""


#: A connector's options model; unparameterised ``Connector`` means any options.
OptionsT = TypeVar("OptionsT", bound=ConnectorOptions, default=ConnectorOptions)


@dataclass(frozen=True)
class ConnectorContext:
    """What the core hands a connector besides its options."""

    #: The source's name in the config (``canonical`` or the channel's key), for messages.
    name: str
    #: Directory that relative paths in the options are resolved against (the config's folder).
    base_dir: Path = field(default_factory=Path.cwd)
    #: IANA zone naive date-times are read in and written back in (``settings.timezone``).
    timezone: str = "UTC"
    #: The state store, for connectors that pull incrementally (high-water marks and a cached
    #: catalogue, keyed by ``name``: :class:`PullState`). None when no store is open
    #: (``validate``, some tests): pull in full then.
    store: PullState | None = None
    #: Force a full pull even where the connector could pull incrementally.
    full: bool = False
    #: The push run this connector writes for (None outside a push). A connector that sends
    #: idempotency keys derives them from it and the change (``Change.key``, its values), so
    #: that a retried request and ``apply --resume`` repeat the same key.
    run_id: str | None = None

    def resolve(self, path: str | Path) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate


@dataclass(frozen=True)
class TableTarget:
    """Where :meth:`Connector.read_table` puts a source's records: two tables to create in
    the diff engine's DuckDB database.

    ``items``: one row per record, with exactly the columns of ``item_columns`` (name ->
    DuckDB type; the engine checks). Values as a :class:`~omnisync.models.Record` holds them,
    normalised by :mod:`omnisync.normalize`: text NFC and stripped (blank is NULL), GTINs
    14 digits, amounts DECIMAL with their currency, VAT in percent, availability its enum
    value, ``ids`` a JSON object text (NULL when empty), ``attributes`` JSON text with sorted
    keys as :func:`json.dumps` writes it, sale moments as naive UTC. Two allowances:
    ``title``, ``description`` and ``brand`` may be left uncomposed (not NFC; the engine
    composes text wherever it compares, measures or shows it, and checking a catalogue's
    descriptions for NFC costs more than parsing them), and ``ord`` (position in the source)
    and ``origin`` (``file.csv:12``) may be NULL: they only name duplicated SKUs, and when a
    source has any the engine reads it again through ``read()`` for them.

    ``stock``: one row per (sku, location) with a known quantity (``stock_columns``).

    ``items`` may be a view: a source that carries few of the columns stores the ones it has
    in the table :attr:`stored` and makes ``items`` a view adding the others as typed NULLs
    (a million NULLs still take memory, and the engine's joins then spill to disk sooner).
    """

    con: duckdb.DuckDBPyConnection
    #: Name of the items table to create.
    items: str
    #: Name of the stock table to create.
    stock: str
    item_columns: Mapping[str, str]
    stock_columns: Mapping[str, str]
    #: IANA zone naive moments are in (``settings.timezone``); store them converted to UTC.
    timezone: str = "UTC"

    @property
    def stored(self) -> str:
        """The table behind ``items`` when ``items`` is a view (see above)."""
        return f"{self.items}_stored"


class Connector(ABC, Generic[OptionsT]):
    """Base class of every connector. Subclasses set ``Options`` and ``capabilities``;
    ``Connector[MyOptions]`` types ``self.options`` as ``MyOptions`` (checked at construction)."""

    #: One-line description shown by ``omnisync connectors``.
    description: ClassVar[str] = ""
    #: The pydantic model that validates this connector's ``options:`` block.
    Options: ClassVar[type[ConnectorOptions]] = ConnectorOptions
    #: What this kind of connector can do.
    capabilities: ClassVar[Capabilities] = Capabilities(reads=frozenset(Entity))
    #: True when the connector retries transient failures itself (HTTP connectors do, per
    #: request); the push pipeline then does not retry its calls a second time.
    retries_itself: ClassVar[bool] = False
    #: Set by whoever lends this connector to several runs (``watch`` keeps its channels'
    #: connectors open between event batches): leaving a ``with`` block then leaves it open,
    #: and the lender closes it.
    lent: bool = False

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        if not isinstance(options, self.Options):
            raise TypeError(f"{type(self).__name__} needs {self.Options.__name__}")
        self.options: OptionsT = cast(OptionsT, options)  # checked just above
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    @abstractmethod
    def fields(self) -> frozenset[Field]:
        """The fields this source's records carry (given its options); only these are compared."""

    def check(self) -> None:
        """Cheaply verify the source is reachable; raise :class:`~omnisync.errors.ConnectorError`."""

    @abstractmethod
    def read(self) -> Iterator[Record]:
        """Stream every record. Raise :class:`~omnisync.errors.InputError` for malformed data
        (all problems at once) and :class:`~omnisync.errors.ConnectorError` when unreachable."""

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The records of just ``skus`` (those the source has; every variant of a SKU the
        source lists twice). A connector that can ask its source for them sets
        ``capabilities.targeted`` and overrides this; without it the engine reads the source
        as :meth:`read` does (incrementally where it can) and keeps the wanted SKUs."""
        wanted = set(skus)
        return (record for record in self.read() if record.sku in wanted)

    def find_skus(self, refs: Mapping[str, Collection[str]]) -> set[str]:
        """The SKUs of records whose :attr:`~omnisync.models.Record.ids` hold any of ``refs``
        (id name -> values), for change events that name only the channel's own ids. This
        default reads the source; connectors with a lookup by id override it."""
        wanted = {(name, str(value)) for name, values in refs.items() for value in values}
        return {
            record.sku
            for record in self.read()
            if any((name, value) in wanted for name, value in record.ids.items())
        }

    def version(self) -> Hashable | None:
        """A cheap token of the source's content: equal tokens mean the content has not
        changed (a file's size, modification time and inode). The engine then serves
        targeted reads from the whole source it loaded before instead of reading it again.
        None, the default, when the source has no such token (a shop, a database)."""
        return None

    def change_feed(self) -> ChangeFeed | None:
        """What changed at the source, for ``omnisync watch`` to follow between passes
        (:mod:`omnisync.sdk.feed`); None, the default, when the source offers no such feed."""
        return None

    def describe(self) -> str:
        """Where this connector reads from, for messages (``examples/shop.csv``); no secrets."""
        return self.name

    def quality_notes(self) -> Sequence[QualityNote]:
        """What the last :meth:`read` noted about rows it skipped (no SKU) or read without a
        value it could not use (a mangled barcode). The check reports each as a data-quality
        finding; none becomes a change. Read after the records are consumed."""
        return ()

    def close(self) -> None:
        """Release what the connector holds (HTTP client, database engine). Safe to call
        twice and on a connector that never connected; it is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.lent:
            self.close()

    def read_table(self, target: TableTarget) -> bool:
        """Optional columnar fast path: create ``target.items`` and ``target.stock`` holding
        exactly the records :meth:`read` would yield, and return True.

        Return False (having created nothing) to have the engine stream :meth:`read`
        instead: this default, and the right answer whenever the result could differ from
        ``read()``'s. Malformed input is such a case: ``read()`` then reports every problem
        with its location, so a fast path only has to notice that something is off.
        """
        return False

    # ------------------------------------------------------------ write side

    def write(self, changes: Sequence[Change]) -> list[WriteResult]:
        """Send one batch (at most ``capabilities.max_batch`` records); one result per change."""
        raise ConnectorError(
            f"connector {type(self).__name__} cannot write",
            where=self.name,
            hint="remove this channel's `push:` block or use a connector that writes",
        )

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The channel's current JSON value for each change's target, keyed by ``Change.key``.

        Used to skip stale changes and to recognise changes already applied before a crash.
        This default reads the whole source; connectors with targeted reads override it.
        """
        from omnisync.sdk.values import current_value

        wanted = {c.sku for c in changes}
        found: dict[str, Record] = {}
        for record in self.read():
            if record.sku in wanted and record.sku not in found:
                found[record.sku] = record
        result: dict[str, Any] = {}
        for change in changes:
            target = found.get(change.sku)
            result[change.key] = current_value(change, target)
        return result

    def preview(self, changes: Sequence[Change]) -> list[Any]:
        """The payloads :meth:`write` would send for this batch, for ``--dry-run``."""
        return [change.to_dict() for change in changes]


def map_locations(
    wanted: dict[str, str] | None, every: dict[str, str], *, where: str, owner: str
) -> dict[str, str]:
    """A channel's stock locations (``id -> name``) mapped to omnisync locations.

    ``wanted`` maps a location's id or name to an omnisync location; without it every location
    keeps its own name. A key that matches nothing is an error listing what ``owner`` (``the
    store``, ``Vendure``, ...) has, because silently comparing nothing would hide a typo.
    """
    if not wanted:
        return dict(every)
    mapped: dict[str, str] = {}
    unknown = []
    for key, target in wanted.items():
        hits = [i for i, name in every.items() if key in (i, name)]
        if not hits:
            unknown.append(key)
        for location_id in hits:
            mapped[location_id] = target
    if unknown:
        present = ", ".join(f"{name} ({i})" for i, name in every.items()) or "none"
        raise ConnectorError(
            f"options.locations names stock location(s) {owner} does not have: "
            f"{', '.join(map(repr, unknown))}",
            where=where,
            hint=f"its stock locations are: {present}",
        )
    return mapped


def available_connectors() -> dict[str, EntryPoint]:
    """Installed connectors by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_connector(name: str) -> type[Connector]:
    """The connector class registered as ``name``; unknown names list the installed ones."""
    installed = available_connectors()
    entry = installed.get(name)
    if entry is None:
        known = ", ".join(sorted(installed)) or "none"
        raise UnknownConnectorError(
            f"unknown connector {name!r}",
            hint=f"installed connectors: {known} (run `omnisync connectors`)",
        )
    try:
        cls = entry.load()
    except Exception as exc:  # a broken plugin must say so, not crash the run
        raise UnknownConnectorError(
            f"connector {name!r} is installed but cannot be loaded ({type(exc).__name__}: {exc})",
            hint=f"reinstall or fix the package providing {entry.value}",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise UnknownConnectorError(
            f"entry point {name!r} ({entry.value}) is not an omnisync Connector class",
            hint="fix or uninstall the package that provides it",
        )
    return cls
