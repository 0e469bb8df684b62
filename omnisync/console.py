"""Terminal plumbing: logging set-up, progress bars, error rendering, atomic output files.

On a terminal people get colour, progress bars and rich tables; elsewhere (cron, CI, pipes)
output is plain, timestamped and free of control characters. Secrets are masked in both.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from omnisync.errors import OmnisyncError, UsageError, _ProblemListError
from omnisync.secrets import MaskingFilter, mask


def is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


#: Width for reports when the output is not a terminal (cron mail, CI logs, files), unless
#: $COLUMNS says otherwise: rich's default of 80 would squeeze the detail tables.
PLAIN_WIDTH = 120


def _width(stream: object) -> int | None:
    if is_terminal(stream) or os.environ.get("COLUMNS"):
        return None
    return PLAIN_WIDTH


def stdout_console() -> Console:
    return Console(soft_wrap=False, highlight=False, width=_width(sys.stdout))


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, width=_width(sys.stderr))


class JsonLines(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any ``extra`` fields."""

    _standard = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        import json

        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in self._standard and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["traceback"] = mask(self.formatException(record.exc_info))
        return mask(json.dumps(data, ensure_ascii=False, default=str))


def setup_logging(verbosity: int, console: Console, *, json_lines: bool = False) -> None:
    """verbosity: -1 quiet (errors only), 0 warnings, 1 info (--verbose), 2 debug (--debug)."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if json_lines:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
        level = min(level, logging.INFO)  # log shippers want the run's events
    elif console.is_terminal:
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=verbosity >= 2)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z"
            )
        )
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Keep third-party chatter out of cron mail unless debugging.
    for noisy in ("httpx", "httpcore", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def log_error(logger: logging.Logger, exc: OmnisyncError) -> None:
    """An error as one log line (``--log-json``): a log shipper sees every way a run ends,
    the lock-held exit 7 included, in the same JSON as the run's other lines."""
    head = f"{exc.where}: {exc.message}" if exc.where else exc.message
    extra: dict[str, Any] = {"exit_code": int(exc.exit_code), "error": type(exc).__name__}
    if isinstance(exc, _ProblemListError):
        extra["problems"] = [mask(str(p)) for p in exc.problems]
    if exc.hint:
        extra["hint"] = mask(exc.hint)
    logger.error(head, extra=extra)


def print_error(console: Console, exc: OmnisyncError) -> None:
    """``error: where: what`` then each located problem, then ``→ hint``."""
    head = f"{exc.where}: {exc.message}" if exc.where else exc.message
    console.print(f"[bold red]error:[/] {mask(head)}", markup=True, highlight=False, soft_wrap=True)
    if isinstance(exc, _ProblemListError):
        for problem in exc.problems:
            console.print(f"  {mask(str(problem))}", markup=False, highlight=False, soft_wrap=True)
    if exc.hint:
        console.print(
            f"[yellow]→[/] {mask(exc.hint)}", markup=True, highlight=False, soft_wrap=True
        )


class ReadProgress:
    """Progress bars per source on a terminal; nothing otherwise."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.enabled = enabled and console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[source]}[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("records"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ReadProgress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled:
            self.progress.stop()

    def start(self, source: str, description: str) -> None:
        if self.enabled:
            self.tasks[source] = self.progress.add_task(
                mask(description), total=None, source=source
            )

    def advance(self, source: str, count: int) -> None:
        if self.enabled and source in self.tasks:
            self.progress.update(self.tasks[source], completed=count)

    def finish(self, source: str, count: int) -> None:
        if self.enabled and source in self.tasks:
            self.progress.update(self.tasks[source], completed=count, total=count)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: never a half-written file.

    Only a regular file (or nothing) is ever replaced: a rename over a symlink, a device such
    as ``/dev/full`` or a FIFO would swap the node itself for a file. Missing folders are
    created. Any failure is a :class:`~omnisync.errors.UsageError` naming the path.
    """
    path = path.expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _output_error(path, exc) from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"{path} is not a regular file ({_kind(mode)}); omnisync replaces only regular files",
            hint="name a new or regular file; to write to stdout, leave --output out",
        )
    tmp: str | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise _output_error(path, exc) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _output_error(path: Path, exc: OSError) -> UsageError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return UsageError(
        f"cannot write {path}: {exc.strerror or exc}{where}",
        hint="check that the folder exists or can be created, and that omnisync may write it",
    )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")
