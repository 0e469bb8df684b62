"""Writing for the sql connector: each change's configured statements bound to its parameters
(:mod:`.statements`), and a batch written in one transaction — or, when a statement fails,
change by change on savepoints, so that the database's refusals fail only their changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnisync.errors import ChangeRejected, ConnectorError
from omnisync.markup import text_html
from omnisync.models import Change, Op

from . import statements
from .engine import database_message, is_connection_failure, is_retriable
from .options import SqlOptions

#: One change's statements, each with its bound parameters.
Bound = list[tuple[sa.TextClause, dict[str, Any]]]
#: A change to write: its index in the batch, the change, its statements with parameters.
Job = tuple[int, Change, Bound]
#: Turns a database error into omnisync's (``translate`` with the channel and URL).
ErrorOf = Callable[[sa.exc.SQLAlchemyError, str], ConnectorError]


def bind(change: Change, options: SqlOptions, backend: str) -> Bound:
    """The statements ``options.write`` configures for ``change``, with its parameters in
    the form the ``backend``'s driver takes; :class:`ChangeRejected` when there are none."""
    key = change.field if change.op is Op.UPDATE else change.op.value
    given = options.write.get(key or "")
    if given is None:
        raise ChangeRejected(f"no write statement for {key!r}; configure options.write.{key}")
    params = statements.change_parameters(change, aware=backend == "postgresql")
    if options.description_format == "html":
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


def shown(jobs: list[Job]) -> list[Any]:
    """The statements and parameters of a batch, as ``--dry-run`` shows them."""
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
        for _, change, bound in jobs
    ]


def write_batch(connection: Connection, jobs: list[Job], error: ErrorOf) -> dict[int, str]:
    """Write the batch; the failed changes by index, with the database's message (or "no row
    matched"). A failure no single change caused is raised as ``error`` makes it."""
    failed = _together(connection, jobs, error)
    if failed is None:
        failed = _one_by_one(connection, jobs, error)
    return failed


def _together(connection: Connection, jobs: list[Job], error: ErrorOf) -> dict[int, str] | None:
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
            raise error(exc, "writing") from None
        return None
    return failed


def _one_by_one(connection: Connection, jobs: list[Job], error: ErrorOf) -> dict[int, str]:
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
        raise error(exc, "writing") from None
    return failed


def _apply(connection: Connection, bound: Bound) -> bool:
    """Execute one change's statements; whether any of them affected a row (a driver that
    cannot tell, rowcount -1, counts as yes)."""
    counts = [connection.execute(clause, params).rowcount for clause, params in bound]
    return any(count != 0 for count in counts)


def _no_row(change: Change) -> str:
    return f"no row matched (SKU {change.sku})"


def _fatal_for_batch(exc: sa.exc.StatementError) -> bool:
    """Failures no single change caused: the connection went, or the database asks to retry."""
    return is_connection_failure(exc) or is_retriable(exc)
