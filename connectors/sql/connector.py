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

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError
from omnisync.models import Change, Entity, Field, Record
from omnisync.sdk.connector import Capabilities, Connector, ConnectorContext, ConnectorOptions
from omnisync.sdk.feed import ChangeFeed
from omnisync.sdk.values import current_value
from omnisync.sdk.write import BatchWriter, Prepared

from .engine import create_engine, parse_url, resolve_sqlite, show_url, translate
from .options import SqlOptions
from .outbox import OutboxFeed, OutboxOptions, outbox_ddl
from .read import SqlReader
from .write import Job, bind, shown, write_batch


class _Capabilities:
    """On the class: what the kind can do. On an instance: what its mapping reads and its
    configured statements write."""

    def __get__(self, instance: SqlConnector | None, owner: type | None = None) -> Capabilities:
        if instance is None:
            everything = frozenset(Entity)
            return Capabilities(reads=everything, writes=everything, max_batch=500, targeted=True)
        options = instance.sql_options
        fields = {field.value: field for field in Field}
        writes = frozenset(fields[key].entity for key in options.write if key in fields)
        return Capabilities(
            reads=frozenset(field.entity for field in instance.fields()),
            writes=writes,
            max_batch=options.max_batch,
            targeted=True,
        )


class SqlConnector(BatchWriter[list[Job]], Connector):
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
        self.reader = SqlReader(options, self.url, self.name)

    # ------------------------------------------------------------------ describing

    def describe(self) -> str:
        return f"{show_url(self.url)} ({self.reader.source})"

    def fields(self) -> frozenset[Field]:
        return self.reader.fields()

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
                self.reader.check_columns(connection)
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc, "checking the source") from None

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Stream every record; all bad values are reported together at the end."""
        return self.reader.records(self.connect)

    def change_feed(self) -> ChangeFeed | None:
        """The outbox, when ``options.outbox`` is set."""
        outbox = self.sql_options.outbox
        return OutboxFeed(self.engine, outbox, self.name) if outbox is not None else None

    def outbox_ddl(self) -> list[str]:
        """The DDL that creates the outbox and its triggers on this database."""
        outbox = self.sql_options.outbox or OutboxOptions()
        triggers = dict(outbox.triggers)
        if not triggers:
            if self.sql_options.table is None:
                raise ConnectorError(
                    "a query source needs options.outbox.triggers: {table: SKU column}",
                    where=self.name,
                    hint="name the tables whose changes should wake omnisync watch",
                )
            triggers = {self.sql_options.table: self.sql_options.mapping.sku}
        return outbox_ddl(self.url.get_backend_name(), outbox.table, triggers)

    def install_outbox(self) -> list[str]:
        """Run :meth:`outbox_ddl` in one transaction (where the database allows DDL in one);
        the statements run."""
        statements = self.outbox_ddl()
        try:
            with self.engine.begin() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement.replace("%", "%%"))
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "creating the outbox") from None
        return statements

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The records of ``skus``: ``WHERE sku IN (...)``, a thousand SKUs per statement."""
        wanted = sorted(set(skus))
        for start in range(0, len(wanted), 1000):
            yield from self.reader.records(self.connect, wanted[start : start + 1000])

    # ------------------------------------------------------------------ writing

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The current values of the changes' targets, read for their SKUs only."""
        found: dict[str, Record] = {}
        for each in self.reader.records(self.connect, {c.sku for c in changes}):
            found.setdefault(each.sku, each)
        result: dict[str, Any] = {}
        for change in changes:
            record = found.get(change.sku)
            result[change.key] = current_value(change, record)
        return result

    def prepare(self, changes: Sequence[Change]) -> Prepared[list[Job]]:
        """Each change's statements bound to its parameters; the batch is one transaction."""
        backend = self.url.get_backend_name()
        jobs: list[Job] = []
        refused: dict[int, str] = {}
        for index, change in enumerate(changes):
            try:
                jobs.append((index, change, bind(change, self.sql_options, backend)))
            except ChangeRejected as exc:
                refused[index] = str(exc)
        return Prepared([jobs] if jobs else [], refused)

    def covers(self, request: list[Job]) -> list[int]:
        return [index for index, _, _ in request]

    def show(self, request: list[Job]) -> list[Any]:
        return shown(request)

    def send(self, request: list[Job]) -> dict[int, str | None]:
        """One transaction for the batch. When a statement fails, the batch is rolled back
        and each change is applied on its own savepoint, so that the changes the database
        rejects are reported with its message and the others are applied. A change whose
        statements affect no row at all fails with "no row matched (SKU ...)"."""
        with self.connect() as connection:
            failed = write_batch(connection, request, self._error)
        return {index: failed.get(index) for index, _, _ in request}
