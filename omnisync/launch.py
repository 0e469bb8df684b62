"""The ``omnisync`` console script: a light module, so that Ctrl-C at any moment ends the
same way, with "interrupted" and exit 130, never a traceback.

Importing the command line (Typer, rich, pydantic, DuckDB) takes a quarter of a second; an
interrupt meanwhile would otherwise print Python's traceback. So the signal handler of
:mod:`omnisync.interrupt` is installed first, and the command line is imported after it.
"""

from __future__ import annotations

import signal

from omnisync.interrupt import on_signal, stop_interrupted


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
