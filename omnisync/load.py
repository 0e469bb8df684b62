"""Loading a source into the engine: the column schema, Arrow batches of records, the
columnar fast path, and the screens and uniqueness checks every loaded side passes.

Records stream in from any connector and are appended to columnar tables in batches (Arrow),
never held as Python objects for a whole catalogue; a connector with a columnar fast path
(:meth:`~omnisync.sdk.connector.Connector.read_table`) creates the tables itself instead, and
the engine falls back to the record stream whenever it declines. A loaded source is a
:class:`Side`; :mod:`omnisync.diff` compares two of them.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field, replace
from decimal import InvalidOperation
from typing import Any, Self
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from omnisync import expect
from omnisync.errors import InputError, Problem
from omnisync.models import Field, QualityNote, Record
from omnisync.normalize import check_amount, check_quantity
from omnisync.sdk.columnar import decimals
from omnisync.sdk.connector import Connector, TableTarget
from omnisync.sdk.values import money, utc_naive

BATCH_SIZE = 20_000
CANONICAL = "canonical"

_DEC = pa.decimal128(18, 6)
ITEM_SCHEMA = pa.schema(
    [
        ("ord", pa.int64()),
        ("sku", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("gtin", pa.string()),
        ("brand", pa.string()),
        ("attributes", pa.string()),
        ("price", _DEC),
        ("currency", pa.string()),
        ("sale_price", _DEC),
        ("sale_currency", pa.string()),
        ("sale_start", pa.timestamp("us")),
        ("sale_end", pa.timestamp("us")),
        ("vat_rate", pa.decimal128(9, 4)),
        ("availability", pa.string()),
        ("ids", pa.string()),
        ("origin", pa.string()),
    ]
)
STOCK_SCHEMA = pa.schema([("sku", pa.string()), ("location", pa.string()), ("qty", pa.int64())])
#: ``{table}_prices``: a record's :attr:`~omnisync.models.Record.location_prices`, one row per
#: (sku, location). Only record streams make it (no fast path carries location prices); a
#: side without the table has none.
PRICES_SCHEMA = pa.schema(
    [("sku", pa.string()), ("location", pa.string()), ("price", _DEC), ("currency", pa.string())]
)
#: ``{table}_lists``: a canonical record's other price lists
#: (:attr:`~omnisync.models.Record.price_lists`), one row per (sku, list), for channels with
#: ``expect.price.source``. Only record streams make it.
LISTS_SCHEMA = pa.schema(
    [("sku", pa.string()), ("list", pa.string()), ("price", _DEC), ("currency", pa.string())]
)
#: ``{table}_parents``: the product each record is a variant of
#: (:attr:`~omnisync.models.Record.parent`), for the identity findings. Record streams only.
PARENTS_SCHEMA = pa.schema([("sku", pa.string()), ("parent", pa.string())])
#: ``{table}_modified``: when the source last changed each record
#: (:attr:`~omnisync.models.Record.modified_at`, UTC), for ``expect.lag``. Only record streams
#: make it, with rows only for records whose connector reports the time.
MODIFIED_SCHEMA = pa.schema([("sku", pa.string()), ("modified_at", pa.timestamp("us"))])
#: The tables only record streams make, beside ``items`` and ``stock``, by suffix: every
#: place that creates, fills, copies, slices, drops or snapshots a side goes through this.
RECORD_PARTS: dict[str, pa.Schema] = {
    "prices": PRICES_SCHEMA,
    "modified": MODIFIED_SCHEMA,
    "lists": LISTS_SCHEMA,
    "parents": PARENTS_SCHEMA,
}


def _sql_type(type_: pa.DataType) -> str:
    if pa.types.is_decimal(type_):
        return f"DECIMAL({type_.precision},{type_.scale})"
    if pa.types.is_timestamp(type_):
        return "TIMESTAMP"
    return {pa.int64(): "BIGINT", pa.string(): "VARCHAR"}[type_]


#: The tables' columns as DuckDB types, for connectors that create them (``read_table``).
ITEM_COLUMNS: dict[str, str] = {f.name: _sql_type(f.type) for f in ITEM_SCHEMA}
STOCK_COLUMNS: dict[str, str] = {f.name: _sql_type(f.type) for f in STOCK_SCHEMA}

log = logging.getLogger(__name__)

#: Finding order within one SKU.


def json_text(value: dict[str, Any] | None) -> str | None:
    """``ids`` and ``attributes`` as the tables store them (sorted keys; NULL when empty)."""
    if not value:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


#: RE2: a control character (C0, DEL, C1), which no SKU may contain.
_CONTROL = "[\\x00-\\x1f\\x7f-\\x{9f}]"


def _screened(row: tuple[Any, ...]) -> Problem:
    """The problem of one row :meth:`DiffEngine._screen` found."""
    origin, sku, price, sale_price, currency, sale_currency, control = row[:7]
    if control:
        char = next(c for c in sku if unicodedata.category(c) == "Cc")
        message = f"the SKU {sku!r} contains the control character U+{ord(char):04X}"
    else:
        amount, code = (
            (price, currency)
            if price is not None and price < 0
            else (
                sale_price,
                sale_currency,
            )
        )
        name = "price" if amount is price else "sale price"
        message = f"SKU {sku}: negative {name} {money(amount, code)}"
    return Problem(origin or "", message)


class _Batch:
    """Column lists for one Arrow batch of records."""

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {name: [] for name in ITEM_SCHEMA.names}
        self.stock: dict[str, list[Any]] = {name: [] for name in STOCK_SCHEMA.names}
        self.parts: dict[str, dict[str, list[Any]]] = {
            part: {name: [] for name in schema.names} for part, schema in RECORD_PARTS.items()
        }
        self.prices, self.modified = self.parts["prices"], self.parts["modified"]
        self.lists, self.parents = self.parts["lists"], self.parts["parents"]

    def __len__(self) -> int:
        return len(self.items["sku"])

    def add(self, ord_: int, r: Record, zone: ZoneInfo) -> None:
        items = self.items
        items["ord"].append(ord_)
        items["sku"].append(r.sku)
        items["title"].append(r.title)
        items["description"].append(r.description)
        items["gtin"].append(r.gtin)
        items["brand"].append(r.brand)
        items["attributes"].append(json_text(r.attributes))
        items["price"].append(r.price.amount if r.price else None)
        items["currency"].append(r.price.currency if r.price else None)
        items["sale_price"].append(r.sale_price.amount if r.sale_price else None)
        items["sale_currency"].append(r.sale_price.currency if r.sale_price else None)
        items["sale_start"].append(utc_naive(r.sale_start, zone))
        items["sale_end"].append(utc_naive(r.sale_end, zone))
        items["vat_rate"].append(r.vat_rate)
        items["availability"].append(r.availability.value if r.availability else None)
        items["ids"].append(json_text(r.ids))
        items["origin"].append(r.origin)
        if r.stock:
            for location, qty in r.stock.items():
                self.stock["sku"].append(r.sku)
                self.stock["location"].append(location)
                self.stock["qty"].append(qty)
        if r.modified_at is not None:
            self.modified["sku"].append(r.sku)
            self.modified["modified_at"].append(utc_naive(r.modified_at, zone))
        if r.location_prices:
            for location, price in r.location_prices.items():
                self.prices["sku"].append(r.sku)
                self.prices["location"].append(location)
                self.prices["price"].append(price.amount)
                self.prices["currency"].append(price.currency)
        if r.parent is not None:
            self.parents["sku"].append(r.sku)
            self.parents["parent"].append(r.parent)
        if r.price_lists:
            for name, price in r.price_lists.items():
                self.lists["sku"].append(r.sku)
                self.lists["list"].append(name)
                self.lists["price"].append(price.amount)
                self.lists["currency"].append(price.currency)

    def out_of_range(self) -> list[Problem]:
        """The values the engine cannot hold (from connectors that build records themselves;
        RowMapper refuses them with their column)."""
        problems = []
        where = dict(zip(self.items["sku"], self.items["origin"], strict=True))
        for name in ("price", "sale_price"):
            for sku, amount in zip(self.items["sku"], self.items[name], strict=True):
                if amount is None:
                    continue
                try:
                    check_amount(amount)
                except ValueError as exc:
                    problems.append(Problem(where[sku] or "", f"SKU {sku}: {name}: {exc}"))
        for sku, location, amount in zip(
            self.prices["sku"], self.prices["location"], self.prices["price"], strict=True
        ):
            try:
                check_amount(amount)
            except ValueError as exc:
                problems.append(Problem(where[sku] or "", f"SKU {sku}: price@{location}: {exc}"))
        for sku, name, amount in zip(
            self.lists["sku"], self.lists["list"], self.lists["price"], strict=True
        ):
            try:
                check_amount(amount)
            except ValueError as exc:
                problems.append(Problem(where[sku] or "", f"SKU {sku}: price list {name}: {exc}"))
        for sku, qty in zip(self.stock["sku"], self.stock["qty"], strict=True):
            try:
                check_quantity(qty)
            except ValueError as exc:
                problems.append(Problem(where[sku] or "", f"SKU {sku}: stock: {exc}"))
        return problems

    def tables(self) -> tuple[pa.Table, pa.Table, dict[str, pa.Table]]:
        """The items and stock tables, and the record-only parts by suffix."""
        arrays = []
        for name in ITEM_SCHEMA.names:
            type_ = ITEM_SCHEMA.field(name).type
            values = self.items[name]
            if name in ("price", "sale_price"):
                arrays.append(decimals(values, 6, type_))
            elif name == "vat_rate":
                arrays.append(decimals(values, 4, type_))
            else:
                arrays.append(pa.array(values, type=type_))
        items = pa.Table.from_arrays(arrays, schema=ITEM_SCHEMA)
        stock = pa.Table.from_pydict(self.stock, schema=STOCK_SCHEMA)
        parts = {
            part: pa.Table.from_arrays(
                [
                    decimals(self.parts[part][name], 6, _DEC)
                    if schema.field(name).type == _DEC
                    else pa.array(self.parts[part][name], schema.field(name).type)
                    for name in schema.names
                ],
                schema=schema,
            )
            for part, schema in RECORD_PARTS.items()
        }
        return items, stock, parts


@dataclass
class _Kept:
    """The whole sources an engine keeps for targeted reads, by their kept table: the
    source's version when read and its side; one lock per table, so that two threads
    wanting the same source read it once."""

    sides: dict[str, tuple[Hashable, Side]] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Side:
    """A loaded source: its table prefix, how many records, which fields it carries, and how
    many of its SKUs are listed more than once."""

    table: str
    count: int
    fields: frozenset[Field]
    #: Rows beyond the first of each SKU (0: every SKU is listed once).
    duplicates: int = 0
    #: What the connector noted while reading (rows without a SKU, mangled values).
    notes: tuple[QualityNote, ...] = ()
    #: The source as its connector describes it, for findings whose row has no origin.
    where: str = ""


class Engine:
    """One in-memory DuckDB database holding the canonical side and one channel at a time:
    loading, screening and dropping sides (:class:`~omnisync.diff.DiffEngine` compares them)."""

    def __init__(
        self, timezone: str = "UTC", threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self.con = duckdb.connect(":memory:")
        self._twin = False
        #: Distinct stock locations per loaded table (see :meth:`locations`).
        self._locations: dict[str, int] = {}
        #: Whole sources kept for targeted reads (see :meth:`read`); shared with twins.
        self._kept = _Kept()
        # Beyond the memory limit DuckDB writes tables and join partitions to a private folder
        # of the system's temp directory (never the working directory: cron jobs run anywhere).
        self._spill = tempfile.TemporaryDirectory(prefix="omnisync-duckdb-")
        self.con.execute(f"SET temp_directory = {expect.sql_str(self._spill.name)}")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {expect.sql_str(memory_limit)}")
        self.con.execute("SET preserve_insertion_order = false")
        # Everything the engine uses is built in; never reach for the network mid-check.
        self.con.execute("SET autoinstall_known_extensions = false")
        self.con.execute("SET autoload_known_extensions = false")

    def twin(self) -> Self:
        """A handle on the same database for another thread. It has its own connection, so
        its statements run beside this one's (DuckDB executes without the GIL) and its
        temporary tables are its own; the loaded tables are shared. Close it after use."""
        twin = copy.copy(self)
        twin.con = self.con.cursor()
        twin._twin = True
        return twin

    def close(self) -> None:
        self.con.close()
        if not self._twin:
            self._spill.cleanup()

    # ------------------------------------------------------------ loading

    def read(
        self,
        table: str,
        connector: Connector,
        progress: Callable[[int], None] | None = None,
        skus: Collection[str] | None = None,
        records: Iterable[Record] | None = None,
    ) -> Side:
        """Load everything ``connector`` holds into ``{table}_items`` / ``{table}_stock``:
        through its columnar fast path when it has one that accepts the source, else by
        streaming its records (:meth:`load`). The side keeps the connector's quality notes.

        With ``skus`` only those SKUs are loaded: taken from the whole source this engine
        loaded before while the source's :meth:`~Connector.version` is unchanged (a file
        ``watch`` re-checks SKU by SKU is read once per change of the file, not per event);
        else asked of the source where the connector reads by SKU
        (``capabilities.targeted``), else kept from a whole read; ``records`` are those SKUs'
        records when the caller has read them already."""
        if skus is not None and records is None:
            version = connector.version()
            if version is not None:
                return self._from_kept(table, connector, progress, skus, version)
        if skus is not None and connector.capabilities.targeted:
            if records is None:
                records = connector.read_skus(skus)
            side = self.load(table, records, connector.fields(), progress)
            self._screen(table, connector.name)
        else:
            side = self._read(table, connector, progress)
            if skus is not None:
                side = self._restrict(table, side, skus)
        return replace(side, notes=tuple(connector.quality_notes()), where=connector.describe())

    def _from_kept(
        self,
        table: str,
        connector: Connector,
        progress: Callable[[int], None] | None,
        skus: Collection[str],
        version: Hashable,
    ) -> Side:
        """``skus`` of the whole source kept as ``{table}__kept`` (read again first when the
        source's version changed since), copied into ``{table}``'s tables."""
        whole = f"{table}__kept"
        with self._kept.guard:
            lock = self._kept.locks.setdefault(whole, threading.Lock())
        with lock:
            kept = self._kept.sides.get(whole)
            if kept is None or kept[0] != version:
                self._kept.sides.pop(whole, None)
                side = self._read(whole, connector, progress)
                notes = tuple(connector.quality_notes())
                kept = (version, replace(side, notes=notes, where=connector.describe()))
                self._kept.sides[whole] = kept
            self._copy(whole, table, skus)
        side, wanted = kept[1], set(skus)
        # As a targeted read notes nothing about the rows it was not asked for.
        notes = tuple(note for note in side.notes if note.sku in wanted)
        return replace(self._side(table, side.fields), notes=notes, where=side.where)

    def _copy(self, source: str, table: str, skus: Collection[str]) -> None:
        """``skus`` of the loaded ``source`` into ``table``'s own tables."""
        con = self.con
        self.drop(table)
        parts: tuple[str, ...] = ("items", "stock")
        if self.has_prices(source):
            parts += tuple(RECORD_PARTS)
        con.register("_wanted", pa.table({"sku": pa.array(sorted(set(skus)), pa.string())}))
        try:
            for part in parts:
                con.execute(
                    f"CREATE TABLE {table}_{part} AS SELECT * FROM {source}_{part} "
                    "WHERE sku IN (SELECT sku FROM _wanted)"
                )
        finally:
            con.unregister("_wanted")

    def sku_range(
        self, side: Side, table: str, low: str, high: str | None, *, first: bool = False
    ) -> Side:
        """The SKUs of a loaded ``side`` from ``low`` up to (not including) ``high`` as
        ``table``'s own tables, with their quality notes (and, ``first``, the notes of rows
        without a SKU): a catalogue taken a slice at a time."""
        self.drop(table)
        parts: tuple[str, ...] = ("items", "stock")
        if self.has_prices(side.table):
            parts += tuple(RECORD_PARTS)
        where = f"sku >= {expect.sql_str(low)}" + (
            f" AND sku < {expect.sql_str(high)}" if high else ""
        )
        for part in parts:
            self.con.execute(
                f"CREATE TABLE {table}_{part} AS SELECT * FROM {side.table}_{part} WHERE {where}"
            )
        notes = tuple(
            note
            for note in side.notes
            if (note.sku and note.sku >= low and (high is None or note.sku < high))
            or (first and not note.sku)
        )
        return replace(self._side(table, side.fields), notes=notes, where=side.where)

    def _restrict(self, table: str, side: Side, skus: Collection[str]) -> Side:
        """Keep only ``skus`` of a loaded side (as tables, whatever the fast path made)."""
        con = self.con
        con.register("_wanted", pa.table({"sku": pa.array(sorted(set(skus)), pa.string())}))
        parts: tuple[str, ...] = ("items", "stock")
        if self.has_prices(table):
            parts += tuple(RECORD_PARTS)
        try:
            for part in parts:
                con.execute(
                    f"CREATE TEMP TABLE _kept_{part} AS SELECT * FROM {table}_{part} "
                    "WHERE sku IN (SELECT sku FROM _wanted)"
                )
            self.drop(table)
            for part in parts:
                con.execute(f"CREATE TABLE {table}_{part} AS SELECT * FROM _kept_{part}")
                con.execute(f"DROP TABLE _kept_{part}")
        finally:
            con.unregister("_wanted")
        return self._side(table, side.fields)

    def _read(
        self, table: str, connector: Connector, progress: Callable[[int], None] | None
    ) -> Side:
        self.drop(table)
        fields = connector.fields()
        target = TableTarget(
            self.con,
            f"{table}_items",
            f"{table}_stock",
            ITEM_COLUMNS,
            STOCK_COLUMNS,
            self.zone.key,
        )
        if connector.read_table(target):
            self._check_tables(table, connector)
            side = self._side(table, fields)
            if not side.duplicates and not self._flagged(table):
                if progress:
                    progress(side.count)
                return side
            # Duplicates and bad values are reported with their file:line; only read() knows
            # those.
            log.info(
                "%s: rows repeat a SKU or hold values no source may hold; reading it again "
                "record by record for their locations",
                connector.name,
            )
            self.drop(table)
        side = self.load(table, connector.read(), fields, progress)
        self._screen(table, connector.name)
        return side

    def _screen_sql(self, table: str) -> dict[str, str]:
        """SQL conditions on ``{table}_items`` rows no source may hold, by what is wrong: a
        SKU with a control character (NUL, a line break: it can never be matched or written
        back as shown); in canonical, a negative price (it would be pushed to every shop)."""
        checks = {"control": f"regexp_matches(sku, {expect.sql_str(_CONTROL)})"}
        if table == CANONICAL:
            checks["negative"] = "(price < 0 OR sale_price < 0)"
        return checks

    def _flagged(self, table: str) -> bool:
        """Whether a table loaded by a fast path has rows :meth:`_screen` would report."""
        any_bad = " OR ".join(self._screen_sql(table).values())
        row = self.con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table}_items WHERE {any_bad})"
        ).fetchall()[0]
        return bool(row and row[0])

    def _screen(self, table: str, name: str) -> None:
        """Raise InputError naming each row with a value no source may hold (file:line and
        SKU); warn about negative canonical stock, which is real (oversold, backorders) but
        can only be listed as 0."""
        checks = self._screen_sql(table)
        flags = ", ".join(f"{sql} AS {key}" for key, sql in checks.items())
        rows = self.con.execute(
            f"SELECT origin, sku, price, sale_price, currency, sale_currency, {flags} "
            f"FROM {table}_items WHERE {' OR '.join(checks.values())} ORDER BY ord LIMIT 51"
        ).fetchall()
        problems = [_screened(row) for row in rows[:50]]
        if len(rows) > 50:
            problems.append(Problem("", "... and more"))
        if problems:
            raise InputError(
                problems,
                where=name,
                hint="fix the export: SKUs are matched and written as they are, "
                "and canonical prices are 0 or more",
            )
        if table == CANONICAL:
            self._warn_negative_stock(table)

    def _warn_negative_stock(self, table: str) -> None:
        rows = self.con.execute(
            f"SELECT i.origin, s.sku, s.location, s.qty FROM {table}_stock s "
            f"JOIN {table}_items i USING (sku) WHERE s.qty < 0 ORDER BY i.ord, s.location "
            "LIMIT 11"
        ).fetchall()
        if not rows:
            return
        shown = "; ".join(
            f"{origin + ' ' if origin else ''}SKU {sku} at {location}: {qty}"
            for origin, sku, location, qty in rows[:10]
        )
        more = " and more" if len(rows) > 10 else ""
        log.warning(
            "canonical has negative stock (%s%s); channels are expected to list 0 for it",
            shown,
            more,
        )

    def _check_tables(self, table: str, connector: Connector) -> None:
        """The fast path's tables have exactly the engine's columns (a broken plugin must
        say so, not produce a wrong diff)."""
        for name, wanted in ((f"{table}_items", ITEM_COLUMNS), (f"{table}_stock", STOCK_COLUMNS)):
            rows = self.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = ? AND NOT internal",
                [name],
            ).fetchall()
            if dict(rows) != wanted:
                self.drop(table)
                raise TypeError(
                    f"{type(connector).__name__}.read_table created {name} with columns "
                    f"{dict(rows)}, not {wanted}"
                )

    def _side(self, table: str, fields: frozenset[Field]) -> Side:
        row = self.con.execute(
            f"SELECT count(*), count(*) - count(DISTINCT sku) FROM {table}_items"
        ).fetchall()[0]
        assert row is not None
        return Side(table, int(row[0]), fields, int(row[1]))

    def load(
        self,
        table: str,
        records: Iterable[Record],
        fields: frozenset[Field],
        progress: Callable[[int], None] | None = None,
    ) -> Side:
        """Append ``records`` to ``{table}_items`` / ``{table}_stock`` in Arrow batches."""
        self.drop(table)
        con = self.con
        con.register("_empty_items", ITEM_SCHEMA.empty_table())
        con.register("_empty_stock", STOCK_SCHEMA.empty_table())
        con.execute(f"CREATE TABLE {table}_items AS SELECT * FROM _empty_items")
        con.execute(f"CREATE TABLE {table}_stock AS SELECT * FROM _empty_stock")
        con.unregister("_empty_items")
        con.unregister("_empty_stock")
        for part, schema in RECORD_PARTS.items():
            con.register(f"_empty_{part}", schema.empty_table())
            con.execute(f"CREATE TABLE {table}_{part} AS SELECT * FROM _empty_{part}")
            con.unregister(f"_empty_{part}")
        count = 0
        batch = _Batch()
        for record in records:
            batch.add(count, record, self.zone)
            count += 1
            if len(batch) >= BATCH_SIZE:
                self._append(table, batch)
                batch = _Batch()
                if progress:
                    progress(count)
        if len(batch):
            self._append(table, batch)
        if progress:
            progress(count)
        return self._side(table, fields)

    def _append(self, table: str, batch: _Batch) -> None:
        try:
            items, stock, parts = batch.tables()
        except (pa.ArrowInvalid, OverflowError, InvalidOperation):
            problems = batch.out_of_range()
            if not problems:
                raise
            raise InputError(
                problems[:50], hint="the source holds numbers larger than any price or stock"
            ) from None
        self.con.register("_batch_items", items)
        self.con.register("_batch_stock", stock)
        self.con.execute(f"INSERT INTO {table}_items SELECT * FROM _batch_items")
        self.con.execute(f"INSERT INTO {table}_stock SELECT * FROM _batch_stock")
        self.con.unregister("_batch_items")
        self.con.unregister("_batch_stock")
        for part, rows in parts.items():
            if rows.num_rows:
                self.con.register(f"_batch_{part}", rows)
                self.con.execute(f"INSERT INTO {table}_{part} SELECT * FROM _batch_{part}")
                self.con.unregister(f"_batch_{part}")

    def has_prices(self, table: str) -> bool:
        """Whether ``table`` was loaded with a prices table (record streams make one)."""
        row = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [f"{table}_prices"]
        ).fetchall()[0]
        return bool(row and row[0])

    def parented(self, table: str) -> bool:
        """Whether any record of ``table`` names the product it is a variant of."""
        exists = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [f"{table}_parents"]
        ).fetchall()[0]
        if not (exists and exists[0]):
            return False
        row = self.con.execute(f"SELECT EXISTS (SELECT 1 FROM {table}_parents)").fetchall()[0]
        return bool(row and row[0])

    def price_lists(self, table: str) -> list[str]:
        """The names of the price lists ``table``'s records carry (none from a fast path)."""
        if not self.has_prices(table):
            return []
        rows = self.con.execute(f"SELECT DISTINCT list FROM {table}_lists ORDER BY 1").fetchall()
        return [str(r[0]) for r in rows]

    def modified_count(self, table: str) -> int:
        """How many of ``table``'s records have a modification time (0: none reported)."""
        if not self.has_prices(table):  # made with the prices table by record streams only
            return 0
        row = self.con.execute(f"SELECT count(*) FROM {table}_modified").fetchall()[0]
        return int(row[0]) if row else 0

    def locations(self, table: str) -> int:
        """How many distinct locations ``table``'s stock has (counted once per loaded table:
        the canonical side is compared with every channel)."""
        if table not in self._locations:
            row = self.con.execute(
                f"SELECT count(DISTINCT location) FROM {table}_stock"
            ).fetchall()[0]
            self._locations[table] = int(row[0]) if row else 0
        return self._locations[table]

    def drop(self, table: str) -> None:
        """Drop a loaded source: its tables, and its items view with the table behind it."""
        self._locations.pop(table, None)
        items = f"{table}_items"
        try:
            self.con.execute(f"DROP TABLE IF EXISTS {items}")
        except duckdb.CatalogException:  # a fast path made it a view over {items}_stored
            self.con.execute(f"DROP VIEW {items}")
        self.con.execute(f"DROP TABLE IF EXISTS {items}_stored")
        for part in ("stock", *RECORD_PARTS):
            self.con.execute(f"DROP TABLE IF EXISTS {table}_{part}")

    def duplicates(self, table: str) -> list[tuple[str, int, list[str]]]:
        """SKUs listed more than once: (sku, count, origins in file order)."""
        rows = self.con.execute(
            f"SELECT sku, count(*), list(origin ORDER BY ord) FROM {table}_items "
            "GROUP BY sku HAVING count(*) > 1 ORDER BY min(ord)"
        ).fetchall()
        return [(sku, n, list(origins)) for sku, n, origins in rows]

    def require_unique(self, side: Side, what: str) -> None:
        """Raise InputError listing every duplicated SKU (used for the canonical source)."""
        if not side.duplicates:
            return
        dups = self.duplicates(side.table)
        if dups:
            problems = [
                Problem(
                    ", ".join(o for o in origins[:5] if o) or sku, f"SKU {sku!r} appears {n} times"
                )
                for sku, n, origins in dups[:50]
            ]
            if len(dups) > 50:
                problems.append(Problem("", f"... and {len(dups) - 50} more duplicated SKUs"))
            raise InputError(
                problems,
                where=what,
                hint="the canonical source must list each SKU once; fix the export",
            )

    def priced(self, side: Side) -> int:
        """Records of ``side`` whose price is above zero."""
        row = self.con.execute(
            f"SELECT count(*) FROM {side.table}_items WHERE price > 0"
        ).fetchall()[0]
        return int(row[0]) if row else 0

    def distinct(self, table: str, column: str) -> list[Any]:
        rows = self.con.execute(
            f"SELECT DISTINCT {column} FROM {table}_items WHERE {column} IS NOT NULL"
        ).fetchall()
        return [r[0] for r in rows]
