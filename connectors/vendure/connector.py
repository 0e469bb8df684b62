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
from functools import cached_property
from typing import Any

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, field_validator

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError
from omnisync.markup import read_html, write_html
from omnisync.models import Change, Field, Money, Record
from omnisync.normalize import clean_text, minor_units
from omnisync.sdk.http import HttpClient, HttpError
from omnisync.sdk.values import json_money

from .._variants import ShopSetup, VariantConnector, VariantOptions, stock_quantity
from .client import VendureApi
from .records import (
    _Outbox,
    _price,
)

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


class VendureOptions(VariantOptions):
    """Options of the vendure connector (``currency``, ``locations``, ``title``, ``page_size``
    and ``max_batch`` as every variant shop has them)."""

    #: Path of the Admin API on the server.
    api_path: str = "/admin-api"
    #: An administrator's user name and password (the Admin API login).
    username: str
    password: SecretStr
    #: The channel to work in (its token), for a server with several channels.
    channel_token: str | None = None
    #: Language of the names and descriptions written.
    language: str = "en"
    #: Variants per page (Vendure refuses more than 1000).
    page_size: int = PydanticField(default=500, ge=1, le=1000)

    @field_validator("api_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return "/" + value.strip("/")


class VendureConnector(VariantConnector[VendureOptions, _Outbox]):
    """Vendure 3 (Admin GraphQL API): variants with names, prices and stock per location."""

    description = (
        "Vendure 3 shop (Admin GraphQL API): variants, prices per currency, stock per location"
    )
    Options = VendureOptions
    system = "Vendure"
    place = "channel"
    locations_owner = "Vendure"
    # Vendure's ids are bare numbers.
    ids_format = "ids {}"
    lookup_size = _LOOKUP

    # ------------------------------------------------------------------ plumbing

    def connect(self, transport: httpx.BaseTransport | None) -> HttpClient:
        return HttpClient.from_options(self.name, self.options, transport=transport)

    @cached_property
    def api(self) -> VendureApi:
        options = self.options
        return VendureApi(
            self.client,
            options.api_path,
            options.username,
            options.password.get_secret_value(),
            options.channel_token,
        )

    def describe(self) -> str:
        options = self.options
        return f"Vendure at {secrets.mask(options.url)}{options.api_path}"

    def fields(self) -> frozenset[Field]:
        return _FIELDS

    def _read_store(self) -> ShopSetup:
        data = self.api.query(STORE_QUERY)
        channel = data.get("activeChannel") or {}
        currencies = [str(c) for c in channel.get("availableCurrencyCodes") or []]
        default = str(channel.get("defaultCurrencyCode") or (currencies[:1] or [""])[0])
        every = {
            str(loc["id"]): str(loc.get("name") or loc["id"])
            for loc in (data.get("stockLocations") or {}).get("items") or []
        }
        return ShopSetup(currencies or [default], default, self._map_locations(every))

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

    def _page(self, skip: int) -> tuple[list[dict[str, Any]], int, str]:
        data = self.api.query(PAGE_QUERY, {"take": self.options.page_size, "skip": skip})
        page = data.get("productVariants") or {}
        origin = f"productVariants(skip: {skip})"
        return page.get("items") or [], int(page.get("totalItems") or 0), origin

    def _record(self, variant: dict[str, Any], origin: str = "") -> Record | None:
        sku = clean_text(variant.get("sku"))
        if sku is None:
            return None
        product = variant.get("product") or {}
        title = product.get("name") if self.options.title == "product" else variant.get("name")
        levels = {str(lv.get("stockLocationId")): lv for lv in variant.get("stockLevels") or []}
        stock: dict[str, int] = {}
        for location_id, name in self.store.locations.items():
            level = levels.get(location_id) or {}
            stock[name] = stock.get(name, 0) + int(level.get("stockOnHand") or 0)
        return Record(
            sku=sku,
            title=clean_text(title),
            description=read_html(product.get("description")),
            price=_price(variant, self.currency),
            stock=stock,
            ids={"variant_id": str(variant["id"]), "product_id": str(product.get("id"))},
            origin=origin,
        )

    def _lookup(self, skus: list[str]) -> list[dict[str, Any]]:
        data = self.api.query(BY_SKU_QUERY, {"skus": skus, "take": 1000})
        items: list[dict[str, Any]] = (data.get("productVariants") or {}).get("items") or []
        return items

    # ------------------------------------------------------------------ writing

    def _new_outbox(self) -> _Outbox:
        return _Outbox()

    def _stage(self, outbox: _Outbox, index: int, change: Change, variant: dict[str, Any]) -> None:
        variant_id = str(variant["id"])
        product_id = str((variant.get("product") or {}).get("id"))
        language = self.options.language
        name = Field(change.field or "")
        if name is Field.PRICE:
            money = json_money(change.after)
            if money is None:
                raise ChangeRejected("no price to set")
            currency = money.currency.upper()
            if currency not in self.store.currencies:
                raise ChangeRejected(
                    f"the channel has no currency {currency} "
                    f"(its currencies: {', '.join(self.store.currencies)}); "
                    "add it to the channel in Vendure or convert the price "
                    "(expect.price.currency and rate)"
                )
            minor = money.amount.scaleb(minor_units(currency))
            if minor != minor.to_integral_value() or minor < 0:
                raise ChangeRejected(
                    f"{money.amount} {currency} is not a valid price in {currency}"
                )
            body = outbox.variant(variant_id, index)
            prices = [p for p in body.get("prices", []) if p["currencyCode"] != currency]
            body["prices"] = [*prices, {"currencyCode": currency, "price": int(minor)}]
        elif name is Field.STOCK:
            location_id = self._location_id(change.location)
            quantity = stock_quantity(change)
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
                raise ChangeRejected("a product needs a name")
            on_variant = name is Field.TITLE and self.options.title == "variant"
            if on_variant:
                body = outbox.variant(variant_id, index)
            else:
                body = outbox.product(product_id, index)
            translation = (body.setdefault("translations", [{"languageCode": language}]))[0]
            if name is Field.TITLE:
                translation["name"] = change.after or ""
            else:
                translation["description"] = write_html(change.after)
        else:
            raise ChangeRejected(f"the vendure connector cannot write {name.value}")

    def _send(self, outbox: _Outbox, failures: dict[int, str]) -> None:
        self._mutate(UPDATE_VARIANTS, "variant", outbox.variants, outbox, failures)
        self._mutate(UPDATE_PRODUCTS, "product", outbox.products, outbox, failures)

    def _mutate(
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

    def _price_in(self, variant: dict[str, Any], currency: str) -> Money | None:
        return _price(variant, currency)

    def _unconfirmed(self, now: Any, after: Any) -> str:
        return f"Vendure answered OK but the variant shows {now!r}, not {after!r}"
