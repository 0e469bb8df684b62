"""Contract tests any connector runs in one line, ours or a third party's.

::

    from omnisync.sdk.testing import ConnectorContract

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        def connector(self, tmp_path):
            return MyConnector(MyConnector.Options.model_validate({...}), ConnectorContext("shop"))

The fixture should return a connector whose source holds a few records (ideally with every
field its options map), reachable from the test (a file, a local server). A connector that
writes (``capabilities.writes`` non-empty) also runs the write-side tests, which change its
source: give each test a fresh one (a copy of the file, a reset server).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from omnisync.models import Availability, Change, Field, Op, Record
from omnisync.sdk.connector import Connector
from omnisync.sdk.values import field_value, same

#: A SKU no test source holds.
MISSING_SKU = "OMNISYNC-CONTRACT-NO-SUCH-SKU"
#: Fields the write-side tests change, in order of preference.
_WRITE_FIELDS = (
    Field.STOCK,
    Field.PRICE,
    Field.TITLE,
    Field.DESCRIPTION,
    Field.BRAND,
    Field.AVAILABILITY,
)


class ConnectorContract:
    """Subclass as ``Test...`` and provide a ``connector`` fixture."""

    @pytest.fixture
    def records(self, connector: Connector) -> list[Record]:
        return list(connector.read())

    def test_read_yields_records_keyed_by_sku(self, records: list[Record]) -> None:
        assert records, "the fixture's source should hold at least one record"
        for record in records:
            assert isinstance(record, Record)
            assert isinstance(record.sku, str)
            assert record.sku.strip(), f"blank SKU from {record.origin or 'the connector'}"
            assert record.sku == record.sku.strip()

    def test_records_carry_only_the_declared_fields(
        self, connector: Connector, records: list[Record]
    ) -> None:
        declared = connector.fields()
        for record in records:
            carried = {field for field in Field if getattr(record, field.value) is not None}
            undeclared = carried - declared
            assert not undeclared, (
                f"{record.origin or record.sku} carries {sorted(undeclared)} "
                f"that fields() does not declare ({sorted(declared)})"
            )

    def test_capabilities_cover_the_fields(self, connector: Connector) -> None:
        entities = {field.entity for field in connector.fields()}
        assert entities <= connector.capabilities.reads
        assert entities <= type(connector).capabilities.reads

    def test_check_passes(self, connector: Connector) -> None:
        connector.check()

    def test_describe_names_the_source(self, connector: Connector) -> None:
        assert connector.describe().strip()

    def test_closes_as_a_context_manager_and_again(self, connector: Connector) -> None:
        """The core closes every connector it opens when done with it (``with``); closing
        must not fail, also when it happens twice."""
        with connector as opened:
            assert opened is connector
            connector.check()
        connector.close()

    def test_has_a_one_line_description(self, connector: Connector) -> None:
        description = type(connector).description
        assert description.strip()
        assert "\n" not in description

    def test_reading_some_skus_gives_what_read_gives_for_them(
        self, connector: Connector, records: list[Record]
    ) -> None:
        """``read_skus`` (``watch`` re-reads what an event touched) yields exactly the records
        ``read()`` yields for those SKUs, and nothing for a SKU the source lacks (where the
        record was read from and when it was last modified may differ: a full read may take
        a variation's time from its parent)."""
        wanted = {r.sku for r in records[::3][:25]} | {"omnisync-no-such-sku"}

        def comparable(found: Iterable[Record]) -> list[dict[str, Any]]:
            rows = [
                dataclasses.asdict(dataclasses.replace(r, origin="", modified_at=None))
                for r in found
            ]
            return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))

        expected = comparable(r for r in records if r.sku in wanted)
        assert comparable(connector.read_skus(sorted(wanted))) == expected
        assert list(connector.read_skus([])) == []

    def test_finding_skus_by_ids_gives_the_records_that_carry_them(
        self, connector: Connector, records: list[Record]
    ) -> None:
        """``find_skus`` (``watch`` resolves a webhook that names only the channel's own ids)
        gives the SKUs of exactly the records whose ``ids`` hold one of the ids asked for, by
        every id name at once and by each alone; ids and id names the source lacks name
        nothing (and are no error)."""
        sample = [r for r in records if r.ids][::3][:10]
        if not sample:
            pytest.skip(f"{type(connector).__name__}'s records carry no ids")
        refs: dict[str, set[str]] = {}
        for record in sample:
            for name, value in record.ids.items():
                refs.setdefault(name, set()).add(value)

        def carrying(wanted: dict[str, set[str]]) -> set[str]:
            return {r.sku for r in records if any(r.ids.get(n) in v for n, v in wanted.items())}

        assert connector.find_skus(refs) == carrying(refs)
        for name, values in refs.items():
            assert connector.find_skus({name: values}) == carrying({name: values}), name
        assert connector.find_skus({}) == set()
        unknown = {name: {"omnisync-no-such-id"} for name in refs}
        assert connector.find_skus({**unknown, "omnisync_no_such_id_name": {"1"}}) == set()

    def test_the_columnar_fast_path_gives_what_read_gives(self, connector: Connector) -> None:
        """A connector whose ``read_table`` accepts its source must write exactly the records
        ``read()`` yields (connectors without a fast path decline and pass)."""
        fast, rows = read_both_ways(connector)
        if fast is None:
            pytest.skip(f"{type(connector).__name__}.read_table declines this source")
        assert fast == rows

    # -- write side: only for connectors whose capabilities.writes is non-empty ---------------

    @pytest.fixture
    def writer(self, connector: Connector) -> Connector:
        if not connector.capabilities.writes:
            pytest.skip(f"{type(connector).__name__} does not write")
        return connector

    def test_writing_the_current_value_succeeds(
        self, writer: Connector, records: list[Record]
    ) -> None:
        change = _change(writer, records, new=False)
        results = writer.write([change])
        assert [(r.key, r.ok, r.error) for r in results] == [(change.key, True, None)]
        assert _value_of(writer, change) is not None

    def test_a_change_is_visible_to_the_next_read(
        self, writer: Connector, records: list[Record]
    ) -> None:
        change = _change(writer, records, new=True)
        [result] = writer.write([change])
        assert result.ok, result.error
        assert change.field is not None
        assert same(change.field, _value_of(writer, change), change.after), (
            f"{change.key}: wrote {change.after!r}, read back {_value_of(writer, change)!r}"
        )
        current = writer.current([change])
        assert same(change.field, current[change.key], change.after)

    def test_write_answers_once_per_change_in_order(
        self, writer: Connector, records: list[Record]
    ) -> None:
        known = _change(writer, records, new=False)
        unknown = Change(
            writer.name,
            MISSING_SKU,
            Op.UPDATE,
            known.field,
            known.location,
            known.before,
            known.after,
        )
        changes = [unknown, known, unknown]
        results = writer.write(changes)
        assert [r.key for r in results] == [c.key for c in changes]
        assert [r.ok for r in results] == [False, True, False]
        assert results[0].error, "a failed change says why"


