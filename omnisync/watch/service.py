"""``omnisync watch`` as a long-lived service: the intake served by uvicorn on a thread, the
watcher's loop on the main thread, both stopped gracefully by SIGTERM or Ctrl-C.

A stop lets the batch in progress finish (its push is journalled either way), then the
intake stops answering and the process exits 0. The ``watch`` lock is held for the whole
life of the process, so a second watcher on the same state store exits at once (code 7).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from omnisync.config import Config
from omnisync.errors import UsageError
from omnisync.store import Store
from omnisync.watch.intake import intake_app
from omnisync.watch.metrics import Metrics
from omnisync.watch.settings import split_address
from omnisync.watch.watcher import Watcher

log = logging.getLogger("omnisync.watch")

#: /healthz is unhealthy when the loop has not turned for this long (a hung channel call).
STUCK_SECONDS = 900


def serve(
    config: Config, store: Store, *, dry_run: bool = False, listen: str | None = None
) -> None:
    """Run until SIGTERM/SIGINT. Raises :class:`~omnisync.errors.LockedError` when another
    watcher holds this store, :class:`UsageError` when the address cannot be listened on."""
    import uvicorn

    settings = config.model.watch
    host, port = split_address(listen or settings.listen)
    if not host or not 0 < port < 65536:
        raise UsageError(f"--listen {listen!r}: use host:port, e.g. 127.0.0.1:8787")
    metrics = Metrics()
    watcher = Watcher(config, store, dry_run=dry_run, metrics=metrics)

    def health() -> tuple[bool, dict[str, Any]]:
        idle = time.monotonic() - watcher.heartbeat
        facts = {
            "loop_seconds_ago": round(idle, 1),
            "catalogue_measured": watcher.sizes is not None,
        }
        return idle < STUCK_SECONDS, facts

    app = intake_app(settings, store, metrics, wake=watcher.wake.set, health=health)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    with store.lock("watch"):
        thread = threading.Thread(target=server.run, name="omnisync-intake", daemon=True)
        thread.start()
        while not server.started and thread.is_alive():
            time.sleep(0.02)
        if not server.started:
            raise UsageError(
                f"cannot listen on {host}:{port}",
                where="watch.listen",
                hint="another process may use the port; pick another with --listen or watch.listen",
            )
        log.info(
            "watching: intake on http://%s:%d (webhooks: %s)%s",
            host,
            port,
            ", ".join(settings.webhooks) or "none",
            " — dry run, nothing is pushed" if dry_run else "",
        )
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("stopping (%s): finishing the batch in progress", signal.Signals(signum).name)
            watcher.stopping.set()
            watcher.wake.set()

        for sig in previous:
            signal.signal(sig, stop)
        try:
            watcher.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.should_exit = True
            thread.join(timeout=10)
            log.info("stopped")
