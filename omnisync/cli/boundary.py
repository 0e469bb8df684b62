"""The command line's error boundary: every way a command can end becomes a message and a
documented exit code, said once.

- an :class:`~omnisync.errors.OmnisyncError` prints "what went wrong — what to do" (a JSON
  log line under ``--log-json``) and exits with its :class:`~omnisync.errors.ExitCode`;
- Ctrl-C or SIGTERM, wherever it strikes (even turned into a library's own error), says
  "interrupted" and exits 130;
- a failed write to stdout (a full disk, a reader that closed the pipe) is a usage error (2);
- anything else is a bug: one line and exit 70, the traceback only with ``--debug``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from omnisync import interrupt
from omnisync.cli.options import GLOBAL
from omnisync.console import log_error, print_error, stderr_console
from omnisync.errors import ExitCode, OmnisyncError, UsageError
from omnisync.secrets import mask

log = logging.getLogger("omnisync")

#: The exit codes as `omnisync --help` lists them (see :class:`omnisync.errors.ExitCode`).
EXIT_CODES = (
    "Exit codes: 0 consistent / all applied, 1 mismatches, 2 usage/config/input error, "
    "3 a channel could not be read, 4 push partly applied, 5 push failed, 6 refused by a "
    "guardrail, 7 another push holds the lock, 130 interrupted, 70 internal error."
)

F = TypeVar("F", bound=Callable[..., Any])

#: "interrupted" was said already: the exit Typer makes of an interrupt must not say it again.
_said_interrupted = False


def errors_to_exit(func: F) -> F:
    """Translate omnisync errors into a message and their exit code; tracebacks only with --debug."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _said_interrupted
        try:
            try:
                return func(*args, **kwargs)
            finally:
                flush_stdout()
        except OmnisyncError as exc:
            if GLOBAL.verbosity >= 2:
                log.debug("traceback", exc_info=True)
            if GLOBAL.log_json:
                log_error(log, exc)
            else:
                print_error(stderr_console(), exc)
            _said_interrupted = exc.exit_code == ExitCode.INTERRUPTED
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            raise interrupted_exit() from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as exc:
            if not stdout_lost(exc):
                raise (interrupted_exit() if interrupt.interrupted else internal(exc)) from None
            print_error(stderr_console(), stdout_error(exc))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        except Exception as exc:
            if interrupt.interrupted:  # a library turned Ctrl-C into its own error
                raise interrupted_exit() from None
            raise internal(exc) from None

    return wrapper  # type: ignore[return-value]


def run(app: Callable[[], Any]) -> None:
    """Run ``app`` (the Typer app): the boundary around what no command wraps, the parsing
    of options and the help."""
    try:
        app()
    except SystemExit as exc:
        # Typer ends an interrupt outside a command (parsing options) as a silent exit 130.
        if exc.code == ExitCode.INTERRUPTED and not _said_interrupted:
            interrupt.stop_interrupted()
        raise
    except OSError as exc:  # --help or a usage message to a full disk or closed pipe
        if not stdout_lost(exc):
            raise
        print_error(stderr_console(), stdout_error(exc))
        raise SystemExit(int(ExitCode.USAGE)) from None


def interrupted_exit() -> typer.Exit:
    """Ctrl-C (or SIGTERM): "interrupted", exit 130, wherever it struck."""
    global _said_interrupted
    _said_interrupted = True
    with suppress(Exception):
        stderr_console().print("interrupted")
    return typer.Exit(int(ExitCode.INTERRUPTED))


def flush_stdout() -> None:
    """What is still buffered fails here, where it is reported, not at exit."""
    stream = sys.stdout
    stream.flush()


def stdout_lost(exc: OSError) -> bool:
    """Whether ``exc`` is a failed write to stdout (a full disk, a reader that closed the
    pipe): raised by a frame that was writing to it. If so, stdout is pointed at /dev/null,
    so that the flush at exit cannot fail once more ("Exception ignored ...")."""
    streams = [s for s in (sys.stdout, getattr(sys.stdout, "buffer", None)) if s is not None]
    tb = exc.__traceback__
    writing = False
    while tb is not None and not writing:
        writing = any(_writes_to(v, streams) for v in tb.tb_frame.f_locals.values())
        tb = tb.tb_next
    if not writing:
        return False
    with suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return True


def _writes_to(value: object, streams: list[object]) -> bool:
    """``value`` is one of ``streams``, or a rich Console printing to one."""
    if isinstance(value, Console):
        value = value.file
    return any(value is stream for stream in streams)


def stdout_error(exc: OSError) -> UsageError:
    """The usage error a lost stdout is reported as."""
    return UsageError(
        f"cannot write to stdout: {exc.strerror or exc}",
        hint="the disk is full or the reader closed the pipe; --output FILE writes a file",
    )


def internal(exc: Exception) -> typer.Exit:
    """An unexpected error: one line and exit 70; with --debug the traceback instead."""
    if GLOBAL.verbosity >= 2:
        raise exc
    stderr_console().print(
        f"[bold red]internal error:[/] {mask(f'{type(exc).__name__}: {exc}')}\n"
        "[yellow]→[/] this is a bug; rerun with --debug for the traceback and report it",
        highlight=False,
    )
    return typer.Exit(int(ExitCode.INTERNAL))
