"""The record model every connector yields and the findings every check produces.

A :class:`Record` is one sellable unit (a variant) keyed by SKU, as a source shows it: its
content, its price and its stock per location, plus the channel's own ids so that a later push
can address it. Values are already normalised (see :mod:`omnisync.normalize`): money is
:class:`~decimal.Decimal` with a currency, stock an ``int`` per location.

A :class:`Finding` is one difference between what a channel should show and what it shows.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Entity(StrEnum):
    """What a connector reads or writes."""

    CONTENT = "content"
    PRICE = "price"
    STOCK = "stock"


class Field(StrEnum):
    """Every comparable field, each belonging to one :class:`Entity`."""

    TITLE = "title"
    DESCRIPTION = "description"
    GTIN = "gtin"
    BRAND = "brand"
    ATTRIBUTES = "attributes"
    PRICE = "price"
    SALE_PRICE = "sale_price"
    STOCK = "stock"
    AVAILABILITY = "availability"

    @property
    def entity(self) -> Entity:
        return FIELD_ENTITY[self]


FIELD_ENTITY: dict[Field, Entity] = {
    Field.TITLE: Entity.CONTENT,
    Field.DESCRIPTION: Entity.CONTENT,
    Field.GTIN: Entity.CONTENT,
    Field.BRAND: Entity.CONTENT,
    Field.ATTRIBUTES: Entity.CONTENT,
    Field.PRICE: Entity.PRICE,
    Field.SALE_PRICE: Entity.PRICE,
    Field.STOCK: Entity.STOCK,
    Field.AVAILABILITY: Entity.STOCK,
}


class Availability(StrEnum):
    """Availability as feeds show it (Google Merchant Center's values)."""

    IN_STOCK = "in_stock"
    OUT_OF_STOCK = "out_of_stock"
    BACKORDER = "backorder"
    PREORDER = "preorder"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in a currency (ISO 4217 code, upper case)."""

    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


@dataclass(slots=True)
class Record:
    """One sellable unit as a source shows it. ``None`` means "this source has no value"."""

    sku: str
    title: str | None = None
    description: str | None = None
    gtin: str | None = None
    brand: str | None = None
    attributes: dict[str, Any] | None = None
    price: Money | None = None
    sale_price: Money | None = None
    sale_start: datetime | None = None
    sale_end: datetime | None = None
    #: VAT rate in percent for this record, where the source carries one (ERP exports do).
    vat_rate: Decimal | None = None
    #: Quantity per location; a source without locations uses the location ``"default"``.
    stock: dict[str, int] | None = None
    #: Prices a channel shows at some of its locations instead of ``price`` (a store's own
    #: price in a local inventory). Each is compared with the price the channel should show,
    #: as ``price`` is, and corrected as ``price`` at that location.
    location_prices: dict[str, Money] | None = None
    #: Other price lists of a canonical record, by name (``{"b2b": Money(...)}``): a channel
    #: with ``expect.price.source: b2b`` takes its price from that list instead of ``price``.
    price_lists: dict[str, Money] | None = None
    availability: Availability | None = None
    #: When the source last changed the record, where its connector knows (shops do): with
    #: ``expect.lag`` a record changed more recently is not compared (an edit in flight).
    modified_at: datetime | None = None
    #: The product this record is a variant of, as the source names it (the parent's SKU or
    #: the product's handle): a SKU under another parent in a channel is an identity finding.
    parent: str | None = None
    #: The channel's own identifiers (product id, variant id, inventory item id, ...).
    ids: dict[str, str] = field(default_factory=dict)
    #: Where the record came from, for messages: ``file.csv:12``, ``GET /products?page=3``.
    origin: str = ""


class Kind(StrEnum):
    """The kind of a finding."""

    MISSING = "missing"  # in canonical, not in the channel
    EXTRA = "extra"  # in the channel, not in canonical
    CHANGED = "changed"  # in both, a field differs
    DUPLICATE = "duplicate"  # the channel lists the SKU more than once
    #: A row value that cannot be used (a blank canonical cell, a row without a SKU, a barcode
    #: a spreadsheet mangled): reported with its source and file:line, never compared, never
    #: turned into a change.
    DATA_QUALITY = "data_quality"
    #: The SKUs do not line up with the products (``field`` says how): one GTIN on several
    #: canonical SKUs (``gtin``), or on a canonical SKU the channel lacks and a channel SKU
    #: canonical lacks (``sku``: ``expected`` canonical's SKU, ``actual`` the channel's).
    IDENTITY = "identity"


class Severity(StrEnum):
    """How much a finding matters (``expect.severity``): only ``fail`` findings fail a check;
    ``warn`` ones fail it with ``--fail-on-warn``; ``info`` ones are reported, never failing."""

    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


#: A finding's text columns, in the order every tabular rendering (CSV, the store) uses.
FINDING_TEXT = (
    "channel",
    "kind",
    "sku",
    "field",
    "location",
    "canonical",
    "expected",
    "actual",
    "rule",
    "detail",
)
#: Where a data-quality finding's value is: its side and its row.
FINDING_ORIGIN = ("source", "origin")


@dataclass(slots=True)
class Finding:
    """One mismatch. Values are display strings in a stable textual form (``19.99 EUR``)."""

    channel: str
    kind: Kind
    sku: str
    field: str | None = None
    location: str | None = None
    canonical: str | None = None
    expected: str | None = None
    actual: str | None = None
    rule: str | None = None
    detail: str | None = None
    # Spelled out: the attribute ``field`` above shadows ``dataclasses.field`` in this body.
    ids: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The channel's current and the expected value in JSON form (:mod:`omnisync.sdk.values`):
    #: what a plan turns into a change. For ``missing`` ``after`` is the whole expected record.
    before: Any = None
    after: Any = None
    #: For ``data_quality``: which side holds the value (``canonical`` or the channel's name)
    #: and the row it is on (``erp.csv:12``).
    source: str | None = None
    origin: str | None = None
    #: From the channel's ``expect.severity`` (see :func:`omnisync.expect.severity_of`).
    severity: Severity = Severity.FAIL

    @property
    def label(self) -> str:
        """The field with its location (``stock@berlin``), or the kind for record findings."""
        name = self.field or self.kind.value
        return f"{name}@{self.location}" if self.location else name

    def to_dict(self, *, copy: bool = True) -> dict[str, Any]:
        """The finding as a dict: what asdict() gives (copies of the containers), spelled out,
        since a big catalogue's report turns tens of thousands of findings into dicts.
        ``copy=False`` shares ``ids``, ``before`` and ``after`` (for a writer that only reads)."""
        values = {
            "channel": self.channel,
            "kind": self.kind.value,
            "sku": self.sku,
            "field": self.field,
            "location": self.location,
            "canonical": self.canonical,
            "expected": self.expected,
            "actual": self.actual,
            "rule": self.rule,
            "detail": self.detail,
            "ids": self.ids,
            "before": self.before,
            "after": self.after,
            "source": self.source,
            "origin": self.origin,
            "severity": self.severity.value,
        }
        if copy:
            values.update(
                ids=dict(self.ids), before=_copied(self.before), after=_copied(self.after)
            )
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        values = dict(data)
        values["kind"] = Kind(values["kind"])
        values["severity"] = Severity(values.get("severity") or Severity.FAIL)
        values["ids"] = dict(values.get("ids") or {})
        return cls(**values)


@dataclass(frozen=True, slots=True)
class QualityNote:
    """A value a source row holds that cannot be used, noted by the connector while reading
    (the row is kept, or skipped when it has no SKU): it becomes a ``data_quality`` finding
    and leaves that field of that row out of the comparison, instead of refusing the file."""

    #: The row: ``shop.csv:12``.
    origin: str
    #: The row's SKU; empty for a row without one.
    sku: str
    #: The field the value is for (``gtin``), or ``sku`` for a row without a SKU.
    field: str
    #: The value as written, when there is one.
    value: str | None
    message: str


_IMMUTABLE = (str, int, float, type(None), Decimal, datetime)


def _copied(value: Any) -> Any:
    """``value`` copied as :func:`dataclasses.asdict` copies a field's value."""
    if isinstance(value, _IMMUTABLE):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_copied(v) for v in value])
    if isinstance(value, list | tuple):
        return type(value)(_copied(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_copied(k), _copied(v)) for k, v in value.items())
    return copy.deepcopy(value)


