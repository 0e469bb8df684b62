"""Vendure 3 through its Admin GraphQL API: ``connector: vendure``.

::

    connector: vendure
    options:
      url: https://vendure.example.com    # the server; the Admin API is at api_path
      api_path: /admin-api
      username: ${VENDURE_USERNAME}
      password: ${VENDURE_PASSWORD}
      currency: EUR                       # which of a variant's prices is compared
      locations:                          # Vendure stock location (name or id): omnisync location
        Default Stock Location: lager

One record per product variant with a SKU, read with the ``productVariants`` list query
(``take`` up to 1000 per page, ``skip`` for the offset; after the first page the rest are
fetched in parallel): the product's name and description (``title: variant`` takes the
variant's own name), the price in ``currency`` (Vendure keeps integers in the minor unit,
1999 = 19.99 EUR; the channel's default currency when unset) and ``stockOnHand`` per stock
location.

Writes go through ``updateProductVariants`` (prices, stock levels, variant names) and
``updateProducts`` (product name and description, in ``language``), one call each per batch.
Vendure refuses a whole call when one input is wrong; the call is then repeated input by input
so the other changes land and the bad one fails with Vendure's message. Each write is
confirmed by reading the variants again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

import httpx
from pydantic import Field as PydanticField
from pydantic import field_validator

from omnisync import secrets
from omnisync.connector import (
    Capabilities,
    Connector,
    ConnectorContext,
    ConnectorOptions,
    map_locations,
)
from omnisync.errors import ConnectorError
from omnisync.http import HttpClient, HttpError, HttpOptions
from omnisync.models import Change, Entity, Field, Money, Op, Record, WriteResult
from omnisync.normalize import clean_text, minor_units
from omnisync.values import field_value, json_money, same

from .api import VendureApi

log = logging.getLogger(__name__)

VARIANT_SELECTION = """
  id sku name
  product { id name description }
  prices { currencyCode price }
  stockLevels { stockLocationId stockOnHand }
"""
PAGE_QUERY = (
    "query Page($take: Int!, $skip: Int!) {"
    " productVariants(options: {take: $take, skip: $skip, sort: {id: ASC}}) {"
    f" totalItems items {{ {VARIANT_SELECTION} }} }} }}"
)
BY_SKU_QUERY = (
    "query BySku($skus: [String!]!, $take: Int!) {"
    " productVariants(options: {take: $take, filter: {sku: {in: $skus}}}) {"
    f" items {{ {VARIANT_SELECTION} }} }} }}"
)
STORE_QUERY = """
query Store {
  activeChannel { code defaultCurrencyCode availableCurrencyCodes }
  stockLocations(options: {take: 1000}) { items { id name } }
}
"""
UPDATE_VARIANTS = """
mutation UpdateVariants($input: [UpdateProductVariantInput!]!) {
  updateProductVariants(input: $input) { id }
}
"""
UPDATE_PRODUCTS = """
mutation UpdateProducts($input: [UpdateProductInput!]!) {
  updateProducts(input: $input) { id }
}
"""
_FIELDS = frozenset({Field.TITLE, Field.DESCRIPTION, Field.PRICE, Field.STOCK})
#: SKUs per lookup query.
_LOOKUP = 200


class VendureOptions(HttpOptions):
    """Options of the vendure connector."""

    #: Path of the Admin API on the server.
    api_path: str = "/admin-api"
    #: An administrator's user name and password (the Admin API login).
    username: str
    password: str
    #: The channel to work in (its token), for a server with several channels.
    channel_token: str | None = None
    #: The currency whose price is compared (ISO 4217); default: the channel's default currency.
    currency: str | None = None
    #: Language of the names and descriptions written.
    language: str = "en"
    #: Vendure stock location (name or id) → omnisync location. Empty: every location, by name.
    locations: dict[str, str] = PydanticField(default_factory=dict)
    #: Title from the product (shared by its variants) or the variant's own name.
    title: Literal["product", "variant"] = "product"
    #: Variants per page (Vendure refuses more than 1000).
    page_size: int = PydanticField(default=500, ge=1, le=1000)
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

    @field_validator("api_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return "/" + value.strip("/")


class _Capabilities:
    """On the class: what the kind can do; on an instance: with its configured batch size."""

    def __get__(self, instance: VendureConnector | None, owner: type | None = None) -> Capabilities:
        entities = frozenset(Entity)
        batch = instance.vendure_options.max_batch if instance is not None else 100
        return Capabilities(reads=entities, writes=entities, max_batch=batch)


@dataclass
class _Store:
    currencies: list[str]
    default_currency: str
    #: Vendure location id → omnisync location name (only the locations compared).
    locations: dict[str, str]


@dataclass
class _Outbox:
    """The inputs of one batch's two mutations and which changes ride on each input."""

    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def variant(self, variant_id: str, index: int) -> dict[str, Any]:
        self.owners.setdefault(("variant", variant_id), []).append(index)
        return self.variants.setdefault(variant_id, {"id": variant_id})

    def product(self, product_id: str, index: int) -> dict[str, Any]:
        self.owners.setdefault(("product", product_id), []).append(index)
        return self.products.setdefault(product_id, {"id": product_id})


