"""Real database servers for tests: where they are, and a fresh namespace on one.

The fixtures in conftest.py (``postgres_database``, ``mariadb_database``,
``sqlite_database``, ``database``) hand out :class:`TestDatabase` objects; import this module
for the type and for :func:`unreachable`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from omnisync_connectors.sql.load import run_script

PG_URL = os.environ.get("OMNISYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("OMNISYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
#: Names of the per-backend fixtures, ``<backend>_database``.
BACKENDS = ("sqlite", "postgres", "mariadb")


def unreachable(reason: str) -> None:
    """Skip the test for an unreachable server; under CI=true, fail it: CI must not pass by
    testing nothing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the test databases must be running)")
    pytest.skip(reason)


@dataclass
class TestDatabase:
    """A fresh namespace on a database server (or a fresh SQLite file)."""

    __test__ = False  # not a test class, whatever its name

    #: ``sqlite``, ``postgres`` or ``mariadb``.
    backend: str
    #: The URL to hand to the code under test; unqualified names resolve in the namespace.
    url: str
    #: The schema (PostgreSQL), database (MariaDB) or file (SQLite) name; also the
    #: application name of connections made through ``url`` on PostgreSQL.
    name: str
    #: A URL of the server's own database, for statements about other sessions.
    admin_url: str
    _engine: sa.Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.url, poolclass=NullPool)
        return self._engine

    def run(self, script: str) -> None:
        """Execute a script of ``;``-separated statements in one transaction."""
        with self.engine.begin() as connection:
            run_script(connection, script)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of one statement (committed when it changes data)."""
        with self.engine.begin() as connection:
            result = connection.execute(sa.text(sql), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
