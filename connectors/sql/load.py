"""Load a SQL script into a database with nothing but Python: the example POS schema without
a database server, or a test fixture into PostgreSQL/MariaDB.

::

    python -m omnisync_connectors.sql.load examples/pos_schema.sql examples/pos.db
    python -m omnisync_connectors.sql.load schema.sql postgresql://postgres@localhost/test

A target that is not a URL is a SQLite file (created; ``--replace`` overwrites it). The
script runs in one transaction. Statements end with ``;``; quotes and comments are honoured
when splitting, so that the same script runs on every backend (drivers differ in whether
they accept several statements at once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from omnisync import secrets

from .engine import parse_url, show_url


def split_statements(script: str) -> Iterator[str]:
    """The statements of ``script``, without the ``;`` and comments between statements."""
    buffer: list[str] = []
    i, n = 0, len(script)
    quote: str | None = None
    while i < n:
        char = script[i]
        if quote:
            buffer.append(char)
            if char == quote:
                if i + 1 < n and script[i + 1] == quote:  # '' inside a string
                    buffer.append(script[i + 1])
                    i += 1
                else:
                    quote = None
        elif char in "'\"`":
            quote = char
            buffer.append(char)
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end
            continue
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
            buffer.append(" ")
            continue
        elif char == ";":
            statement = "".join(buffer).strip()
            if statement:
                yield statement
            buffer = []
        else:
            buffer.append(char)
        i += 1
    statement = "".join(buffer).strip()
    if statement:
        yield statement


def run_script(connection: sa.Connection, script: str) -> int:
    """Execute every statement of ``script`` on ``connection``; the number executed."""
    count = 0
    # The driver's own cursor, without parameters: the script's colons (times, casts) are not
    # bind parameters, and its percent signs (LIKE 'a%') are not format placeholders.
    cursor = connection.connection.cursor()
    try:
        for statement in split_statements(script):
            cursor.execute(statement)
            count += 1
    finally:
        cursor.close()
    return count


def load(script: Path, target: str, *, replace: bool = False) -> str:
    """Run ``script`` against ``target`` (a URL or a SQLite file); a line for the user."""
    if "://" in target:
        url = parse_url(target)
    else:
        path = Path(target)
        if path.exists():
            if not replace:
                raise SystemExit(f"{path} exists; pass --replace to overwrite it")
            path.unlink()
        url = sa.make_url("sqlite://").set(database=str(path))
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            count = run_script(connection, script.read_text(encoding="utf-8"))
    finally:
        engine.dispose()
    return f"loaded {count} statements from {script} into {show_url(url)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m omnisync_connectors.sql.load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("script", type=Path, help="the SQL script (statements end with ;)")
    parser.add_argument("target", help="a SQLite file, or a database URL")
    parser.add_argument("--replace", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    try:
        print(load(args.script, args.target, replace=args.replace))
    except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
        print(secrets.mask(f"error: {exc}"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
