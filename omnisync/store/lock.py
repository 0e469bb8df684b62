"""The run lock: one push at a time per store, across hosts."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    text,
)

from omnisync.errors import LockedError
from omnisync.store.db import (
    StoreBase,
)


@contextmanager
def _file_lock(path: Path, name: str) -> Iterator[None]:
    import fcntl

    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LockedError(
                f"another omnisync run holds the {name!r} lock ({holder})",
                where=str(path),
                hint="wait for it to finish; two pushes must never run at once",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


#: json.dumps with these options builds an encoder per call; one serves every value.


class LockMixin(StoreBase):
    """Named run locks."""

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the named run lock for the block, or raise :class:`LockedError` at once.

        SQLite stores: an OS file lock beside the database (released by the OS if the
        process dies). PostgreSQL: a session advisory lock, so hosts sharing a store exclude
        each other. Other servers: MySQL/MariaDB ``GET_LOCK``.
        """
        url = self._engine.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if not database or database == ":memory:":
                yield
                return
            with _file_lock(Path(f"{database}.{name}.lock"), name):
                yield
            return
        key = int.from_bytes(hashlib.sha256(f"omnisync:{name}".encode()).digest()[:7], "big")
        with self._errors("take the run lock"), self._engine.connect() as conn:
            if url.get_backend_name() == "postgresql":
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                release = text("SELECT pg_advisory_unlock(:k)")
                params: dict[str, Any] = {"k": key}
            else:
                got = conn.execute(
                    text("SELECT GET_LOCK(:n, 0)"), {"n": f"omnisync:{name}"}
                ).scalar()
                release = text("SELECT RELEASE_LOCK(:n)")
                params = {"n": f"omnisync:{name}"}
            conn.commit()
            if not got:
                raise LockedError(
                    f"another omnisync run holds the {name!r} lock on {self.where}",
                    hint="wait for it to finish; two pushes must never run at once",
                )
            try:
                yield
            finally:
                conn.execute(release, params)
                conn.commit()