class VendureConnector(Connector):
    """Vendure 3 (Admin GraphQL API): variants with names, prices and stock per location."""

    description = (
        "Vendure 3 shop (Admin GraphQL API): variants, prices per currency, stock per location"
    )
    Options = VendureOptions
    capabilities = _Capabilities()
    retries_itself = True

    def __init__(
        self,
        options: ConnectorOptions,
        context: ConnectorContext,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(options, VendureOptions):
            raise TypeError(f"{type(self).__name__} needs {VendureOptions.__name__}")
        super().__init__(options, context)
        self.vendure_options = options
        self._transport = transport
        secrets.register(options.password)

    # ------------------------------------------------------------------ plumbing

    @cached_property
    def http(self) -> HttpClient:
        return HttpClient.from_options(self.name, self.vendure_options, transport=self._transport)

    @cached_property
    def api(self) -> VendureApi:
        options = self.vendure_options
        return VendureApi(
            self.http, options.api_path, options.username, options.password, options.channel_token
        )

    def close(self) -> None:
        if "http" in self.__dict__:
            self.http.close()

    def describe(self) -> str:
        options = self.vendure_options
        return f"Vendure at {secrets.mask(options.url)}{options.api_path}"

    def fields(self) -> frozenset[Field]:
        return _FIELDS

    @cached_property
    def store(self) -> _Store:
        data = self.api.query(STORE_QUERY)
        channel = data.get("activeChannel") or {}
        currencies = [str(c) for c in channel.get("availableCurrencyCodes") or []]
        default = str(channel.get("defaultCurrencyCode") or (currencies[:1] or [""])[0])
        every = {
            str(loc["id"]): str(loc.get("name") or loc["id"])
            for loc in (data.get("stockLocations") or {}).get("items") or []
        }
        return _Store(currencies or [default], default, self._map_locations(every))

    def _map_locations(self, every: dict[str, str]) -> dict[str, str]:
        return map_locations(
            self.vendure_options.locations, every, where=self.name, owner="Vendure"
        )

    @property
    def currency(self) -> str:
        return self.vendure_options.currency or self.store.default_currency

    def check(self) -> None:
        """Log in, read the channel, and confirm the currency and locations exist."""
        store = self.store
        if self.currency not in store.currencies:
            raise ConnectorError(
                f"the channel has no currency {self.currency}",
                where=self.name,
                hint=f"its currencies are {', '.join(store.currencies)}: set options.currency "
                "to one of them, or add it to the channel in Vendure",
            )

    # ------------------------------------------------------------------ reading

    def _page(self, skip: int) -> dict[str, Any]:
        data = self.api.query(PAGE_QUERY, {"take": self.vendure_options.page_size, "skip": skip})
        page: dict[str, Any] = data.get("productVariants") or {}
        return page

    def read(self) -> Iterator[Record]:
        """Every variant with a SKU; pages after the first are fetched in parallel."""
        self.check()
        size = self.vendure_options.page_size
        first = self._page(0)
        yield from self._records(first, 0)
        total = int(first.get("totalItems") or 0)
        skips = range(size, total, size)
        for skip, page in zip(skips, self.http.map(self._page, skips), strict=True):
            yield from self._records(page, skip)

    def _records(self, page: dict[str, Any], skip: int) -> Iterator[Record]:
        origin = f"productVariants(skip: {skip})"
        for variant in page.get("items") or []:
            record = self._record(variant, origin)
            if record is not None:
                yield record

    def _record(self, variant: dict[str, Any], origin: str = "") -> Record | None:
        sku = clean_text(variant.get("sku"))
        if sku is None:
            return None
        product = variant.get("product") or {}
        title = (
            product.get("name") if self.vendure_options.title == "product" else variant.get("name")
        )
        levels = {str(lv.get("stockLocationId")): lv for lv in variant.get("stockLevels") or []}
        stock: dict[str, int] = {}
        for location_id, name in self.store.locations.items():
            level = levels.get(location_id) or {}
            stock[name] = stock.get(name, 0) + int(level.get("stockOnHand") or 0)
        return Record(
            sku=sku,
            title=clean_text(title),
            description=clean_text(product.get("description")),
            price=_price(variant, self.currency),
            stock=stock,
            ids={"variant_id": str(variant["id"]), "product_id": str(product.get("id"))},
            origin=origin,
        )

    def _variants(self, skus: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The channel's variants of these SKUs, by SKU (a list: Vendure allows a SKU twice)."""
        wanted = list(dict.fromkeys(skus))
        chunks = [wanted[i : i + _LOOKUP] for i in range(0, len(wanted), _LOOKUP)]

        def lookup(chunk: list[str]) -> list[dict[str, Any]]:
            data = self.api.query(BY_SKU_QUERY, {"skus": chunk, "take": 1000})
            items: list[dict[str, Any]] = (data.get("productVariants") or {}).get("items") or []
            return items

        found: dict[str, list[dict[str, Any]]] = {}
        for items in self.http.map(lookup, chunks):
            for variant in items:
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

    def preview(self, changes: Sequence[Change]) -> list[Any]:
        outbox, failures = self._prepare(changes, self._variants([c.sku for c in changes]))
        shown: list[Any] = []
        if outbox.variants:
            shown.append({"updateProductVariants": list(outbox.variants.values())})
        if outbox.products:
            shown.append({"updateProducts": list(outbox.products.values())})
        shown += [{"refused": changes[i].key, "why": why} for i, why in sorted(failures.items())]
        return shown

    def write(self, changes: Sequence[Change]) -> list[WriteResult]:
        outbox, failures = self._prepare(changes, self._variants([c.sku for c in changes]))
        self._send(UPDATE_VARIANTS, "variant", outbox.variants, outbox, failures)
        self._send(UPDATE_PRODUCTS, "product", outbox.products, outbox, failures)
        sent = [i for i in range(len(changes)) if i not in failures]
        if sent:
            self._confirm(changes, sent, failures)
        return [
            WriteResult(c.key, i not in failures, failures.get(i)) for i, c in enumerate(changes)
        ]

    def _prepare(
        self, changes: Sequence[Change], variants: dict[str, list[dict[str, Any]]]
    ) -> tuple[_Outbox, dict[int, str]]:
        outbox = _Outbox()
        failures: dict[int, str] = {}
        for index, change in enumerate(changes):
            found = variants.get(change.sku) or []
            try:
                if change.op is not Op.UPDATE or change.field is None:
                    raise _Refused(
                        f"the vendure connector does not {change.op.value} variants; "
                        "create or delete them in Vendure"
                    )
                if not found:
                    raise _Refused(f"no variant with SKU {change.sku!r} in the channel")
                if len(found) > 1:
                    ids = ", ".join(str(v["id"]) for v in found)
                    raise _Refused(f"SKU {change.sku!r} is on {len(found)} variants (ids {ids})")
                self._stage(outbox, index, change, found[0])
            except _Refused as refused:
                failures[index] = str(refused)
        return outbox, failures

    def _stage(self, outbox: _Outbox, index: int, change: Change, variant: dict[str, Any]) -> None:
        variant_id = str(variant["id"])
        product_id = str((variant.get("product") or {}).get("id"))
        language = self.vendure_options.language
        name = Field(change.field or "")
        if name is Field.PRICE:
            money = json_money(change.after)
            if money is None:
                raise _Refused("no price to set")
            currency = money.currency.upper()
            if currency not in self.store.currencies:
                raise _Refused(
                    f"the channel has no currency {currency} "
                    f"(its currencies: {', '.join(self.store.currencies)}); "
                    "add it to the channel in Vendure or convert the price "
                    "(expect.price.currency and rate)"
                )
            minor = money.amount.scaleb(minor_units(currency))
            if minor != minor.to_integral_value() or minor < 0:
                raise _Refused(f"{money.amount} {currency} is not a valid price in {currency}")
            body = outbox.variant(variant_id, index)
            prices = [p for p in body.get("prices", []) if p["currencyCode"] != currency]
            body["prices"] = [*prices, {"currencyCode": currency, "price": int(minor)}]
        elif name is Field.STOCK:
            location_id = self._location_id(change.location)
            quantity = change.after if change.after is not None else 0
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                raise _Refused(f"stock must be a whole number of at least 0, not {quantity!r}")
            body = outbox.variant(variant_id, index)
            levels = [
                lv for lv in body.get("stockLevels", []) if lv["stockLocationId"] != location_id
            ]
            body["stockLevels"] = [
                *levels,
                {"stockLocationId": location_id, "stockOnHand": quantity},
            ]
        elif name in (Field.TITLE, Field.DESCRIPTION):
            if name is Field.TITLE and not change.after:
                raise _Refused("a product needs a name")
            on_variant = name is Field.TITLE and self.vendure_options.title == "variant"
            if on_variant:
                body = outbox.variant(variant_id, index)
            else:
                body = outbox.product(product_id, index)
            translation = (body.setdefault("translations", [{"languageCode": language}]))[0]
            translation["name" if name is Field.TITLE else "description"] = change.after or ""
        else:
            raise _Refused(f"the vendure connector cannot write {name.value}")

    def _location_id(self, location: str | None) -> str:
        mapped = self.store.locations
        if location is None:
            if len(set(mapped.values())) == 1:
                return next(iter(mapped))
            raise _Refused("stock without a location, and the channel has several: name one")
        hits = [i for i, name in mapped.items() if name == location]
        if len(hits) != 1:
            known = ", ".join(sorted(set(mapped.values()))) or "none"
            raise _Refused(
                f"location {location!r} is not one stock location of the channel "
                f"(compared locations: {known}; see options.locations)"
            )
        return hits[0]

    def _send(
        self,
        mutation: str,
        kind: str,
        inputs: dict[str, dict[str, Any]],
        outbox: _Outbox,
        failures: dict[int, str],
    ) -> None:
        """One mutation for the batch; when Vendure refuses it (all or nothing), each input
        alone, so that one bad input fails only its own changes."""
        if not inputs:
            return
        refused: dict[str, str] = {}
        try:
            self.api.query(mutation, {"input": list(inputs.values())})
            return
        except HttpError as exc:
            if len(inputs) == 1:
                refused = dict.fromkeys(inputs, exc.message)
            else:
                log.info("batch refused (%s); sending its %d inputs one by one", exc, len(inputs))
                for key, single in inputs.items():
                    try:
                        self.api.query(mutation, {"input": [single]})
                    except HttpError as one:
                        refused[key] = one.message
        for key, message in refused.items():
            for index in outbox.owners.get((kind, key), []):
                failures.setdefault(index, message)

    def _confirm(
        self, changes: Sequence[Change], sent: list[int], failures: dict[int, str]
    ) -> None:
        again = self._variants([changes[i].sku for i in sent])
        for index in sent:
            change = changes[index]
            found = again.get(change.sku) or []
            if len(found) != 1:
                failures[index] = "the variant is gone after the write"
                continue
            assert change.field is not None
            if change.field == Field.PRICE.value:
                money = json_money(change.after)
                price = _price(found[0], money.currency.upper()) if money else None
                now: Any = (
                    {"amount": str(price.amount), "currency": price.currency} if price else None
                )
            else:
                now = field_value(self._record(found[0]), change.field, change.location)
            if not same(change.field, now, change.after):
                failures[index] = (
                    f"Vendure answered OK but the variant shows {now!r}, not {change.after!r}"
                )


class _Refused(Exception):
    """A change this connector will not send, with the reason."""


def _price(variant: dict[str, Any], currency: str) -> Money | None:
    for price in variant.get("prices") or []:
        if str(price.get("currencyCode")) == currency and price.get("price") is not None:
            minor = Decimal(int(price["price"]))
            return Money(minor.scaleb(-minor_units(currency)), currency)
    return None
