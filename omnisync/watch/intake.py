"""The event intake: a small ASGI app that verifies webhooks and queues their events.

``POST /webhooks/<name>`` for each ``watch.webhooks`` entry; ``GET /healthz``; ``GET /metrics``.

In order, for every request: an unknown name is 404; a body over ``watch.max_body`` is 413
(by its ``Content-Length`` before reading, else while reading); a missing or wrong signature
is 401; a body that is not what the sender sends is 400; then every event is written to the
queue and committed, and only then is the answer 200. Nothing is queued for a refused request.
If the queue cannot be written the answer is 503, so the sender delivers again. A replay (a
delivery id already queued) is answered 200 and counted, not queued twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from omnisync import secrets
from omnisync.errors import OmnisyncError
from omnisync.watch.metrics import Metrics
from omnisync.watch.queue import EventQueue
from omnisync.watch.settings import WatchSettings
from omnisync.watch.sources import KINDS, Delivery, Rejected, WebhookKind, now

log = logging.getLogger("omnisync.watch")


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def intake_app(
    settings: WatchSettings,
    queue: EventQueue,
    metrics: Metrics,
    *,
    wake: Callable[[], None] = lambda: None,
    health: Callable[[], tuple[bool, dict[str, Any]]] = lambda: (True, {}),
) -> Starlette:
    """The ASGI app; ``wake`` is called after events are queued (the watcher then looks at
    once instead of at its next poll), ``health`` answers ``/healthz``."""
    kinds: dict[str, WebhookKind] = {
        name: KINDS[hook.type]() for name, hook in settings.webhooks.items()
    }

    def refuse(status: int, message: str, name: str) -> Response:
        metrics.rejected.labels(str(status)).inc()
        log.warning("webhook %s: refused (%s): %s", name, status, message)
        return JSONResponse({"error": message}, status_code=status)

    async def webhook(request: Request) -> Response:
        name = request.path_params["name"]
        kind = kinds.get(name)
        if kind is None:
            return refuse(404, f"no webhook {name!r} is configured (watch.webhooks)", name)
        try:
            body = await _body(request, settings.max_body)
        except _TooLarge:
            return refuse(413, f"body larger than watch.max_body ({settings.max_body} bytes)", name)
        delivery = Delivery(
            {k.lower(): v for k, v in request.headers.items()}, body, received_at=now()
        )
        if kind.ping(delivery):
            return JSONResponse({"ping": True})
        hook = settings.webhooks[name]
        try:
            kind.verify(delivery, hook.secret.get_secret_value())
            events = kind.events(delivery, settings.source_of(name))
        except Rejected as exc:
            return refuse(exc.status, exc.message, name)
        queued = replays = 0
        try:
            for event in events:
                if await run_in_threadpool(queue.put_event, event) is None:
                    replays += 1
                    metrics.deduped.labels(event.source).inc()
                else:
                    queued += 1
                    metrics.received.labels(event.source).inc()
        except OmnisyncError as exc:
            # Events queued before the failure stay queued; the sender's redelivery is
            # recognised as a replay for those.
            return refuse(503, secrets.mask(f"could not queue the event: {exc}"), name)
        if queued:
            wake()
        log.info("webhook %s: %d event(s) queued, %d replay(s)", name, queued, replays)
        return JSONResponse({"queued": queued, "replays": replays})

    async def healthz(request: Request) -> Response:
        ok, facts = health()
        return JSONResponse({"status": "ok" if ok else "unhealthy", **facts}, 200 if ok else 503)

    async def prometheus(request: Request) -> Response:
        try:
            counts = await run_in_threadpool(queue.event_counts)
            metrics.queue_depth.set(counts.get("queued", 0) + counts.get("claimed", 0))
        except OmnisyncError:
            pass  # the depth stays as last seen; /healthz says what is wrong
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return Starlette(
        routes=[
            Route("/webhooks/{name}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ]
    )
