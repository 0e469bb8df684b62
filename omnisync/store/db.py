"""Opening a state store: targets, engines, SQLite tuning, schema setup; the plumbing every part of the store uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    create_engine,
    event,
    insert,
    inspect,
    make_url,
    text,
    update,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, col, select

from omnisync import secrets
from omnisync.errors import StateError
from omnisync.store import schema
from omnisync.store.schema import (
    HINT,
    PG_SETUP_LOCK,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    TABLES,
    WRITE_OPTION,
    Meta,
)

# ---------------------------------------------------------------- the store


class StoreBase:
    """The store's engine and plumbing; :class:`~omnisync.store.Store` adds the jobs."""

    def __init__(self, engine: Engine, where: str) -> None:
        self._engine = engine
        #: The target as shown to users: resolved path, or URL with the password masked.
        self.where = where

    # -- opening

    @classmethod
    def open(cls, target: str, *, base_dir: Path) -> Self:
        """Open (creating or migrating as needed) the store at ``target``.

        ``target`` is a filesystem path, resolved against ``base_dir`` when relative (missing
        folders are created), or a SQLAlchemy URL (anything containing ``://``). Raises
        :class:`StateError` when the target cannot be used or holds a newer schema.
        """
        url, where = _resolve_target(target, base_dir)
        engine = _create_engine(url, where)
        store = cls(engine, where)
        try:
            store._setup()
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        """Release all connections (SQLite checkpoints its WAL when the last one closes)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    def _setup(self) -> None:
        with self._errors("open the state store"):
            # Read first: the usual case (schema current) then never waits for a writer, and
            # `omnisync runs` works for someone who may only read the store.
            with self._connection() as conn:
                found = self._check_version(conn)
            if found == SCHEMA_VERSION:
                return
            with self._connection(write=True) as conn:
                if conn.dialect.name == "postgresql":
                    # Several hosts may open a fresh or old store at the same moment.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_SETUP_LOCK})
                # Again under the lock: another process may have created or migrated it.
                found = self._check_version(conn)
                if found is None:
                    SQLModel.metadata.create_all(conn, tables=TABLES)
                    conn.execute(insert(Meta), {"key": SCHEMA_KEY, "value": str(SCHEMA_VERSION)})
                elif found < SCHEMA_VERSION:
                    _migrate(conn, found, self.where)

    def _check_version(self, conn: Connection) -> int | None:
        found = _read_version(conn, self.where)
        if found is not None and found > SCHEMA_VERSION:
            raise StateError(
                f"state store schema version {found} is newer than this omnisync supports "
                f"({SCHEMA_VERSION}); upgrade omnisync",
                where=self.where,
                hint="or point settings.state / --state at another store",
            )
        return found

    # -- plumbing

    @contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            if write:
                conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            if write:
                # Must be the first use of the session: it opens the connection and BEGINs.
                session.connection(execution_options={WRITE_OPTION: True})
            yield session

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn database failures into a :class:`StateError` that says what to do."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise _state_error(action, exc, self.where, self._engine.url) from exc


# ---------------------------------------------------------------- opening


def _resolve_target(target: str, base_dir: Path) -> tuple[URL, str]:
    """The URL to connect to, and how to name the target in messages."""
    if not target.strip():
        raise StateError("the state store location is empty", hint=HINT)
    if "://" in target:
        try:
            url = make_url(target)
        except (ArgumentError, ValueError) as exc:
            raise StateError(
                f"not a valid database URL ({exc})", where=secrets.mask(target), hint=HINT
            ) from None
        database = url.database or ""
        if url.get_backend_name() != "sqlite":
            return url, secrets.mask(url.render_as_string(hide_password=True))
        if _is_memory(url) or database.startswith("file:"):
            return url, secrets.mask(target)
        path = Path(database).expanduser()
        if not path.is_absolute():
            # Like a plain path: relative to the config file, not to the current directory.
            path = base_dir / path
        where = secrets.mask(str(path))
        _prepare_file(path, where)
        return url.set(database=str(path)), where
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    where = secrets.mask(str(path))
    _prepare_file(path, where)
    return URL.create("sqlite+pysqlite", database=str(path)), where


def _is_memory(url: URL) -> bool:
    return (url.database or "") in ("", ":memory:")


def _prepare_file(path: Path, where: str) -> None:
    if path.is_dir():
        raise StateError(
            "the state store location is a directory, not a file", where=where, hint=HINT
        )
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise StateError(
            f"cannot create the state store: {existing} is a file, not a folder",
            where=where,
            hint=HINT,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create the folder {path.parent}: {exc.strerror or exc}",
            where=where,
            hint=HINT,
        ) from None


def _create_engine(url: URL, where: str) -> Engine:
    try:
        if url.get_backend_name() == "sqlite":
            # An in-memory database lives and dies with its connection: keep exactly one.
            pool: dict[str, Any] = {"poolclass": StaticPool} if _is_memory(url) else {}
            engine = create_engine(url, **pool)
            _tune_sqlite(engine)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError:
        raise StateError(
            f"unknown database type {url.drivername!r}",
            where=where,
            hint="use a file path, sqlite:///path or postgresql://user@host/db",
        ) from None
    except ImportError as exc:
        module = exc.name or str(exc)
        raise StateError(
            f"the database driver {module!r} is not installed",
            where=where,
            hint=f"install it (pip install {module}) or use a SQLite path",
        ) from None
    except ArgumentError as exc:
        raise StateError(f"not a usable database URL ({exc})", where=where, hint=HINT) from None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over BEGIN from the sqlite3 module (which never begins for SELECT or DDL), so
        # that setup and every record are real transactions; see _on_begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            # The timeout first: switching to WAL itself may have to wait for a lock.
            cursor.execute(f"PRAGMA busy_timeout = {schema.BUSY_TIMEOUT_MS}")
            # Readers never block the writer and vice versa.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY if
        # another process wrote in between; IMMEDIATE waits for the lock (busy_timeout).
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _read_version(conn: Connection, where: str) -> int | None:
    if not inspect(conn).has_table(Meta.__tablename__):
        return None
    query = select(Meta.value).where(col(Meta.key) == SCHEMA_KEY)
    value = conn.execute(query).scalar_one_or_none()
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise StateError(
            f"the state store has an unreadable schema version {value!r}",
            where=where,
            hint=HINT,
        ) from None


def _migrate(conn: Connection, found: int, where: str) -> None:
    steps = {m.version: m for m in schema.MIGRATIONS}
    for version in range(found, SCHEMA_VERSION):
        step = steps.get(version)
        if step is None:
            raise StateError(
                f"no migration from state store schema version {version}",
                where=where,
                hint="upgrade omnisync, or point settings.state / --state at a new store",
            )
        step.apply(conn)
    conn.execute(update(Meta).where(col(Meta.key) == SCHEMA_KEY).values(value=str(SCHEMA_VERSION)))


def _state_error(action: str, exc: SQLAlchemyError, where: str, url: URL) -> StateError:
    reason = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc).splitlines()[0]
    if url.password:
        reason = reason.replace(str(url.password), secrets.MASK)
    # One line: driver messages (psycopg's) may span several.
    reason = " ".join(secrets.mask(reason).split())
    lowered = reason.lower()
    if "locked" in lowered or "busy" in lowered:
        hint = "another omnisync run is writing to it; try again when it has finished"
    elif "unable to open" in lowered:
        hint = "check that the folder exists and is writable; " + HINT
    elif "not a database" in lowered:
        hint = "the file is not an omnisync state store; " + HINT
    else:
        hint = HINT
    return StateError(f"cannot {action}: {reason}", where=where, hint=hint)
