"""The one write routine: a connector says how changes become requests and how one request is
sent; :class:`BatchWriter` does the rest for every connector alike.

::

    class MyShop(BatchWriter[MyRequest], Connector):
        def prepare(self, changes):        # -> Prepared: requests, and refusals by index
        def send(self, request):           # -> {index: None (applied) or the shop's message}
        def show(self, request):           # -> the payloads it sends, for --dry-run

``write(changes)`` prepares, sends each request in turn and answers one
:class:`~omnisync.models.WriteResult` per change, in order. A change ``prepare`` refuses
(raise :class:`~omnisync.errors.ChangeRejected` while building, or put it in
``Prepared.refused``) fails alone with its reason and is never sent. When a request fails as
a whole (``send`` raises :class:`~omnisync.errors.ConnectorError`) before anything of the
batch went out, the error is raised again: the channel failed, not these changes, and the
push retries or stops. When it fails after earlier requests were applied, those stay
applied and the changes of this and later requests fail with the message (the journal keeps
both, ``apply --resume`` settles them).

``preview(changes)`` is the same preparation without sending, in one shape for every
connector: ``{"send": payload}`` per payload, then ``{"key": change key, "refused": reason}``
per refusal.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from omnisync.errors import ConnectorError
from omnisync.models import Change, WriteResult

RequestT = TypeVar("RequestT")


@dataclass
class Prepared(Generic[RequestT]):
    """A batch made ready: the requests to send, and the changes refused (by index)."""

    requests: list[RequestT] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


class BatchWriter(Generic[RequestT]):
    """``write`` and ``preview`` for a connector that sends batches of changes as requests.

    Mix in before :class:`~omnisync.sdk.connector.Connector` (``class X(BatchWriter[R],
    Connector)``) and implement :meth:`prepare`, :meth:`send`, :meth:`show` and
    :meth:`covers`; :meth:`settle` is an optional hook after sending.
    """

    @abstractmethod
    def prepare(self, changes: Sequence[Change]) -> Prepared[RequestT]:
        """Turn ``changes`` into requests; a change that cannot be sent goes to ``refused``
        with its reason. Must not send anything (``preview`` calls it too)."""

    @abstractmethod
    def send(self, request: RequestT) -> dict[int, str | None]:
        """Send one request; per change index it carries, ``None`` (applied) or the channel's
        message. Raise :class:`~omnisync.errors.ConnectorError` when the request as a whole
        failed (:class:`~omnisync.errors.TransientError` if a retry may cure it)."""

    @abstractmethod
    def covers(self, request: RequestT) -> Iterable[int]:
        """The indexes of the changes ``request`` carries."""

    @abstractmethod
    def show(self, request: RequestT) -> list[Any]:
        """The payloads ``request`` sends, as ``--dry-run`` shows them (secrets are masked by
        the renderer, not here)."""

    def settle(self, changes: Sequence[Change], failed: dict[int, str]) -> None:
        """After the last request: adjust ``failed`` in place (a refusal that turns out to be
        an earlier success, a read-back that finds a change did not take). Default: nothing."""

    def write(self, changes: Sequence[Change]) -> list[WriteResult]:
        """Send the batch; one result per change, in order (see the module docstring)."""
        prepared = self.prepare(changes)
        failed: dict[int, str] = dict(prepared.refused)
        sent_any = False
        for position, request in enumerate(prepared.requests):
            try:
                outcome = self.send(request)
            except ConnectorError as exc:
                if not sent_any:
                    raise  # nothing went out: the channel failed, not these changes
                message = str(exc)
                for rest in prepared.requests[position:]:
                    for index in self.covers(rest):
                        failed.setdefault(index, message)
                break
            sent_any = True
            for index, error in outcome.items():
                if error is not None:
                    failed.setdefault(index, error)
        self.settle(changes, failed)
        return [
            WriteResult(change.key, index not in failed, failed.get(index))
            for index, change in enumerate(changes)
        ]

    def preview(self, changes: Sequence[Change]) -> list[Any]:
        """What :meth:`write` would send for this batch, and what it would refuse."""
        prepared = self.prepare(changes)
        shown: list[Any] = [
            {"send": payload} for request in prepared.requests for payload in self.show(request)
        ]
        shown += [
            {"key": changes[index].key, "refused": reason}
            for index, reason in sorted(prepared.refused.items())
        ]
        return shown
