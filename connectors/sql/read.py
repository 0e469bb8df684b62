"""Reading for the sql connector: the rows of a table or a query, streamed from a server-side
cursor, as records.

Each row goes through the same :class:`~omnisync.sdk.mapping.RowMapper` as every tabular
source, with the database's own checks around it: binary floats taken only when exact, NULL
and negative prices, amounts in minor units. With ``stock_rows`` adjacent rows of one SKU
fold into one record (see :mod:`.connector`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, suppress
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from omnisync.errors import ConnectorError, InputError, Problem
from omnisync.models import Field, Money, Record
from omnisync.normalize import clean_text, minor_units, parse_int
from omnisync.sdk.mapping import ProblemCollector, RowMapper, missing_columns_error

from .engine import show_url, translate
from .options import SqlOptions, StockRows

#: A float whose shortest repr has more significant digits than this is arithmetic noise.
_FLOAT_DIGITS = 15


class SqlReader:
    """The records of one source (``options.table`` or ``options.query``)."""

    def __init__(self, options: SqlOptions, url: URL, where: str) -> None:
        self.options = options
        self.url = url
        #: The channel, for error messages.
        self.where = where
        #: What is read, for origins and messages: ``table articles`` or ``query``.
        self.source = f"table {options.table}" if options.table else "query"

    def mapper(self) -> RowMapper:
        return RowMapper(self.options.mapping, self.options, self.where)

    def fields(self) -> frozenset[Field]:
        """The record fields the mapping (and ``stock_rows``) provide."""
        provided = self.mapper().fields()
        return provided | {Field.STOCK} if self.options.stock_rows else provided

    def columns(self) -> list[str]:
        """Every column the options read, once each."""
        wanted = self.mapper().required_columns()
        rows = self.options.stock_rows
        if rows is not None:
            wanted += [rows.location, rows.quantity]
        return list(dict.fromkeys(wanted))

    def _error(self, exc: sa.exc.SQLAlchemyError, doing: str) -> ConnectorError:
        return translate(exc, where=self.where, url=self.url, doing=doing)

    def _table(self) -> sa.TableClause:
        name = self.options.table or ""
        schema, _, table = name.rpartition(".")
        return sa.table(table, *(sa.column(c) for c in self.columns()), schema=schema or None)

    def check_columns(self, connection: Connection) -> None:
        """The source has every mapped column (a query is run to return no rows)."""
        if self.options.table:
            self._table_columns(connection)
        else:
            probe = sa.text(f"SELECT * FROM ({self.options.query}) q WHERE 1 = 0")
            self._check_result_columns(list(connection.execute(probe).keys()))

    def _table_columns(self, connection: Connection) -> None:
        """The table exists and has every mapped column, else an error naming what is not."""
        table = self._table()
        inspector = sa.inspect(connection)
        if not inspector.has_table(table.name, schema=table.schema):
            present = inspector.get_table_names(schema=table.schema)
            close = [n for n in present if n.casefold() == table.name.casefold()]
            hint = f"did you mean {close[0]!r}? " if close else ""
            shown = ", ".join(sorted(present)[:30]) or "none"
            raise ConnectorError(
                f"no table {self.options.table!r} in {show_url(self.url)}",
                where=self.where,
                hint=f"{hint}check options.table; the tables present are: {shown}",
            )
        present = [c["name"] for c in inspector.get_columns(table.name, schema=table.schema)]
        lowered = {name.casefold() for name in present}
        # MySQL/MariaDB and SQLite compare column names case-insensitively.
        folds = self.url.get_backend_name() in ("mysql", "mariadb", "sqlite")
        missing = [
            c
            for c in self.columns()
            if c not in present and not (folds and c.casefold() in lowered)
        ]
        if missing:
            raise missing_columns_error(
                missing, present, where=self.source, mapping=self.options.mapping
            )

    def _check_result_columns(self, keys: list[str]) -> None:
        missing = [c for c in self.columns() if c not in keys]
        if missing:
            raise missing_columns_error(
                missing, keys, where="options.query", mapping=self.options.mapping
            )
        doubled = sorted({k for k in keys if keys.count(k) > 1} & set(self.columns()))
        if doubled:
            names = ", ".join(repr(k) for k in doubled)
            raise InputError(
                [Problem("options.query", f"the query returns {names} more than once")],
                hint="give each selected column its own name (SELECT a.id AS article_id, ...)",
            )

    def _statement(self, skus: Collection[str] | None) -> sa.Executable:
        options = self.options
        if options.table:
            table = self._table()
            select = sa.select(*table.c)
            sku = table.c[options.mapping.sku]
            if skus is not None:
                select = select.where(sku.in_(sorted(skus)))
            if options.stock_rows or skus is not None:
                select = select.order_by(sku)
            return select
        assert options.query is not None
        if skus is None:
            return sa.text(options.query)
        inner = sa.text(options.query).columns(*(sa.column(c) for c in self.columns()))
        sub = inner.subquery("q")
        key = sub.c[options.mapping.sku]
        return sa.select(*sub.c).where(key.in_(sorted(skus))).order_by(key)

    def records(
        self,
        connect: Callable[[], AbstractContextManager[Connection]],
        skus: Collection[str] | None = None,
    ) -> Iterator[Record]:
        """Stream the records (of ``skus`` only, when given) over a connection from
        ``connect``; every bad value is reported together at the end."""
        options = self.options
        problems = ProblemCollector()
        with connect() as connection:
            try:
                # Columns first: a stream abandoned early must be drained on MySQL.
                self.check_columns(connection)
                streaming = connection.execution_options(
                    stream_results=True, yield_per=options.batch_size
                )
                result = streaming.execute(self._statement(skus))
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc, "running the query") from None
            try:
                yield from self._fold(self._rows(result, list(result.keys())), problems)
            except GeneratorExit:  # the consumer stopped early (it found what it wanted)
                self._stop(connection, result)
                raise
        problems.raise_if_any(where=self.where)

    def _stop(self, connection: Connection, result: sa.CursorResult[Any]) -> None:
        """End a stream before its last row. MySQL cannot cancel a streamed result: closing
        it reads every remaining row, so the connection is dropped instead."""
        if self.url.get_backend_name() in ("mysql", "mariadb"):
            _abandon(result)
            connection.invalidate()
        else:
            result.close()

    def _rows(self, result: sa.CursorResult[Any], keys: list[str]) -> Iterator[dict[str, Any]]:
        count = 0
        iterator = iter(result)
        while True:
            try:
                row = next(iterator)
            except StopIteration:
                return
            except sa.exc.SQLAlchemyError as exc:
                _abandon(result)
                raise self._error(exc, f"reading (after {count} rows)") from None
            count += 1
            yield dict(zip(keys, row, strict=True))

    def _fold(self, rows: Iterator[dict[str, Any]], problems: ProblemCollector) -> Iterator[Record]:
        """Rows to records; with ``stock_rows``, adjacent rows of one SKU to one record."""
        options = self.options
        mapper = self.mapper()
        mapped = mapper.required_columns()
        stock_rows = options.stock_rows
        sku_column = options.mapping.sku
        id_columns = list(options.mapping.ids.values())
        current: Record | None = None
        group: tuple[Any, ...] | None = None
        group_failed = False
        for number, row in enumerate(rows, start=1):
            origin = f"{self.source} row {number}"
            if stock_rows is None:
                record = self._record(row, origin, mapper, mapped, problems)
                if record is not None:
                    yield record
                continue
            key = (row[sku_column], *(row[c] for c in id_columns))
            location = self._location(row, stock_rows, origin, problems)
            if key == group:
                if group_failed:
                    continue
                if current is not None and (
                    location is None or location[0] not in (current.stock or {})
                ):
                    self._add_stock(current, location)
                    continue
            # A new SKU, or the same SKU again with a location it already has: a new record.
            if current is not None:
                yield _finished(current)
            group = key
            current = self._record(row, origin, mapper, mapped, problems)
            group_failed = current is None
            if current is not None:
                self._add_stock(current, location)
        if current is not None:
            yield _finished(current)

    def _record(
        self,
        row: dict[str, Any],
        origin: str,
        mapper: RowMapper,
        mapped: list[str],
        problems: ProblemCollector,
    ) -> Record | None:
        """One row through the RowMapper, with the database-specific checks around it;
        ``mapped`` are the columns the mapper reads."""
        options = self.options
        mapping = options.mapping
        sku = str(row.get(mapping.sku))
        found: list[Problem] = []

        def bad(column: str, reason: str) -> None:
            found.append(Problem(origin, f"column {column!r} (SKU {sku}): {reason}"))

        for column in mapped:
            row[column] = _exact(row[column], column, bad)
        if mapping.price and row.get(mapping.price) is None:
            bad(mapping.price, "the price is NULL (map only rows that have a price, or COALESCE)")
        if found:
            for problem in found:
                problems.append(problem)
            return None
        record = mapper.to_record(row, origin, problems)
        if record is None:
            return None
        # Where each amount came from (the Shopify model moves compare-at into price).
        swapped = bool(mapping.compare_at_price and record.sale_price)
        columns = {
            "price": (mapping.compare_at_price if swapped else mapping.price) or "",
            "sale_price": mapping.sale_price or mapping.price or "",
        }
        for name, column in columns.items():
            money: Money | None = getattr(record, name)
            if money is None:
                continue
            if options.price_unit == "minor":
                scaled = _from_minor(money)
                if scaled is None:
                    bad(
                        column,
                        f"{money.amount} is not a whole number of minor units (price_unit: minor)",
                    )
                    continue
                money = scaled
                setattr(record, name, money)
            if money.amount < 0:
                bad(column, f"the {name.replace('_', ' ')} is negative ({money})")
        if found:
            for problem in found:
                problems.append(problem)
            return None
        return record

    def _location(
        self, row: dict[str, Any], spec: StockRows, origin: str, problems: ProblemCollector
    ) -> tuple[str, int] | None:
        """The (location, quantity) of a long-form stock row; None when the row has none."""
        sku = str(row.get(self.options.mapping.sku))
        raw_location, raw_quantity = row[spec.location], row[spec.quantity]
        if raw_quantity is None:
            return None  # a LEFT JOIN without stock rows: stock not tracked here
        try:
            location = clean_text(_exact_value(raw_location))
        except ValueError as exc:
            problems.append(Problem(origin, f"column {spec.location!r} (SKU {sku}): {exc}"))
            return None
        if location is None:
            problems.append(
                Problem(origin, f"column {spec.location!r} (SKU {sku}): the location is NULL")
            )
            return None
        try:
            quantity = parse_int(_exact_value(raw_quantity))
        except ValueError as exc:
            problems.append(Problem(origin, f"column {spec.quantity!r} (SKU {sku}): {exc}"))
            return None
        return location, quantity

    @staticmethod
    def _add_stock(record: Record, location: tuple[str, int] | None) -> None:
        if record.stock is None:
            record.stock = {}
        if location is not None:
            record.stock[location[0]] = location[1]


def _abandon(result: sa.CursorResult[Any]) -> None:
    """Close the cursor of a stream whose connection was lost, so that drivers do not
    complain when it is collected: PyMySQL's unbuffered result would still wait for rows and
    raise from ``__del__``, psycopg warns about a server-side cursor left open."""
    cursor = getattr(result, "cursor", None)
    unbuffered = getattr(cursor, "_result", None)
    if unbuffered is not None and getattr(unbuffered, "unbuffered_active", False):
        unbuffered.unbuffered_active = False
    with suppress(Exception):  # the connection is gone; closing is all that is left to do
        if cursor is not None:
            cursor.close()


def _finished(record: Record) -> Record:
    if record.stock is not None and not record.stock:
        record.stock = None
    return record


def _from_minor(money: Money) -> Money | None:
    """An amount read in minor units as major units; None when it is not a whole number."""
    if money.amount != money.amount.to_integral_value():
        return None
    return Money(money.amount.scaleb(-minor_units(money.currency)), money.currency)


def _exact_value(value: Any) -> Any:
    """A database value in a form the value parsers take exactly."""
    if isinstance(value, float):
        exact = _float_decimal(value)
        if exact is None:
            raise ValueError(_float_message(value))
        return exact
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _exact(value: Any, column: str, bad: Any) -> Any:
    try:
        return _exact_value(value)
    except ValueError as exc:
        bad(column, str(exc))
        return None


def _float_decimal(value: float) -> Decimal | None:
    """The decimal a float was written as, when its shortest repr shows it (<= 15 digits)."""
    text = repr(value)
    if not math.isfinite(value):
        return Decimal(text)  # rejected with a message by the value parsers
    exact = Decimal(text)
    return exact if len(exact.as_tuple().digits) <= _FLOAT_DIGITS else None


def _float_message(value: float) -> str:
    return (
        f"{value!r} is a binary floating-point number, not an exact value (a REAL, FLOAT or "
        "DOUBLE column); store it as DECIMAL/NUMERIC or integer cents, or ROUND/CAST it "
        "to DECIMAL in the query"
    )
