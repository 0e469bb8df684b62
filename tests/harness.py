"""Run the omnisync CLI with a slowed-down CSV write side, for crash and lock tests.

Used as ``python tests/harness.py <omnisync args>`` by tests that kill a push with a signal
mid-run or start two syncs at once. Writes sleep OMNISYNC_TEST_WRITE_DELAY seconds and
batches hold OMNISYNC_TEST_BATCH records, so a push spans many batches and seconds.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from omnisync.models import Change, Entity, WriteResult
from omnisync.sdk.connector import Capabilities
from omnisync_connectors.files.csv import CsvConnector

_write = CsvConnector.write
_delay = float(os.environ.get("OMNISYNC_TEST_WRITE_DELAY", "0.2"))


def slow_write(self: CsvConnector, changes: Sequence[Change]) -> list[WriteResult]:
    time.sleep(_delay)
    return _write(self, changes)


CsvConnector.write = slow_write  # type: ignore[method-assign]
CsvConnector.capabilities = Capabilities(  # type: ignore[misc]
    reads=frozenset(Entity),
    writes=frozenset(Entity),
    max_batch=int(os.environ.get("OMNISYNC_TEST_BATCH", "2")),
)

if __name__ == "__main__":
    from omnisync.cli import main

    sys.argv[0] = "omnisync"
    main()
