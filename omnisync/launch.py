"""The ``omnisync`` console script: a light module, so that Ctrl-C at any moment ends the
same way, with "interrupted" and exit 130, never a traceback.

Importing the command line (Typer, rich, pydantic, DuckDB) takes a quarter of a second; an
interrupt meanwhile would otherwise print Python's traceback. And libraries that catch the
interrupt themselves turn it into their own error (DuckDB: ``Query interrupted``), so the
signal handler also notes that an interrupt happened (:data:`interrupted`), for the CLI's
error boundary to end as interrupted whatever error the interrupt became.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

#: Set when SIGINT or SIGTERM arrived in this process.
interrupted = False


def on_signal(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C, and SIGTERM from cron or systemd: note it, then stop like Ctrl-C."""
    global interrupted
    interrupted = True
    raise KeyboardInterrupt


def stop_interrupted() -> None:
    """Say "interrupted" (if stderr still takes it) and exit 130."""
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    raise SystemExit(130)


def main() -> None:
    """Console-script entry point."""
    try:
        signal.signal(signal.SIGINT, on_signal)
        from omnisync.cli import main as run

        run()
    except KeyboardInterrupt:
        stop_interrupted()


if __name__ == "__main__":
    main()
