"""Magento's asynchronous bulk API, as the write side uses it: schedule, poll, outcomes.

``PUT /rest/{scope}/async/bulk/V1/products/bySku`` takes an array of request bodies (here
``{"product": {...}}``, one per product) and answers at once with a ``bulk_uuid`` and one
``request_items`` entry per body (``accepted``): acceptance is not success. A consumer
(``async.operations.all``, run by cron or a supervisor) executes the operations later, one by
one. ``GET /rest/{store}/V1/bulk/{uuid}/status`` lists them in ``operations_list`` with a
status: 1 complete, 2 failed but worth retrying, 3 failed for good, 4 still open, 5 rejected,
and ``result_message`` (Magento's message, already rendered).

The operations of a bulk are saved in the order of its request items, so their ids ascend in
that order: the k-th operation by id is the k-th accepted request item. :class:`BulkSender`
polls (``bulk_poll`` seconds first, then half as long again each time up to
:data:`MAX_POLL_WAIT`) until no operation is open or ``bulk_timeout`` runs out; an operation
still open then fails with a hint about the consumer. Operations that failed with status 2
are sent once more in a new bulk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omnisync import secrets
from omnisync.errors import ConnectorError

from .client import MagentoClient, messages, parse_json

log = logging.getLogger(__name__)

COMPLETE, RETRIABLE, FAILED, OPEN, REJECTED = 1, 2, 3, 4, 5
#: Longest wait between two status polls, in seconds.
MAX_POLL_WAIT = 10.0


@dataclass
class BulkSender:
    """Sends bulks to one path and waits for their operations."""

    api: MagentoClient
    #: ``/rest/all/async/bulk/V1/products/bySku`` (or a store view's).
    path: str
    #: ``/rest/{store_code}/V1`` (where the status endpoint is read).
    base: str
    poll: float
    timeout: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: Bulk requests sent and status polls made (benchmarks and tests count them).
    bulks: int = 0
    polls: int = 0

    def send(self, payloads: Sequence[Mapping[str, Any]]) -> dict[int, str | None]:
        """Schedule ``payloads`` as one bulk and wait for it; per position ``None`` (applied)
        or Magento's message. Retriable failures are sent once more."""
        outcome = self._once(payloads)
        again = [i for i, (status, _) in outcome.items() if status == RETRIABLE]
        if again:
            log.info(
                "%s: %d operation(s) failed temporarily; sending them once more",
                self.api.channel,
                len(again),
            )
            retried = self._once([payloads[i] for i in again])
            outcome.update({again[j]: result for j, result in retried.items()})
        return {i: _message(status, text) for i, (status, text) in outcome.items()}

    def _once(self, payloads: Sequence[Mapping[str, Any]]) -> dict[int, tuple[int, str]]:
        uuid, accepted, rejected = self._schedule(payloads)
        outcome: dict[int, tuple[int, str]] = {i: (REJECTED, m) for i, m in rejected.items()}
        if not accepted:
            return outcome
        operations = self._wait(uuid, len(accepted))
        if len(operations) != len(accepted):
            text = (
                f"Magento's bulk {uuid} lists {len(operations)} operation(s) for "
                f"{len(accepted)} accepted request(s); see its detailed status"
            )
            outcome.update(dict.fromkeys(accepted, (FAILED, text)))
            return outcome
        for position, operation in zip(accepted, operations, strict=True):
            status = _status(operation.get("status"))
            text = str(operation.get("result_message") or "")
            if status == OPEN:
                text = (
                    f"still open in Magento after {self.timeout:.0f} s (bulk {uuid}): is the "
                    "async.operations.all consumer running (cron, or bin/magento "
                    "queue:consumers:start async.operations.all)? `omnisync apply --resume` "
                    "finds out later whether it was applied"
                )
            outcome[position] = (status, text)
        return outcome

    def _schedule(
        self, payloads: Sequence[Mapping[str, Any]]
    ) -> tuple[str, list[int], dict[int, str]]:
        """The bulk's uuid, the positions Magento accepted and those it rejected at once."""
        where = f"{self.api.channel}: PUT {self.path}"
        self.bulks += 1
        response = self.api.request("PUT", self.path, json=list(payloads), ok=(400,))
        body = parse_json(response, where)
        if response.status_code == 400:
            # Scheduling itself failed (a body Magento cannot read): none of them will run.
            text = "; ".join(messages(body)) or "rejected"
            return "", [], dict.fromkeys(range(len(payloads)), secrets.mask(text))
        uuid = body.get("bulk_uuid") if isinstance(body, dict) else None
        items = body.get("request_items") if isinstance(body, dict) else None
        if not isinstance(uuid, str) or not isinstance(items, list):
            raise ConnectorError(
                "the bulk answer has no bulk_uuid and request_items",
                where=where,
                hint="does this Magento have the asynchronous web API (Magento_WebapiAsync)?",
            )
        accepted: list[int] = []
        rejected: dict[int, str] = {}
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            index = int(item.get("id", position))
            if item.get("status") == "accepted":
                accepted.append(index)
            else:
                rejected[index] = str(item.get("error_message") or "rejected when scheduled")
        missing = set(range(len(payloads))) - set(accepted) - rejected.keys()
        rejected.update(dict.fromkeys(missing, "Magento's bulk answer does not list it"))
        return uuid, sorted(accepted), rejected

    def _wait(self, uuid: str, count: int) -> list[dict[str, Any]]:
        """The bulk's operations by id once none is open (or the timeout has passed)."""
        path = f"{self.base}/bulk/{uuid}/status"
        deadline = self.clock() + self.timeout
        wait = self.poll
        while True:
            self.sleep(min(wait, max(0.0, deadline - self.clock())))
            self.polls += 1
            body = self.api.get(path)
            listed = body.get("operations_list") if isinstance(body, dict) else None
            operations = sorted(
                (o for o in listed or () if isinstance(o, dict)),
                key=lambda o: int(o.get("id") or 0),
            )
            done = len(operations) >= count and all(
                _status(o.get("status")) != OPEN for o in operations
            )
            if done or self.clock() >= deadline:
                return operations
            wait = min(wait * 1.5, MAX_POLL_WAIT)


def _status(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return OPEN


def _message(status: int, text: str) -> str | None:
    if status == COMPLETE:
        return None
    if status == OPEN:
        return text
    kind = {RETRIABLE: "failed (twice; Magento calls it temporary)", REJECTED: "rejected"}.get(
        status, "failed"
    )
    return secrets.mask(f"Magento {kind}: {text}" if text else f"Magento {kind}")
