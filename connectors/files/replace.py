"""Replacing a file atomically: a backup, a temporary file in the same folder, flush, fsync,
``os.replace``, then the folder synced. The original is untouched unless the rename happened."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from omnisync.errors import ConnectorError, TransientError

from .source import SourceText


def backup_name(path: Path, moment: datetime | None = None) -> Path:
    """``<name>.<YYYYmmddTHHMMSSffffffZ>.bak`` next to ``path``."""
    stamp = (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return path.with_name(f"{path.name}.{stamp}.bak")


def replace_file(source: SourceText, data: bytes, *, backup: bool, where: str) -> Path | None:
    """Replace the file ``source`` was read from with ``data``, atomically; return the backup.

    :class:`~omnisync.errors.TransientError` when the file changed since it was read (a retry
    re-reads it); :class:`~omnisync.errors.ConnectorError` when it cannot be written. Either
    way the original is left as it was and no temporary file remains.
    """
    target = source.path.resolve()  # a symlink keeps pointing at the rewritten file
    folder = target.parent
    hint = (
        f"check that omnisync may write {target.name} and its folder {folder} "
        "(it writes a temporary file and a backup next to the file)"
    )
    try:
        stat = target.stat()
    except OSError as exc:
        raise ConnectorError(
            f"cannot write {target}: {exc.strerror or exc}", where=where, hint=hint
        ) from exc
    if (stat.st_mtime_ns, stat.st_size) != (source.mtime_ns, source.size):
        raise TransientError(
            f"{target} changed while the write was prepared", where=where, hint="run the push again"
        )
    if not os.access(target, os.W_OK):
        raise ConnectorError(
            f"cannot write {target}: the file is read-only", where=where, hint=hint
        )
    saved: Path | None = None
    temporary: str | None = None
    replaced = False
    try:
        if backup:
            saved = _write_backup(target, source.data)
        descriptor, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{target.name}.", suffix=".tmp"
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(temporary, stat.st_mode & 0o7777)
        os.replace(temporary, target)
        replaced = True
    except OSError as exc:
        raise ConnectorError(
            f"cannot write {target}: {exc.strerror or exc}", where=where, hint=hint
        ) from exc
    finally:
        if not replaced:  # leave the folder as it was
            for leftover in (temporary, saved):
                if leftover is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)
    _sync_folder(folder)
    return saved


def _write_backup(target: Path, data: bytes) -> Path:
    moment = datetime.now(UTC)
    while True:
        path = backup_name(target, moment)
        try:
            with path.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return path
        except FileExistsError:
            moment += timedelta(microseconds=1)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