_COMPARED = (
    "sku, title, description, gtin, brand, attributes, price, currency, sale_price, "
    "sale_currency, sale_start, sale_end, vat_rate, availability, ids"
)


def read_both_ways(connector: Connector, timezone: str = "UTC") -> tuple[Any, Any]:
    """The engine's tables from ``read_table`` and from ``read()`` (both None when the fast
    path declines, so that read() is not run for nothing):
    each ``(items, stock)`` as sorted rows, text composed (NFC) as the engine shows it.
    ``ord`` and ``origin`` are left out: the fast path may leave them NULL."""
    from omnisync.load import ITEM_COLUMNS, STOCK_COLUMNS, Engine
    from omnisync.sdk.connector import TableTarget

    engine = Engine(timezone=timezone)
    try:
        target = TableTarget(
            engine.con, "f_items", "f_stock", ITEM_COLUMNS, STOCK_COLUMNS, timezone
        )
        if not connector.read_table(target):
            return None, None
        engine.load("s", connector.read(), connector.fields())
        return _tables(engine, "f"), _tables(engine, "s")
    finally:
        engine.close()


def _tables(engine: Any, prefix: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    import unicodedata

    items = engine.con.execute(f"SELECT {_COMPARED} FROM {prefix}_items ORDER BY ALL").fetchall()
    stock = engine.con.execute(f"SELECT * FROM {prefix}_stock ORDER BY ALL").fetchall()
    texts = (1, 2, 4)  # title, description, brand may be stored uncomposed
    composed = [
        tuple(
            unicodedata.normalize("NFC", v) if i in texts and isinstance(v, str) else v
            for i, v in enumerate(row)
        )
        for row in items
    ]
    return sorted(composed, key=repr), stock


def _change(connector: Connector, records: list[Record], *, new: bool) -> Change:
    """An update of the first writable field some record has: to its current value, or to a
    different one."""
    writable = {f for f in connector.fields() if f.entity in connector.capabilities.writes}
    for field in (f for f in _WRITE_FIELDS if f in writable):
        for record in records:
            location = None
            if field is Field.STOCK and record.stock:
                location = next(iter(record.stock))
                location = None if location == "default" else location
            value = field_value(record, field, location)
            if value is not None:
                after = _other(field, value) if new else value
                return Change(
                    connector.name, record.sku, Op.UPDATE, field.value, location, value, after
                )
    pytest.skip("no record has a value of a field these tests know how to change")


def _other(field: Field, value: Any) -> Any:
    if field is Field.STOCK:
        return int(value) + 3
    if field is Field.PRICE:
        return {**value, "amount": str(Decimal(value["amount"]) + 1)}
    if field is Field.AVAILABILITY:
        flipped = value != Availability.IN_STOCK.value
        return Availability.IN_STOCK.value if flipped else Availability.OUT_OF_STOCK.value
    return f"{value} (changed)"


def _value_of(connector: Connector, change: Change) -> Any:
    record = next((r for r in connector.read() if r.sku == change.sku), None)
    assert record is not None, f"{change.sku} is gone after the write"
    assert change.field is not None
    return field_value(record, change.field, change.location)
