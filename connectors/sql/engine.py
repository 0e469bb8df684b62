"""The database side of the sql connector: URLs, engines, and database errors translated
into omnisync's error tree, once, with every password masked.

``postgresql://`` and ``mysql://`` / ``mariadb://`` URLs without a driver get the drivers
omnisync installs (psycopg 3 and PyMySQL); an explicit ``+driver`` is used as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError, TransientError, UnreachableError

#: Bare dialect -> the driver omnisync ships (the `sql` extra).
DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",  # Heroku-style URLs
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

#: Python module of a driver -> what to install for it.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "mariadb": "mariadb",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
}

URL_HINT = (
    "options.url takes a SQLAlchemy URL: postgresql://user:${DB_PASSWORD}@host/db, "
    "mysql://user@host/db, sqlite:///path/to/file.db"
)

# MySQL/MariaDB client error numbers (the first element of the driver exception's args).
_MYSQL_AUTH = {1044, 1045, 1698, 1251}
_MYSQL_CONNECTION = {2002, 2003, 2005, 2006, 2013, 2055}
_MYSQL_RETRY = {1205, 1213}  # lock wait timeout, deadlock
_PG_AUTH = re.compile(
    r"password authentication failed|authentication failed|no password supplied|"
    r'role "[^"]*" does not exist|pg_hba\.conf rejects',
    re.IGNORECASE,
)
_PG_RETRY_STATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout
_CONNECTION_WORDS = re.compile(
    r"connection refused|could not connect|can't connect|server closed the connection|"
    r"terminating connection|connection (is )?(lost|closed)|lost connection|gone away|"
    r"timeout expired|timed out|could not translate host name|name or service not known|"
    r"consuming input failed|no route to host|connection reset",
    re.IGNORECASE,
)


def parse_url(text: str) -> URL:
    """The URL with omnisync's default drivers; ``ValueError`` (without the URL, which may
    carry a password) when it is not one."""
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise ValueError(f"not a database URL ({URL_HINT})") from None
    if url.drivername in DEFAULT_DRIVERS:
        url = url.set(drivername=DEFAULT_DRIVERS[url.drivername])
    try:
        url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise ValueError(
            f"unknown database kind {url.drivername!r} (known: postgresql, mysql, mariadb, "
            "sqlite, or any dialect an installed SQLAlchemy plugin provides)"
        ) from None
    return url


def show_url(url: URL) -> str:
    """The URL for messages: the password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def resolve_sqlite(url: URL, base_dir: Path) -> URL:
    """A relative SQLite path is relative to the config file's folder, like file paths."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:"):
        return url  # a URI filename: the user spelled it out
    path = Path(database).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return url.set(database=str(path))


def create_engine(url: URL, *, where: str, connect_timeout: float) -> Engine:
    """An engine without a pool: every read or write batch opens its connection and closes
    it, so no connection outlives the operation that needed it.

    A missing driver is a :class:`ConnectorError` naming the package to install.
    """
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
        connect_args["connect_timeout"] = max(1, round(connect_timeout))
    elif backend in ("mysql", "mariadb") and url.get_driver_name() == "pymysql":
        connect_args["connect_timeout"] = connect_timeout
    elif backend == "sqlite":
        connect_args["timeout"] = connect_timeout  # how long to wait for a locked database
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module or "the driver")
        raise ConnectorError(
            f"the database driver {url.get_driver_name()!r} for {backend} is not installed",
            where=where,
            hint=f"pip install '{package}' (or install omnisync with the `sql` extra: "
            "pip install 'omnisync[sql]')",
        ) from None
    if backend == "sqlite":
        _sqlite_transactions(engine)
    return engine


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions, so that savepoints work
    (SQLAlchemy's documented recipe for pysqlite)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def database_message(exc: BaseException) -> str:
    """The database's own message, without the SQL and parameters SQLAlchemy appends
    (they may hold values), masked."""
    orig = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):  # MySQL: (1062, "Duplicate entry ...")
        text = f"{args[1]} (error {args[0]})"
    else:
        text = str(orig)
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return secrets.mask("; ".join(lines))


def _mysql_code(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_auth_failure(exc: BaseException) -> bool:
    code = _mysql_code(exc)
    if code is not None:
        return code in _MYSQL_AUTH
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in ("28000", "28P01"):
        return True
    return bool(_PG_AUTH.search(str(orig or exc)))


def is_connection_failure(exc: BaseException) -> bool:
    """The connection could not be made or was lost (the server went away mid-way)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = _mysql_code(exc)
    if code is not None:
        return code in _MYSQL_CONNECTION
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    return bool(_CONNECTION_WORDS.search(str(getattr(exc, "orig", None) or exc)))


def is_retriable(exc: BaseException) -> bool:
    """Deadlocks, serialization failures and lock timeouts: the same batch may pass later."""
    code = _mysql_code(exc)
    if code is not None:
        return code in _MYSQL_RETRY
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _PG_RETRY_STATES


def translate(exc: sa.exc.SQLAlchemyError, *, where: str, url: URL, doing: str) -> ConnectorError:
    """The omnisync error for a database failure while ``doing`` something
    (``connecting``, ``reading``, ``writing``)."""
    message = database_message(exc)
    shown = show_url(url)
    if is_auth_failure(exc):
        user = f" (user {url.username!r})" if url.username else ""
        return AuthError(
            f"the database rejected the credentials{user}: {message}",
            where=where,
            hint=f"check the user and password in options.url ({shown}); keep the password "
            "in an environment variable: ${DB_PASSWORD}",
        )
    if is_connection_failure(exc):
        if doing == "connecting":
            # Nothing answered: retried briefly, then reported (see omnisync.sdk.retry).
            return UnreachableError(
                f"cannot connect to {shown}: {message}",
                where=where,
                hint="check that the database server is running and options.url names it",
            )
        else:
            text = f"the connection to {shown} was lost while {doing}: {message}"
            hint = "nothing was kept from the interrupted operation; run it again"
        return TransientError(text, where=where, hint=hint)
    if is_retriable(exc):
        return TransientError(
            f"the database asked to retry while {doing}: {message}",
            where=where,
            hint="another transaction held the rows; the batch is safe to retry",
        )
    return ConnectorError(
        f"database error while {doing}: {message}",
        where=where,
        hint=f"check options.query / options.table against the database ({shown})",
    )