@dataclass(frozen=True, slots=True)
class _Tally:
    """Counts over one list of findings, in one pass."""

    counts: dict[Kind, int]
    fields: dict[str, int]

    @classmethod
    def of(cls, findings: list[Finding]) -> _Tally:
        counts = dict.fromkeys(Kind, 0)
        changed: set[str] = set()
        fields: set[tuple[str, str]] = set()
        for f in findings:
            if f.kind is Kind.CHANGED:
                changed.add(f.sku)
                if f.field:
                    fields.add((f.sku, f.field))
            else:
                counts[f.kind] += 1
        counts[Kind.CHANGED] = len(changed)
        return cls(counts, dict(Counter(name for _, name in fields)))


@dataclass(slots=True)
class ChannelReport:
    """The outcome of checking one channel."""

    name: str
    connector: str
    canonical_count: int = 0
    channel_count: int = 0
    findings: list[Finding] = field(default_factory=list)
    #: Fields compared for this channel, in order.
    fields: list[str] = field(default_factory=list)
    #: Said once per channel: what could not be checked and why ("not checked: availability
    #: (canonical carries neither stock nor availability)").
    notes: list[str] = field(default_factory=list)
    #: Set when the channel could not be checked; ``findings`` is then empty.
    error: str | None = None
    error_code: int | None = None

    @property
    def ok(self) -> bool:
        """Read, and no finding of severity ``warn`` or ``fail`` (``info`` ones are fine)."""
        return self.error is None and all(f.severity is Severity.INFO for f in self.findings)

    #: (the findings list, its length, its tally): reports ask for the counts many times.
    #: The list itself is kept, not its id, which a new list could reuse.
    _tallied: tuple[list[Finding], int, _Tally] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _tally(self) -> _Tally:
        cached = self._tallied
        if cached is None or cached[0] is not self.findings or cached[1] != len(self.findings):
            cached = self._tallied = (self.findings, len(self.findings), _Tally.of(self.findings))
        return cached[2]

    def count(self, kind: Kind) -> int:
        """Findings of ``kind``; for ``changed`` the SKUs with any changed field."""
        return self._tally().counts[kind]

    def field_counts(self) -> Counter[str]:
        """Changed fields by name (``price``, ``stock``, ...), counting each SKU once per field."""
        return Counter(self._tally().fields)

    @property
    def in_both(self) -> int:
        """SKUs present on both sides (compared).

        Both sides bound the SKUs in common: with ``assortment: listed`` nothing is missing,
        so canonical alone would count every canonical SKU as present in the channel.
        """
        return max(
            0,
            min(
                self.canonical_count - self.count(Kind.MISSING),
                self.channel_count - self.count(Kind.EXTRA),
            ),
        )

    @property
    def matched(self) -> int:
        """SKUs present on both sides without any difference."""
        return max(0, self.in_both - self.count(Kind.CHANGED))


