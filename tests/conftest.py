"""Shared fixtures.

Databases: every test that asks for one gets a fresh, empty namespace on a real server and
loses it afterwards, so tests never see each other's tables:

* ``postgres_database``: a schema ``omnisync_t_<hex>`` on ``$OMNISYNC_TEST_PG_URL``
  (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); its URL sets
  ``search_path``, so unqualified table names land in the schema.
* ``mariadb_database``: a database ``omnisync_t_<hex>`` on ``$OMNISYNC_TEST_MYSQL_URL``
  (default ``mysql+pymysql://root@127.0.0.1:3306/test``).
* ``sqlite_database``: an empty SQLite file in the test's temporary folder.
* ``database``: each of the three in turn (the test runs once per backend).

Each is a :class:`tests.databases.TestDatabase`: ``url`` for the code under test,
``run(script)`` and ``query(sql)`` for the test itself. A server that cannot be reached skips
the test with the reason, except under ``CI=true``, where it fails: CI must not pass by
testing nothing.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from omnisync_connectors.sql.engine import parse_url
from tests.databases import BACKENDS, MYSQL_URL, PG_URL, TestDatabase, unreachable

_reachable: dict[str, str | None] = {}


def _admin_engine(url: str, variable: str) -> sa.Engine:
    """An engine on the server, after checking once per session that it answers."""
    if url not in _reachable:
        reason: str | None = None
        try:
            engine = sa.create_engine(
                parse_url(url), poolclass=NullPool, connect_args={"connect_timeout": 3}
            )
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except ImportError as exc:
            reason = f"the driver for {sa.make_url(url).drivername} is not installed ({exc})"
        except sa.exc.SQLAlchemyError as exc:
            shown = parse_url(url).render_as_string(hide_password=True)
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            reason = f"database server {shown} (${variable}) is unreachable: {first}"
        _reachable[url] = reason
    if _reachable[url] is not None:
        unreachable(str(_reachable[url]))
    return sa.create_engine(parse_url(url), poolclass=NullPool)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _fresh_name() -> str:
    return f"omnisync_t_{secrets.token_hex(4)}"


@pytest.fixture
def postgres_database() -> Iterator[TestDatabase]:
    admin = _admin_engine(PG_URL, "OMNISYNC_TEST_PG_URL")
    name = _fresh_name()
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    url = parse_url(PG_URL).update_query_dict(
        {"options": f"-csearch_path={name}", "application_name": name}
    )
    database = TestDatabase("postgres", _render(url), name, PG_URL)
    try:
        yield database
    finally:
        with admin.begin() as connection:
            # A test that stopped reading half-way may leave a session holding locks.
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def mariadb_database() -> Iterator[TestDatabase]:
    admin = _admin_engine(MYSQL_URL, "OMNISYNC_TEST_MYSQL_URL")
    name = _fresh_name()
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = parse_url(MYSQL_URL).set(database=name).update_query_dict({"charset": "utf8mb4"})
    database = TestDatabase("mariadb", _render(url), name, MYSQL_URL)
    try:
        yield database
    finally:
        with admin.begin() as connection:
            sessions = connection.execute(
                sa.text(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = :name AND id <> CONNECTION_ID()"
                ),
                {"name": name},
            ).scalars()
            for session in list(sessions):
                with contextlib.suppress(sa.exc.DBAPIError):  # it may have ended meanwhile
                    connection.execute(sa.text(f"KILL {int(session)}"))
            connection.execute(sa.text(f"DROP DATABASE `{name}`"))
        admin.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> TestDatabase:
    path = tmp_path / "test.db"
    sqlite3.connect(path).close()
    url = _render(sa.make_url("sqlite://").set(database=str(path)))
    return TestDatabase("sqlite", url, str(path), url)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest) -> TestDatabase:
    """A fresh database namespace on each backend in turn."""
    database: TestDatabase = request.getfixturevalue(f"{request.param}_database")
    return database
