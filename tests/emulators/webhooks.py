"""Webhook deliveries of an emulated platform, sent as the platforms send theirs: a POST of a
signed JSON body, *after* the change that caused it, from a queue of their own (Shopify and
Shopware both deliver asynchronously), one delivery at a time and in order.

::

    outbox = Outbox()
    outbox.send(Delivery("orders/create", url, body, headers))   # queued, sent on a thread
    outbox.flush()                                                # wait until it was sent
    outbox.deliveries       # every attempt: what was sent and the answer (status or error)
    outbox.redeliver(outbox.deliveries[0])    # the same delivery again, as a retry sends it

A failed delivery is logged and not retried on its own: a test that wants the platform's
retry calls :meth:`Outbox.redeliver` (which keeps the body and the event id, as both
platforms' retries do; Shopware's also carries a new timestamp, so its body and signature
differ).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx


@dataclass
class Delivery:
    """One delivery attempt: its topic (event name), where it went, the raw body and the
    headers it carried; ``status`` is the receiver's HTTP answer (or the error) once sent."""

    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | str | None = None
    #: The receiver's answer body.
    reply: str = ""
    #: The next attempt of the same delivery as the platform would send it (a fresh delivery
    #: id, a new timestamp re-signed), for :meth:`Outbox.redeliver`; None: the same again.
    retry: Callable[[], Delivery] | None = field(default=None, repr=False)


class Outbox:
    """The platform's webhook queue, worked off by one thread started on demand."""

    def __init__(self) -> None:
        #: Every attempt, in the order sent.
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def send(self, delivery: Delivery) -> None:
        """Queue ``delivery``; it goes out after the deliveries queued before it."""
        with self._lock:
            self._queue.put(delivery)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, daemon=True)
                self._worker.start()

    def flush(self) -> None:
        """Wait until everything queued so far has been sent."""
        self._queue.join()

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send ``delivery`` again as the platform's retry would (the same event id) and wait
        for the answer."""
        again = delivery.retry() if delivery.retry else replace(delivery, status=None)
        self.send(again)
        self.flush()
        return again

    def of(self, topic: str) -> list[Delivery]:
        """The attempts of ``topic`` so far."""
        return [d for d in self.deliveries if d.topic == topic]

    def _work(self) -> None:
        while True:
            try:
                delivery = self._queue.get(timeout=1.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            try:
                answer = httpx.post(
                    delivery.url, content=delivery.body, headers=delivery.headers, timeout=10
                )
                delivery.status, delivery.reply = answer.status_code, answer.text
            except httpx.HTTPError as exc:
                delivery.status = f"{type(exc).__name__}: {exc}"
            finally:
                self.deliveries.append(delivery)
                self._queue.task_done()
