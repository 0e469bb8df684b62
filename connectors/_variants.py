"""What the medusa and vendure connectors share: shops whose admin API holds one record per
product variant, finds variants by SKU, takes writes in batches and may answer OK to a write it
did not apply (so every write is confirmed by reading the variants again).

A :class:`VariantConnector` supplies the API's own parts:

* ``_page(offset)``: one page of variants, how many there are in all, and its origin;
* ``_lookup(skus)``: the variants of some SKUs (one request of at most ``lookup_size``);
* ``_record(variant)``: a variant as a :class:`~omnisync.models.Record` (None without a SKU);
* ``_read_store()``: the shop's currencies and compared stock locations;
* ``_new_outbox()``, ``_stage(...)`` and ``_send(...)``: a batch of changes into requests,
  and those requests to the shop (a refused one fails only the changes it carries);
* ``_price_in(variant, currency)`` and ``_unconfirmed(now, after)``: for the confirmation.

Messages name the system and what holds the variants (``place``: shop, channel).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import Field as PydanticField
from pydantic import field_validator

from omnisync.errors import ChangeRejected
from omnisync.models import Change, Entity, Field, Money, Op, Record
from omnisync.normalize import clean_text
from omnisync.sdk.connector import Capabilities, map_locations
from omnisync.sdk.http import HttpClient, HttpConnector, HttpOptions
from omnisync.sdk.values import field_value, json_money, same
from omnisync.sdk.write import BatchWriter, Prepared

#: A shop's variants by SKU (a list: a shop may hold one SKU on several variants).
Variants = dict[str, list[dict[str, Any]]]


class VariantOptions(HttpOptions):
    """Options the variant shops share (mixed into each one's Options)."""

    #: The currency whose price is compared (ISO 4217); default: the shop's default currency.
    currency: str | None = None
    #: Stock location (name or id) → omnisync location. Empty: every location, by name.
    locations: dict[str, str] = PydanticField(default_factory=dict)
    #: Title from the product (shared by its variants) or the variant's own title.
    title: Literal["product", "variant"] = "product"
    #: Variants per page.
    page_size: int = PydanticField(default=200, ge=1, le=1000)
    #: SKUs per write batch.
    max_batch: int = PydanticField(default=100, ge=1, le=1000)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not (len(value) == 3 and value.isalpha()):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (EUR, USD, ...)")
        return value.upper()


@dataclass
class ShopSetup:
    """What the shop itself says: its currencies and stock locations."""

    currencies: list[str]
    default_currency: str
    #: Location id → omnisync location name (only the locations compared).
    locations: dict[str, str]


class Outbox(Protocol):
    """The requests one batch of changes turns into."""

    #: Item key → indexes of the changes it carries.
    owners: dict[tuple[str, ...], list[int]]

    def requests(self) -> list[Any]:
        """The requests as ``--dry-run`` shows them."""
        ...


OptionsT = TypeVar("OptionsT", bound=VariantOptions)
OutboxT = TypeVar("OutboxT", bound=Outbox)


class _Capabilities:
    """On the class: what the kind can do; on an instance: with its configured batch size."""

    def __get__(
        self, instance: VariantConnector[Any, Any] | None, owner: type | None = None
    ) -> Capabilities:
        entities = frozenset(Entity)
        batch = instance.options.max_batch if instance is not None else 100
        return Capabilities(reads=entities, writes=entities, max_batch=batch)


class VariantConnector(
    BatchWriter[OutboxT], HttpConnector[OptionsT, HttpClient], Generic[OptionsT, OutboxT]
):
    """Reads, targeted reads, batched writes and their confirmation for a variant shop."""

    capabilities = _Capabilities()
    #: The shop system as messages name it (``Medusa``).
    system: ClassVar[str]
    #: What holds the variants, as messages name it (``shop``, ``channel``).
    place: ClassVar[str]
    #: Who has the stock locations, for :func:`~omnisync.sdk.connector.map_locations`.
    locations_owner: ClassVar[str]
    #: How a list of variant ids reads in a message.
    ids_format: ClassVar[str] = "{}"
    #: SKUs per ``_lookup``.
    lookup_size: ClassVar[int]

    # ------------------------------------------------------------------ the API's own parts

    @abstractmethod
    def _page(self, offset: int) -> tuple[list[dict[str, Any]], int, str]:
        """The variants from ``offset`` on (one page), how many there are, and the origin."""

    @abstractmethod
    def _lookup(self, skus: list[str]) -> list[dict[str, Any]]:
        """The variants of these SKUs (one request)."""

    @abstractmethod
    def _record(self, variant: dict[str, Any], origin: str = "") -> Record | None:
        """The variant as a record; None without a SKU."""

    @abstractmethod
    def _read_store(self) -> ShopSetup:
        """The shop's currencies and stock locations (all of them: ``_map_locations`` maps)."""

    @abstractmethod
    def _new_outbox(self) -> OutboxT: ...

    @abstractmethod
    def _stage(self, outbox: OutboxT, index: int, change: Change, variant: dict[str, Any]) -> None:
        """Put change number ``index`` into ``outbox``; raise :class:`ChangeRejected` if it cannot be."""

    @abstractmethod
    def _send(self, outbox: OutboxT, failures: dict[int, str]) -> None:
        """Send the outbox; a refused request puts its changes' indexes into ``failures``."""

    @abstractmethod
    def _price_in(self, variant: dict[str, Any], currency: str) -> Money | None:
        """The variant's price in ``currency``."""

    @abstractmethod
    def _unconfirmed(self, now: Any, after: Any) -> str:
        """Why a change whose write was answered OK but shows ``now`` instead of ``after`` fails."""

    # ------------------------------------------------------------------ the shop

    @cached_property
    def store(self) -> ShopSetup:
        """The shop's currencies and compared stock locations (read once)."""
        return self._read_store()

    def _map_locations(self, every: dict[str, str]) -> dict[str, str]:
        return map_locations(
            self.options.locations, every, where=self.name, owner=self.locations_owner
        )

    @property
    def currency(self) -> str:
        return self.options.currency or self.store.default_currency

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Every variant with a SKU; pages after the first are fetched in parallel."""
        self.check()
        size = self.options.page_size
        variants, total, origin = self._page(0)
        yield from self._records(variants, origin)
        offsets = range(size, total, size)
        for variants, _, origin in self.client.map(self._page, offsets):
            yield from self._records(variants, origin)

    def _records(self, variants: list[dict[str, Any]], origin: str) -> Iterator[Record]:
        for variant in variants:
            record = self._record(variant, origin)
            if record is not None:
                yield record

    def _variants(self, skus: Sequence[str]) -> Variants:
        """The shop's variants of these SKUs, by SKU."""
        wanted = list(dict.fromkeys(skus))
        size = self.lookup_size
        chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        found: Variants = {}
        for variants in self.client.map(self._lookup, chunks):
            for variant in variants:
                sku = clean_text(variant.get("sku"))
                if sku is not None:
                    found.setdefault(sku, []).append(variant)
        return found

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        variants = self._variants([c.sku for c in changes])
        result: dict[str, Any] = {}
        for change in changes:
            found = variants.get(change.sku) or []
            record = self._record(found[0]) if len(found) == 1 else None
            if change.op is Op.UPDATE and change.field is not None:
                result[change.key] = field_value(record, change.field, change.location)
            else:
                result[change.key] = {"sku": change.sku} if record else None
        return result

    # ------------------------------------------------------------------ writing

    def prepare(self, changes: Sequence[Change]) -> Prepared[OutboxT]:
        """One outbox for the batch (its requests go out together), and the refusals."""
        outbox, failures = self._prepare(changes, self._variants([c.sku for c in changes]))
        return Prepared([outbox] if outbox.owners else [], failures)

    def covers(self, request: OutboxT) -> list[int]:
        return [index for indexes in request.owners.values() for index in indexes]

    def show(self, request: OutboxT) -> list[Any]:
        return request.requests()

    def send(self, request: OutboxT) -> dict[int, str | None]:
        failures: dict[int, str] = {}
        self._send(request, failures)
        return {index: failures.get(index) for index in self.covers(request)}

    def settle(self, changes: Sequence[Change], failed: dict[int, str]) -> None:
        """Read the written variants again: a change the shop does not show fails."""
        sent = [i for i in range(len(changes)) if i not in failed]
        if sent:
            self._confirm(changes, sent, failed)

    def _prepare(
        self, changes: Sequence[Change], variants: Variants
    ) -> tuple[OutboxT, dict[int, str]]:
        """Turn changes into request items; changes that cannot be sent get their reason."""
        outbox = self._new_outbox()
        failures: dict[int, str] = {}
        for index, change in enumerate(changes):
            found = variants.get(change.sku) or []
            try:
                if change.op is not Op.UPDATE or change.field is None:
                    raise ChangeRejected(
                        f"the {self.system.lower()} connector does not {change.op.value} "
                        f"variants; create or delete them in {self.system}"
                    )
                if not found:
                    raise ChangeRejected(f"no variant with SKU {change.sku!r} in the {self.place}")
                if len(found) > 1:
                    ids = self.ids_format.format(", ".join(str(v["id"]) for v in found))
                    raise ChangeRejected(f"SKU {change.sku!r} is on {len(found)} variants ({ids})")
                self._stage(outbox, index, change, found[0])
            except ChangeRejected as refused:
                failures[index] = str(refused)
        return outbox, failures

    def _location_id(self, location: str | None) -> str:
        """The id of the one stock location an omnisync location stands for."""
        mapped = self.store.locations
        if location is None:
            if len(set(mapped.values())) == 1:
                return next(iter(mapped))
            raise ChangeRejected(
                f"stock without a location, and the {self.place} has several: name one"
            )
        hits = [i for i, name in mapped.items() if name == location]
        if len(hits) != 1:
            known = ", ".join(sorted(set(mapped.values()))) or "none"
            raise ChangeRejected(
                f"location {location!r} is not one stock location of the {self.place} "
                f"(compared locations: {known}; see options.locations)"
            )
        return hits[0]

    def _confirm(
        self, changes: Sequence[Change], sent: list[int], failures: dict[int, str]
    ) -> None:
        """Read the written variants again: a change the shop does not show fails."""
        again = self._variants([changes[i].sku for i in sent])
        for index in sent:
            change = changes[index]
            found = again.get(change.sku) or []
            if len(found) != 1:
                failures[index] = "the variant is gone after the write"
                continue
            assert change.field is not None
            now: Any
            if change.field == Field.PRICE.value:
                # In the change's currency, which need not be the one compared.
                money = json_money(change.after)
                price = self._price_in(found[0], money.currency.upper()) if money else None
                now = {"amount": str(price.amount), "currency": price.currency} if price else None
            else:
                now = field_value(self._record(found[0]), change.field, change.location)
            if not same(change.field, now, change.after):
                failures[index] = self._unconfirmed(now, change.after)


def stock_quantity(change: Change) -> int:
    """The stock a change sets: a whole number of at least 0 (none is 0)."""
    quantity = change.after if change.after is not None else 0
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise ChangeRejected(f"stock must be a whole number of at least 0, not {quantity!r}")
    return quantity