@dataclass(slots=True)
class CheckResult:
    """Everything a check found, across channels; what reports render and the store keeps."""

    started_at: datetime
    #: The moment expectations were evaluated at (sale windows).
    evaluated_at: datetime
    config_path: str
    config_fingerprint: str
    channels: list[ChannelReport] = field(default_factory=list)
    finished_at: datetime | None = None
    run_id: str | None = None
    #: Canonical records, and how many carry a price above zero (push guardrails use both).
    canonical_count: int = 0
    canonical_priced: int = 0
    #: Canonical records in the last trusted check before this one (None: no such check), and
    #: whether this check's canonical is trusted in turn (not cut below ``min_ratio`` of it).
    #: A refused export never becomes the baseline, so a cron job that runs the same truncated
    #: export again is refused again.
    canonical_baseline: int | None = None
    canonical_trusted: bool = True
    #: The run whose snapshot this check compared (``check --from-snapshot``), if any.
    from_snapshot: str | None = None
    #: Whether this check kept its sources as a snapshot (``settings.snapshots``).
    snapshot: bool = False

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.channels for f in c.findings]

    def counted(
        self, fail_on: frozenset[str] | None = None, *, warnings: bool = False
    ) -> list[Finding]:
        """Findings that count towards failure: those of severity ``fail`` (and ``warn`` with
        ``warnings``), all of them or only those whose field or kind is in ``fail_on``."""
        failing = {Severity.FAIL, Severity.WARN} if warnings else {Severity.FAIL}
        return [
            f
            for f in self.findings
            if f.severity in failing
            and (not fail_on or (f.field or f.kind.value) in fail_on or f.kind.value in fail_on)
        ]


