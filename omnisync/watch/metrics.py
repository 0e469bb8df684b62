"""What ``watch`` counts, in Prometheus' text format at ``/metrics`` (prometheus_client)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Seconds from an event's arrival to its channel write confirmed.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Seconds one step of an event batch took (where an event's time goes).
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: The steps of an event batch, in order: held back by coalescing, waiting for the push
#: of the SKUs it names, re-read and planned, waiting for the push stage, pushed, settled.
STAGES = ("held", "in_flight", "check", "queued_push", "push", "settle")


class Metrics:
    """One registry per watcher (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "omnisync_events_received", "Events queued, by source", ["source"], registry=r
        )
        self.deduped = Counter(
            "omnisync_events_deduped",
            "Deliveries dropped as replays, by source",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            "omnisync_requests_rejected",
            "Requests refused, by HTTP status",
            ["status"],
            registry=r,
        )
        self.settled = Counter(
            "omnisync_events_settled", "Events handled, by outcome", ["status"], registry=r
        )
        self.queue_depth = Gauge(
            "omnisync_queue_depth", "Events queued or claimed, not yet settled", registry=r
        )
        self.latency = Histogram(
            "omnisync_event_write_seconds",
            "Seconds from an event's arrival to its channel write confirmed",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "omnisync_batch_stage_seconds",
            "Seconds each step of an event batch took (held, in_flight, check, queued_push, "
            "push, settle)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.pushes = Counter(
            "omnisync_changes_pushed",
            "Changes sent, by channel and outcome",
            ["channel", "status"],
            registry=r,
        )
        self.passes = Counter(
            "omnisync_passes",
            "Incremental and full passes, by kind and outcome",
            ["kind", "status"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
