"""The outbox: triggers on the source's tables write each touched SKU to a small table, and
``omnisync watch`` consumes it (the SQL connector's :class:`~omnisync.sdk.feed.ChangeFeed`).

``omnisync outbox -c CONFIG`` prints the DDL for the configured database (PostgreSQL,
MariaDB/MySQL, SQLite): the outbox table and, per watched table, triggers after INSERT,
UPDATE (old and new SKU) and DELETE. On PostgreSQL the trigger also calls ``pg_notify``, and
the feed waits on ``LISTEN`` between polls, so a change is seen at once; elsewhere it polls.

Rows are read in id order and deleted only after the watcher has queued them, by id: a row
whose transaction commits late (a smaller id after a larger one was read) is simply read on
the next poll, which an ``id > mark`` scheme would skip for good.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import Field as PydanticField
from pydantic import field_validator

from omnisync.errors import ConnectorError
from omnisync.sdk.connector import ConnectorOptions
from omnisync.sdk.feed import ChangeFeed, FeedBatch

from .engine import translate

#: The channel the PostgreSQL trigger notifies and the feed listens on.
CHANNEL = "omnisync_outbox"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class OutboxOptions(ConnectorOptions):
    """``options.outbox`` of the sql connector."""

    #: The outbox table the triggers fill.
    table: str = "omnisync_outbox"
    #: ``{table: SKU column}`` of the tables whose changes matter (default: ``options.table``
    #: and the mapped SKU column).
    triggers: dict[str, str] = PydanticField(default_factory=dict)
    #: Most outbox rows handed to the watcher at once.
    batch: int = PydanticField(default=5000, ge=1, le=100_000)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"{value!r}: use a plain table name (letters, digits, _)")
        return value

    @field_validator("triggers")
    @classmethod
    def _triggers(cls, value: dict[str, str]) -> dict[str, str]:
        for table, column in value.items():
            if not _NAME.fullmatch(table) or not _NAME.fullmatch(column) or "." in column:
                raise ValueError(f"{table}: {column}: use plain table and column names")
        return value


def _q(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


def _bq(name: str) -> str:
    return ".".join(f"`{part}`" for part in name.split("."))


def outbox_ddl(backend: str, outbox: str, triggers: dict[str, str]) -> list[str]:
    """The statements that create the outbox and its triggers on ``backend``."""
    if backend == "postgresql":
        return _postgres(outbox, triggers)
    if backend in ("mysql", "mariadb"):
        return _mariadb(outbox, triggers)
    if backend == "sqlite":
        return _sqlite(outbox, triggers)
    raise ConnectorError(f"no outbox DDL for {backend} (PostgreSQL, MariaDB/MySQL, SQLite)")


def _trigger_name(outbox: str, table: str, suffix: str = "") -> str:
    return f"{outbox}_{table.replace('.', '_')}{suffix}"


def _postgres(outbox: str, triggers: dict[str, str]) -> list[str]:
    statements = [
        f"CREATE TABLE IF NOT EXISTS {_q(outbox)} (id BIGSERIAL PRIMARY KEY, sku TEXT NOT NULL, "
        "changed_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ]
    for table, column in triggers.items():
        function = _trigger_name(outbox, table, "_note")
        statements += [
            f"CREATE OR REPLACE FUNCTION {_q(function)}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"  IF TG_OP <> 'INSERT' THEN INSERT INTO {_q(outbox)} (sku) VALUES (OLD.{_q(column)}); END IF;\n"
            f"  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.{_q(column)} IS DISTINCT FROM OLD.{_q(column)}) THEN\n"
            f"    INSERT INTO {_q(outbox)} (sku) VALUES (NEW.{_q(column)});\n"
            "  END IF;\n"
            f"  PERFORM pg_notify('{CHANNEL}', '');\n"
            "  RETURN NULL;\n"
            "END $$",
            f"DROP TRIGGER IF EXISTS {_q(_trigger_name(outbox, table))} ON {_q(table)}",
            f"CREATE TRIGGER {_q(_trigger_name(outbox, table))} AFTER INSERT OR UPDATE OR DELETE "
            f"ON {_q(table)} FOR EACH ROW EXECUTE FUNCTION {_q(function)}()",
        ]
    return statements


def _row_triggers(
    quote: Callable[[str], str], outbox: str, table: str, bodies: dict[str, str]
) -> list[str]:
    """Drop-and-create of one trigger per body (``ins``/``upd``/``del``), re-runnable."""
    statements = []
    for suffix, body in bodies.items():
        name = quote(_trigger_name(outbox, table, f"_{suffix}"))
        statements += [f"DROP TRIGGER IF EXISTS {name}", f"CREATE TRIGGER {name} {body}"]
    return statements


def _mariadb(outbox: str, triggers: dict[str, str]) -> list[str]:
    statements = [
        f"CREATE TABLE IF NOT EXISTS {_bq(outbox)} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "sku VARCHAR(255) NOT NULL, changed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
    ]
    for table, column in triggers.items():
        col = _bq(column)
        into = f"INSERT INTO {_bq(outbox)} (sku) VALUES"
        bodies = {
            "ins": f"AFTER INSERT ON {_bq(table)} FOR EACH ROW {into} (NEW.{col})",
            "upd": f"AFTER UPDATE ON {_bq(table)} FOR EACH ROW BEGIN {into} (OLD.{col}); "
            f"IF NOT (NEW.{col} <=> OLD.{col}) THEN {into} (NEW.{col}); END IF; END",
            "del": f"AFTER DELETE ON {_bq(table)} FOR EACH ROW {into} (OLD.{col})",
        }
        statements += _row_triggers(_bq, outbox, table, bodies)
    return statements


def _sqlite(outbox: str, triggers: dict[str, str]) -> list[str]:
    statements = [
        f"CREATE TABLE IF NOT EXISTS {_q(outbox)} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "sku TEXT NOT NULL, changed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ]
    for table, column in triggers.items():
        col = _q(column)
        into = f"INSERT INTO {_q(outbox)} (sku)"
        bodies = {
            "ins": f"AFTER INSERT ON {_q(table)} BEGIN {into} VALUES (NEW.{col}); END",
            "upd": f"AFTER UPDATE ON {_q(table)} BEGIN {into} VALUES (OLD.{col}); "
            f"{into} SELECT NEW.{col} WHERE NEW.{col} IS NOT OLD.{col}; END",
            "del": f"AFTER DELETE ON {_q(table)} BEGIN {into} VALUES (OLD.{col}); END",
        }
        statements += _row_triggers(_q, outbox, table, bodies)
    return statements


class OutboxFeed(ChangeFeed):
    """Consumes the outbox of one database."""

    def __init__(self, engine: sa.Engine, options: OutboxOptions, where: str) -> None:
        self.engine = engine
        self.options = options
        self.where = where
        self.table = sa.table(options.table, sa.column("id"), sa.column("sku"))
        self._listener: Any = None

    def _error(self, exc: sa.exc.SQLAlchemyError, doing: str) -> ConnectorError:
        error = translate(
            exc, where=self.where, url=self.engine.url, doing=f"{doing} {self.options.table}"
        )
        if type(error) is ConnectorError:  # credentials and reachability keep their own hints
            error.hint = (
                "create the outbox and its triggers: `omnisync outbox -c CONFIG --install` "
                "(or run the DDL it prints)"
            )
        return error

    def poll(self) -> FeedBatch | None:
        query = (
            sa.select(self.table.c.id, self.table.c.sku)
            .order_by(self.table.c.id)
            .limit(self.options.batch)
        )
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "reading the outbox") from None
        if not rows:
            return None
        ids = [int(row[0]) for row in rows]
        skus = tuple(dict.fromkeys(str(row[1]) for row in rows if row[1] is not None))
        digest = hashlib.blake2b(repr(ids).encode(), digest_size=8).hexdigest()
        return FeedBatch(f"outbox:{ids[0]}-{ids[-1]}:{digest}", skus, tuple(ids))

    def commit(self, batch: FeedBatch) -> None:
        ids: tuple[int, ...] = batch.token if isinstance(batch.token, tuple) else ()
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(ids), 1000):
                    chunk = list(ids[start : start + 1000])
                    conn.execute(sa.delete(self.table).where(self.table.c.id.in_(chunk)))
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "deleting consumed rows of the outbox") from None

    def wait(self, timeout: float) -> None:
        """PostgreSQL: ``LISTEN`` and wait for the trigger's notification (or the timeout);
        other databases: sleep."""
        if self.engine.url.get_backend_name() != "postgresql":
            super().wait(timeout)
            return
        try:
            if self._listener is None:
                self._listener = self.engine.raw_connection()
                self._listener.driver_connection.autocommit = True
                self._listener.driver_connection.execute(f"LISTEN {CHANNEL}")
            raw = self._listener.driver_connection
            for _ in raw.notifies(timeout=timeout, stop_after=1):
                pass
        except Exception:  # a broken listener falls back to polling; reconnect next time
            self.close()
            super().wait(timeout)

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None