# ---------------------------------------------------------------- push side


class Op(StrEnum):
    """What a change does to a channel record."""

    UPDATE = "update"  # set one field (at one location) of an existing record
    CREATE = "create"  # add a record the channel lacks (where the channel allows creates)
    DELETE = "delete"  # remove a record canonical lacks (only where deletes are allowed)


@dataclass(slots=True)
class Change:
    """One correction to push: set ``field`` (at ``location``) of ``sku`` from ``before`` to ``after``.

    Values are JSON values in the form :mod:`omnisync.sdk.values` defines (money as
    ``{"amount": "19.99", "currency": "EUR"}``, stock as an int, text as a string), so a plan
    file round-trips exactly. For ``create`` ``after`` is the whole record
    (:func:`omnisync.sdk.values.record_to_json`); for ``delete`` ``before`` is.
    """

    channel: str
    sku: str
    op: Op = Op.UPDATE
    field: str | None = None
    location: str | None = None
    before: Any = None
    after: Any = None
    rule: str | None = None
    #: The channel's own ids of the record (product id, variant id, ...).
    ids: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique within a channel's plan: ``SKU-1:price``, ``SKU-1:stock@berlin``, ``SKU-1:+``."""
        if self.op is Op.CREATE:
            return f"{self.sku}:+"
        if self.op is Op.DELETE:
            return f"{self.sku}:-"
        return f"{self.sku}:{self.field}" + (f"@{self.location}" if self.location else "")

    def inverse(self) -> Change:
        """The change that undoes this one."""
        op = {Op.CREATE: Op.DELETE, Op.DELETE: Op.CREATE}.get(self.op, Op.UPDATE)
        return Change(
            self.channel,
            self.sku,
            op,
            self.field,
            self.location,
            self.after,
            self.before,
            f"undo of {self.rule or 'change'}",
            dict(self.ids),
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["op"] = self.op.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        values = dict(data)
        values["op"] = Op(values.get("op", "update"))
        values["ids"] = dict(values.get("ids") or {})
        return cls(**values)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one change in a write request: ``error`` is the channel's own message."""

    key: str
    ok: bool
    error: str | None = None


# ---------------------------------------------------------------- change events


@dataclass(frozen=True, slots=True)
class Event:
    """Something changed at a source: the SKUs it touches (or, where the sender names only its
    own ids, those ids), so that ``watch`` re-reads just them.

    ``source`` is ``canonical`` or a channel's name. ``key`` is the sender's delivery id
    (Shopify's ``X-Shopify-Event-Id``, an outbox row id): an event whose ``(source, key)`` is
    already queued is a replay and is dropped. ``refs`` maps an id name the connector puts in
    :attr:`Record.ids` (``inventory_item_id``, ``product_id``) to values, for senders that do
    not carry SKUs.
    """

    source: str
    kind: str
    skus: tuple[str, ...] = ()
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    received_at: datetime | None = None
    key: str | None = None
    #: Set by the queue.
    id: int | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"skus": list(self.skus), "refs": {k: list(v) for k, v in self.refs.items()}}
