"""Any SQL database SQLAlchemy reaches: ``connector: sql``.

::

    connector: sql
    options:
      url: ${POS_DB_URL}             # postgresql://user:pw@host/db, mysql://..., sqlite:///pos.db
      table: articles                # a table (or schema.table) ...
      query: |                       # ... or a SELECT with the joins a real schema needs
        SELECT a.sku, a.name, p.amount_cents, p.currency, s.code AS store, k.qty
        FROM articles a JOIN prices p ON p.article_id = a.id
        LEFT JOIN stock k ON k.article_id = a.id LEFT JOIN stores s ON s.id = k.store_id
        ORDER BY a.sku, s.code
      mapping: {sku: sku, title: name, price: amount_cents, currency: currency}
      price_unit: minor              # amounts are integers in the currency's minor unit (cents)
      stock_rows: {location: store, quantity: qty}   # one row per (SKU, location)
      batch_size: 1000               # rows per round trip from a server-side cursor
      write:                         # optional: a statement per field (bound parameters only)
        price: UPDATE prices SET amount_cents = :price_cents
               WHERE article_id = (SELECT id FROM articles WHERE sku = :sku)

Rows are streamed through a server-side cursor and mapped by the same
:class:`~omnisync.sdk.mapping.RowMapper` as every tabular source; the database's typed values
(``Decimal``, ``int``, ``datetime``) are taken as they are. A binary float (a ``REAL`` or
``DOUBLE`` column) is taken by its shortest representation when that has at most 15
significant digits (which is what was stored, for any price or quantity); a float with
binary noise (``23.788100000000004``, the result of float arithmetic) is rejected, naming
the column and the SKU. A NULL or negative price is a problem too.

With ``stock_rows`` adjacent rows of one SKU fold into one record (the query must
``ORDER BY`` the SKU); a SKU that appears again later, or a location repeated within one
SKU's rows, starts another record, which the check reports as a duplicate rather than
merging what may be two different articles.

Writes run one transaction per batch. When a statement fails the batch is rolled back and
retried change by change, each on its own savepoint: the changes the database rejects are
reported with its message, the others applied. A change whose statements affect no row
fails with "no row matched (SKU ...)". The parameters are documented in :mod:`.statements`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field as PydanticField
from pydantic import StringConstraints, field_validator, model_validator
from sqlalchemy.engine import URL, Connection, Engine

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError, InputError, Problem
from omnisync.markup import text_html
from omnisync.models import Change, Entity, Field, Money, Op, Record
from omnisync.normalize import clean_text, minor_units, parse_int
from omnisync.sdk.connector import Capabilities, Connector, ConnectorContext, ConnectorOptions
from omnisync.sdk.mapping import (
    FieldMapping,
    ParseOptions,
    ProblemCollector,
    RowMapper,
    missing_columns_error,
)
from omnisync.sdk.values import current_value
from omnisync.sdk.write import BatchWriter, Prepared

from . import statements
from .engine import (
    create_engine,
    database_message,
    is_connection_failure,
    is_retriable,
    parse_url,
    resolve_sqlite,
    show_url,
    translate,
)

Column = Annotated[str, StringConstraints(min_length=1)]
Statement = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

#: A change to write: its index in the batch, the change, its statements with parameters.
_Job = tuple[int, Change, list[tuple[sa.TextClause, dict[str, Any]]]]


#: A float whose shortest repr has more significant digits than this is arithmetic noise.
_FLOAT_DIGITS = 15
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_SELECT = re.compile(r"^\s*(\(\s*)*(select|with)\b", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


class StockRows(ConnectorOptions):
    """Stock in long form: each row carries one location and its quantity."""

    #: Column with the location (store code); rows with NULL location and quantity are skipped.
    location: Column
    #: Column with the quantity at that location.
    quantity: Column


class SqlOptions(ParseOptions):
    """Options of the sql connector."""

    #: A SQLAlchemy database URL. May carry a password: write it as ${ENV_VAR}.
    url: Annotated[str, StringConstraints(min_length=1)]
    #: The table to read (``articles`` or ``schema.articles``); or set ``query``.
    table: str | None = None
    #: A SELECT whose result columns the mapping names; or set ``table``.
    query: str | None = None
    #: Which column holds which record field.
    mapping: FieldMapping
    #: ``minor``: price columns hold whole minor units of the currency (cents; yen for JPY).
    price_unit: Literal["major", "minor"] = "major"
    #: One row per (SKU, location): ``{location: column, quantity: column}``.
    stock_rows: StockRows | None = None
    #: Rows fetched per round trip from the server-side cursor.
    batch_size: int = PydanticField(default=1000, ge=1, le=100_000)
    #: Seconds to wait for a connection (SQLite: for a locked database).
    connect_timeout: float = PydanticField(default=10, gt=0)
    #: ``{field | create | delete: statement or [statements]}`` with bound parameters.
    write: dict[str, Statement | list[Statement]] = PydanticField(default_factory=dict)
    #: The most changes one write transaction carries.
    max_batch: int = PydanticField(default=500, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        parse_url(value)  # raises ValueError without echoing the URL
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("name a table, or leave it out and set query")
        return value.strip() if value else value

    @field_validator("query")
    @classmethod
    def _select(cls, value: str | None) -> str | None:
        if value is None:
            return None
        query = value.strip().rstrip(";").rstrip()
        if not _SELECT.match(_COMMENT.sub(" ", query)):
            raise ValueError("must be a SELECT (or WITH ... SELECT) statement")
        if statements.bind_names(query):
            names = ", ".join(f":{n}" for n in statements.bind_names(query))
            raise ValueError(f"must not contain parameters ({names}); write a literal colon as \\:")
        return query

    @field_validator("write")
    @classmethod
    def _statements(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for key, given in value.items():
            if key not in statements.WRITE_KEYS:
                known = ", ".join(statements.WRITE_KEYS)
                raise ValueError(f"{key!r} is not a field or create/delete; known: {known}")
            if isinstance(given, list) and not given:
                raise ValueError(f"{key}: give at least one statement")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SqlOptions:
        if (self.table is None) == (self.query is None):
            raise ValueError("set either table or query (not both)")
        if self.stock_rows is not None:
            if self.mapping.stock is not None:
                raise ValueError(
                    "map stock either in mapping.stock (a column per location) or in "
                    "stock_rows (a row per location), not both"
                )
            if self.query is not None and not _ORDER_BY.search(self.query):
                raise ValueError(
                    f"stock_rows needs the query to ORDER BY the SKU column "
                    f"({self.mapping.sku}) so that the rows of one SKU are adjacent"
                )
        if self.price_unit == "minor" and not (self.currency or self.mapping.currency):
            raise ValueError(
                "price_unit: minor needs the currency (set currency, or map a currency "
                "column): the minor unit of EUR is a cent, of JPY a yen"
            )
        ids = set(self.mapping.ids)
        clashing = sorted(ids & statements.RESERVED)
        if clashing and self.write:
            raise ValueError(
                f"mapping.ids {clashing} take names of write parameters; rename the ids"
            )
        for key, given in self.write.items():
            allowed = statements.parameters_for(key) | ids
            for statement in [given] if isinstance(given, str) else given:
                unknown = [n for n in statements.bind_names(statement) if n not in allowed]
                if unknown:
                    raise ValueError(
                        f"write.{key}: unknown parameter "
                        f"{', '.join(':' + n for n in unknown)}; "
                        f"known: {', '.join(':' + n for n in sorted(allowed))}"
                    )
        return self


class _Capabilities:
    """On the class: what the kind can do. On an instance: what its mapping reads and its
    configured statements write."""

    def __get__(self, instance: SqlConnector | None, owner: type | None = None) -> Capabilities:
        if instance is None:
            everything = frozenset(Entity)
            return Capabilities(reads=everything, writes=everything, max_batch=500)
        options = instance.sql_options
        fields = {field.value: field for field in Field}
        writes = frozenset(fields[key].entity for key in options.write if key in fields)
        return Capabilities(
            reads=frozenset(field.entity for field in instance.fields()),
            writes=writes,
            max_batch=options.max_batch,
        )


class SqlConnector(BatchWriter[list[_Job]], Connector):
    """Reads (and optionally writes) a SQL database: PostgreSQL, MariaDB/MySQL, SQLite."""

    description = "SQL database (PostgreSQL, MariaDB/MySQL, SQLite): a table or a query"
    Options = SqlOptions
    capabilities = _Capabilities()

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        if not isinstance(options, SqlOptions):
            raise TypeError(f"{type(self).__name__} needs {SqlOptions.__name__}")
        super().__init__(options, context)
        self.sql_options = options
        self.url: URL = resolve_sqlite(parse_url(options.url), context.base_dir)
        if self.url.password:
            secrets.register(str(self.url.password))
        self._source = f"table {options.table}" if options.table else "query"

    # ------------------------------------------------------------------ describing

    def describe(self) -> str:
        return f"{show_url(self.url)} ({self._source})"

    def fields(self) -> frozenset[Field]:
        provided = self.mapper().fields()
        return provided | {Field.STOCK} if self.sql_options.stock_rows else provided

    def mapper(self) -> RowMapper:
        return RowMapper(self.sql_options.mapping, self.sql_options, self.name)

    def columns(self) -> list[str]:
        """Every column the options read, once each."""
        wanted = self.mapper().required_columns()
        rows = self.sql_options.stock_rows
        if rows is not None:
            wanted += [rows.location, rows.quantity]
        return list(dict.fromkeys(wanted))

    # ------------------------------------------------------------------ connecting

    @cached_property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (no pool: connections live as long as one operation)."""
        if self.url.get_backend_name() == "sqlite":
            database = self.url.database or ":memory:"
            on_disk = database != ":memory:" and not database.startswith("file:")
            if on_disk and not Path(database).is_file():
                raise ConnectorError(
                    f"SQLite database file not found: {database}",
                    where=self.name,
                    hint="check options.url (a relative path is relative to the config "
                    "file's folder)",
                )
        return create_engine(
            self.url, where=self.name, connect_timeout=self.sql_options.connect_timeout
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection; failures to connect are translated (auth, unreachable, ...)."""
        try:
            connection = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "connecting") from None
        with connection:
            yield connection

    def _error(self, exc: sa.exc.SQLAlchemyError, doing: str) -> ConnectorError:
        return translate(exc, where=self.name, url=self.url, doing=doing)

    def check(self) -> None:
        """Connect and ``SELECT 1``; the table and the mapped columns exist (or the query
        runs and returns them)."""
        with self.connect() as connection:
            try:
                connection.execute(sa.text("SELECT 1")).scalar()
                self._check_columns(connection)
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc, "checking the source") from None

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Stream every record; all bad values are reported together at the end."""
        return self._records(None)

    def _table(self) -> sa.TableClause:
        name = self.sql_options.table or ""
        schema, _, table = name.rpartition(".")
        return sa.table(table, *(sa.column(c) for c in self.columns()), schema=schema or None)

    def _check_columns(self, connection: Connection) -> None:
        """The source has every mapped column (a query is run to return no rows)."""
        if self.sql_options.table:
            self._table_columns(connection)
        else:
            probe = sa.text(f"SELECT * FROM ({self.sql_options.query}) q WHERE 1 = 0")
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
                f"no table {self.sql_options.table!r} in {show_url(self.url)}",
                where=self.name,
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
                missing, present, where=self._source, mapping=self.sql_options.mapping
            )

    def _check_result_columns(self, keys: list[str]) -> None:
        missing = [c for c in self.columns() if c not in keys]
        if missing:
            raise missing_columns_error(
                missing, keys, where="options.query", mapping=self.sql_options.mapping
            )
        doubled = sorted({k for k in keys if keys.count(k) > 1} & set(self.columns()))
        if doubled:
            names = ", ".join(repr(k) for k in doubled)
            raise InputError(
                [Problem("options.query", f"the query returns {names} more than once")],
                hint="give each selected column its own name (SELECT a.id AS article_id, ...)",
            )

    def _statement(self, skus: Collection[str] | None) -> sa.Executable:
        options = self.sql_options
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

    def _records(self, skus: Collection[str] | None) -> Iterator[Record]:
        options = self.sql_options
        problems = ProblemCollector()
        with self.connect() as connection:
            try:
                # Columns first: a stream abandoned early must be drained on MySQL.
                self._check_columns(connection)
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
        problems.raise_if_any(where=self.name)

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
        options = self.sql_options
        mapper = self.mapper()
        mapped = mapper.required_columns()
        stock_rows = options.stock_rows
        sku_column = options.mapping.sku
        id_columns = list(options.mapping.ids.values())
        current: Record | None = None
        group: tuple[Any, ...] | None = None
        group_failed = False
        for number, row in enumerate(rows, start=1):
            origin = f"{self._source} row {number}"
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
        options = self.sql_options
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
        sku = str(row.get(self.sql_options.mapping.sku))
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

    # ------------------------------------------------------------------ writing

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The current values of the changes' targets, read for their SKUs only."""
        found: dict[str, Record] = {}
        for each in self._records({c.sku for c in changes}):
            found.setdefault(each.sku, each)
        result: dict[str, Any] = {}
        for change in changes:
            record = found.get(change.sku)
            result[change.key] = current_value(change, record)
        return result

    def _bound(self, change: Change) -> list[tuple[sa.TextClause, dict[str, Any]]]:
        key = change.field if change.op is Op.UPDATE else change.op.value
        given = self.sql_options.write.get(key or "")
        if given is None:
            raise ChangeRejected(f"no write statement for {key!r}; configure options.write.{key}")
        backend = self.url.get_backend_name()
        params = statements.change_parameters(change, aware=backend == "postgresql")
        if self.sql_options.description_format == "html":
            # :description (and a description update's :value) as the HTML the column holds.
            for name in ("description", "value") if key == "description" else ("description",):
                if isinstance(params.get(name), str):
                    params[name] = text_html(params[name])
        bound = []
        for text in [given] if isinstance(given, str) else given:
            clause = sa.text(text)
            names = statements.bind_names(text)
            values = statements.bound(params, names, change.sku)
            bound.append((clause, statements.for_driver(values, backend)))
        return bound

    def prepare(self, changes: Sequence[Change]) -> Prepared[list[_Job]]:
        """Each change's statements bound to its parameters; the batch is one transaction."""
        jobs: list[_Job] = []
        refused: dict[int, str] = {}
        for index, change in enumerate(changes):
            try:
                jobs.append((index, change, self._bound(change)))
            except ChangeRejected as exc:
                refused[index] = str(exc)
        return Prepared([jobs] if jobs else [], refused)

    def covers(self, request: list[_Job]) -> list[int]:
        return [index for index, _, _ in request]

    def show(self, request: list[_Job]) -> list[Any]:
        return [
            {
                "key": change.key,
                "statements": [
                    {
                        "sql": str(statement),
                        "params": {k: statements.displayable(v) for k, v in params.items()},
                    }
                    for statement, params in bound
                ],
            }
            for _, change, bound in request
        ]

    def send(self, request: list[_Job]) -> dict[int, str | None]:
        """One transaction for the batch. When a statement fails, the batch is rolled back
        and each change is applied on its own savepoint, so that the changes the database
        rejects are reported with its message and the others are applied. A change whose
        statements affect no row at all fails with "no row matched (SKU ...)"."""
        with self.connect() as connection:
            failed = self._write_together(connection, request)
            if failed is None:
                failed = self._write_one_by_one(connection, request)
        return {index: failed.get(index) for index, _, _ in request}

    def _write_together(self, connection: Connection, jobs: list[_Job]) -> dict[int, str] | None:
        """The fast path: the whole batch in one transaction. ``None`` when it was rolled
        back because a statement failed."""
        failed: dict[int, str] = {}
        try:
            with connection.begin():
                for index, change, bound in jobs:
                    if not _apply(connection, bound):
                        failed[index] = _no_row(change)  # it changed nothing: no undo needed
        except sa.exc.StatementError as exc:
            if _fatal_for_batch(exc):
                raise self._error(exc, "writing") from None
            return None
        return failed

    def _write_one_by_one(self, connection: Connection, jobs: list[_Job]) -> dict[int, str]:
        """Each change on its own savepoint: a failing one is undone and reported."""
        failed: dict[int, str] = {}
        try:
            with connection.begin():
                for index, change, bound in jobs:
                    savepoint = connection.begin_nested()
                    try:
                        touched = _apply(connection, bound)
                    except sa.exc.StatementError as exc:
                        if _fatal_for_batch(exc):
                            raise
                        savepoint.rollback()
                        failed[index] = database_message(exc)
                        continue
                    savepoint.commit()
                    if not touched:
                        failed[index] = _no_row(change)
        except sa.exc.StatementError as exc:
            raise self._error(exc, "writing") from None
        return failed


def _apply(connection: Connection, bound: list[tuple[sa.TextClause, dict[str, Any]]]) -> bool:
    """Execute one change's statements; whether any of them affected a row (a driver that
    cannot tell, rowcount -1, counts as yes)."""
    counts = [connection.execute(clause, params).rowcount for clause, params in bound]
    return any(count != 0 for count in counts)


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


def _no_row(change: Change) -> str:
    return f"no row matched (SKU {change.sku})"


def _fatal_for_batch(exc: sa.exc.StatementError) -> bool:
    """Failures no single change caused: the connection went, or the database asks to retry."""
    return is_connection_failure(exc) or is_retriable(exc)


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
