"""Writing a feed file: streamed into a temporary file in the target's folder, flushed and
synced, then renamed over the target — unless its bytes equal the target's, in which case
the target is left untouched (same bytes, same modification time) and the temporary file
removed. A crash leaves the old feed or the new one, never half of one."""

from __future__ import annotations

import contextlib
import filecmp
import os
import stat
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TextIO

from omnisync.errors import ConnectorError

#: The mode of a new feed (before the umask): feeds are read by web servers and uploaders.
NEW_MODE = 0o644


class FeedFile:
    """``with FeedFile(path, where) as feed: feed.handle.write(...)``; then :attr:`changed`
    says whether ``path`` was replaced. An exception inside the block leaves ``path``
    as it was."""

    def __init__(self, path: Path, where: str) -> None:
        self.path = path
        self.where = where
        self.changed = False
        self._temporary: str | None = None
        self.handle: TextIO

    def _error(self, exc: OSError) -> ConnectorError:
        return ConnectorError(
            f"cannot write {self.path}: {exc.strerror or exc}",
            where=self.where,
            hint=f"check that omnisync may write {self.path.name} and its folder "
            "(it writes a temporary file next to the feed, then renames it)",
        )

    def __enter__(self) -> FeedFile:
        folder = self.path.parent
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise self._error(exc) from None
        if mode is not None and not stat.S_ISREG(mode):
            raise ConnectorError(
                f"{self.path} is not a regular file; publish replaces only regular files",
                where=self.where,
                hint="point the channel's options.path at a new or regular file",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            descriptor, self._temporary = tempfile.mkstemp(
                dir=folder, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            self.handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise self._error(exc) from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        temporary = self._temporary
        assert temporary is not None
        try:
            if kind is not None:
                self.handle.close()
                return
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            if self.path.exists() and filecmp.cmp(temporary, self.path, shallow=False):
                return  # unchanged: the feed keeps its bytes and its modification time
            try:
                os.chmod(temporary, stat.S_IMODE(os.stat(self.path).st_mode))
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temporary, NEW_MODE & ~umask)
            os.replace(temporary, self.path)
            self._temporary = None
            self.changed = True
            _sync_folder(self.path.parent)
        except OSError as exc:
            raise self._error(exc) from None
        finally:
            if self._temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._temporary)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
