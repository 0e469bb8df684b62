"""Ctrl-C and SIGTERM, shared by the console script (:mod:`omnisync.launch`) and the command
line (:mod:`omnisync.cli`): both install :func:`on_signal`, and both end an interrupt with
:func:`stop_interrupted`. Standard library only, so the console script stays light.

Libraries that catch the interrupt themselves turn it into their own error (DuckDB: ``Query
interrupted``), so the handler also notes that an interrupt happened (:data:`interrupted`),
for the CLI's error boundary to end as interrupted whatever error the interrupt became.
"""

from __future__ import annotations

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
