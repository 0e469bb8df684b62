"""Connectors kept open between event batches, for the targeted checks and pushes of ``watch``.

A batch of events re-reads a few SKUs from each channel and writes them back, seconds apart,
all day. Opening a connector per batch would pay, each time, what a connector keeps: its HTTP
connections (a TLS handshake per shop, on the internet), its token, the shop's currency and
tax rates. The pool opens each source once and lends it out: ``with`` blocks leave a lent
connector open (:attr:`~omnisync.sdk.connector.Connector.lent`), and the pool closes it when
it is :meth:`renewed <ConnectorPool.renew>` (every pass, and after a batch failed, so that a
changed setting or a broken connection never outlives a few minutes) or closed.

Full reads (the passes) never come from the pool: each pass opens its own connectors, as a
``sync`` does.
"""

from __future__ import annotations

import dataclasses
import threading

from omnisync.config import Config
from omnisync.sdk.connector import Connector, PullState


class ConnectorPool:
    """One open connector per source of ``config``, lent to checks and pushes."""

    def __init__(self, config: Config, store: PullState | None) -> None:
        self.config = config
        self.store = store
        self._open: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def __call__(
        self,
        name: str,
        *,
        store: PullState | None = None,
        full: bool = False,
        run_id: str | None = None,
    ) -> Connector:
        """The source ``name``'s connector (the signature of :meth:`Config.connector`); for a
        push, it writes for ``run_id``."""
        if full:
            return self.config.connector(name, store=store, full=True, run_id=run_id)
        with self._lock:
            connector = self._open.get(name)
            if connector is None:
                connector = self.config.connector(name, store=self.store)
                connector.lent = True
                self._open[name] = connector
        if run_id is not None and connector.context.run_id != run_id:
            # Idempotency keys derive from the push run (see the Shopify connector).
            connector.context = dataclasses.replace(connector.context, run_id=run_id)
        return connector

    def renew(self) -> None:
        """Close every connector; the next use opens a new one."""
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for connector in opened:
            connector.lent = False
            connector.close()

    close = renew

    def __enter__(self) -> ConnectorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
