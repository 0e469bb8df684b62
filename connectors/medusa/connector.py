"""Medusa v2 through its Admin REST API: ``connector: medusa``.

::

    connector: medusa
    options:
      url: https://medusa.example.com     # the Medusa server (not the storefront)
      api_key: ${MEDUSA_API_KEY}          # a secret API key (sk_...) ...
      # email: ${MEDUSA_EMAIL}            # ... or an admin user's email and password
      # password: ${MEDUSA_PASSWORD}
      currency: EUR                       # which of a variant's prices is compared
      locations:                          # Medusa stock location (name or id): omnisync location
        Main Warehouse: lager

One record per product variant with a SKU, read from ``GET /admin/product-variants`` page by
page (``limit``/``offset``/``count``; after the first page the rest are fetched in parallel):
title and description of the variant's product (``title: variant`` takes the variant's own
title), the EAN (``gtin: upc`` or ``barcode`` for the other code), the price in ``currency``
(major units; the store's default currency when unset) and the stocked quantity per stock
location (variant → inventory item → location levels; a location without a level shows 0).

Writes, per batch of SKUs, with what Medusa's API is known to do:

* **prices**: a variant update replaces the variant's *whole* price set, so every price the
  variant has is sent back with only the changed currency's amount replaced. A price in a
  currency the store does not support is refused here (Medusa would store it silently).
* **stock**: ``POST /admin/inventory-items/location-levels/batch``; a level that does not
  exist yet is created (updating it answers 404 "is not stocked at location").
* **content**: title and description on the product, the EAN on the variant.

A batch request that fails is retried item by item, so one bad change does not sink the
others. Every write is confirmed by reading the variants again: Medusa answers 200 to an
update it silently did not apply (an unknown variant id), and such a change fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property, partial
from typing import Any, Literal

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, model_validator

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError
from omnisync.models import Change, Field, Money, Record
from omnisync.normalize import clean_text
from omnisync.sdk.http import HttpClient, HttpError

from .._variants import ShopSetup, VariantConnector, VariantOptions, stock_quantity
from .client import JwtLogin, MedusaApi, api_key_auth
from .records import (
    _gtin,
    _gtin_out,
    _levels_body,
    _money,
    _number,
    _Outbox,
    _price,
    _price_set,
    _show,
    _with_price,
)

log = logging.getLogger(__name__)

#: The variant fields a read asks for (Medusa returns only what ``fields`` names).
VARIANT_FIELDS = ",".join(
    [
        "id",
        "sku",
        "title",
        "ean",
        "upc",
        "barcode",
        "manage_inventory",
        "product_id",
        "product.id",
        "product.title",
        "product.description",
        "prices.id",
        "prices.amount",
        "prices.currency_code",
        "prices.min_quantity",
        "prices.max_quantity",
        "prices.rules",
        "inventory_items.inventory_item_id",
        "inventory_items.required_quantity",
        "inventory_items.inventory.location_levels.location_id",
        "inventory_items.inventory.location_levels.stocked_quantity",
    ]
)
#: SKUs per ``sku[]`` lookup (keeps URLs short).
_LOOKUP = 100
_FIELDS = frozenset({Field.TITLE, Field.DESCRIPTION, Field.GTIN, Field.PRICE, Field.STOCK})


class MedusaOptions(VariantOptions):
    """Options of the medusa connector (``currency``, ``locations``, ``title``, ``page_size``
    and ``max_batch`` as every variant shop has them)."""

    #: A secret API key (``sk_...``); or set ``email`` and ``password``.
    api_key: SecretStr | None = None
    #: An admin user's email, for JWT login (faster per request than an API key).
    email: str | None = None
    password: SecretStr | None = None
    #: Which variant code is the GTIN.
    gtin: Literal["ean", "upc", "barcode"] = "ean"
    #: Variants per page (Medusa accepts up to 1000).
    page_size: int = PydanticField(default=200, ge=1, le=1000)

    @model_validator(mode="after")
    def _credentials(self) -> MedusaOptions:
        login = self.email is not None or self.password is not None
        if self.api_key and login:
            raise ValueError("set either api_key or email and password, not both")
        if not self.api_key and not (self.email and self.password):
            raise ValueError("set api_key (a secret API key), or email and password")
        return self


class MedusaConnector(VariantConnector[MedusaOptions, _Outbox]):
    """Medusa v2 (Admin REST API): variants with content, prices and stock per location."""

    description = (
        "Medusa v2 shop (Admin REST API): variants, prices per currency, stock per location"
    )
    Options = MedusaOptions
    system = "Medusa"
    place = "shop"
    locations_owner = "the store"
    lookup_size = _LOOKUP

    # ------------------------------------------------------------------ plumbing

    def connect(self, transport: httpx.BaseTransport | None) -> HttpClient:
        options = self.options
        auth: httpx.Auth
        if options.api_key:
            auth = api_key_auth(options.api_key.get_secret_value())
        else:
            password = options.password.get_secret_value() if options.password else ""
            auth = JwtLogin(options.url, options.email or "", password, self.name)
        return HttpClient.from_options(
            self.name,
            options,
            transport=transport,
            auth=auth,
            headers={"Accept": "application/json"},
        )

    @cached_property
    def api(self) -> MedusaApi:
        return MedusaApi(self.client)

    def describe(self) -> str:
        return f"Medusa at {secrets.mask(self.options.url)}"

    def fields(self) -> frozenset[Field]:
        return _FIELDS

    def _read_store(self) -> ShopSetup:
        stores = self.api.get(
            "/admin/stores",
            {"fields": "id,supported_currencies.currency_code,supported_currencies.is_default"},
        ).get("stores")
        if not stores:
            raise ConnectorError(
                "the Medusa server has no store", where=self.name, hint="finish Medusa's setup"
            )
        supported = stores[0].get("supported_currencies") or []
        currencies = [str(c["currency_code"]).upper() for c in supported]
        default = next(
            (str(c["currency_code"]).upper() for c in supported if c.get("is_default")),
            currencies[0] if currencies else "",
        )
        located = self.api.list_all(
            "/admin/stock-locations", "stock_locations", {"fields": "id,name"}
        )
        every = {str(loc["id"]): str(loc.get("name") or loc["id"]) for loc in located}
        return ShopSetup(currencies, default, self._map_locations(every))

    def check(self) -> None:
        """Authenticate, read the store, and confirm the currency and locations exist."""
        store = self.store
        if self.currency not in store.currencies:
            raise ConnectorError(
                f"the store has no currency {self.currency}",
                where=self.name,
                hint=f"its currencies are {', '.join(store.currencies) or 'none'}: "
                "set options.currency to one of them, or add it in Medusa's store settings",
            )

    # ------------------------------------------------------------------ reading

    def _page(self, offset: int) -> tuple[list[dict[str, Any]], int, str]:
        page = self.api.get(
            "/admin/product-variants",
            {
                "limit": self.options.page_size,
                "offset": offset,
                "order": "id",
                "fields": VARIANT_FIELDS,
            },
        )
        origin = f"GET /admin/product-variants?offset={offset}"
        return page.get("variants") or [], int(page.get("count") or 0), origin

    def _record(self, variant: dict[str, Any], origin: str = "") -> Record | None:
        sku = clean_text(variant.get("sku"))
        if sku is None:
            return None
        product = variant.get("product") or {}
        options = self.options
        title = product.get("title") if options.title == "product" else variant.get("title")
        record = Record(
            sku=sku,
            title=clean_text(title),
            description=clean_text(product.get("description")),
            gtin=_gtin(variant.get(options.gtin)),
            price=_price(variant, self.currency),
            stock=self._stock(variant),
            ids={"variant_id": str(variant["id"]), "product_id": str(variant.get("product_id"))},
            origin=origin,
        )
        items = variant.get("inventory_items") or []
        if len(items) == 1:
            record.ids["inventory_item_id"] = str(items[0].get("inventory_item_id"))
        return record

    def _stock(self, variant: dict[str, Any]) -> dict[str, int] | None:
        """Stocked quantity per compared location; a kit of several inventory items has as many
        as its scarcest item allows."""
        if variant.get("manage_inventory") is False:
            return None
        items = variant.get("inventory_items") or []
        stock: dict[str, int] = {}
        for location_id, name in self.store.locations.items():
            if not items:
                stock[name] = stock.get(name, 0)
                continue
            kits = []
            for item in items:
                need = _number(item.get("required_quantity")) or Decimal(1)
                levels = (item.get("inventory") or {}).get("location_levels") or []
                have = sum(
                    (
                        _number(lv.get("stocked_quantity")) or Decimal(0)
                        for lv in levels
                        if lv.get("location_id") == location_id
                    ),
                    Decimal(0),
                )
                kits.append(int(have // need))
            stock[name] = stock.get(name, 0) + min(kits)
        return stock

    # ------------------------------------------------------------------ targeted reads

    def _lookup(self, skus: list[str]) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("sku[]", sku) for sku in skus]
        params += [("limit", len(skus) * 2 + 10), ("fields", VARIANT_FIELDS)]
        found: list[dict[str, Any]] = self.api.get("/admin/product-variants", params)["variants"]
        return found

    # ------------------------------------------------------------------ writing

    def _new_outbox(self) -> _Outbox:
        return _Outbox()

    def _stage(self, outbox: _Outbox, index: int, change: Change, variant: dict[str, Any]) -> None:
        variant_id = str(variant["id"])
        product_id = str(variant.get("product_id") or (variant.get("product") or {}).get("id"))
        name = Field(change.field or "")
        if name is Field.PRICE:
            money = _money(change.after)
            if money.currency not in self.store.currencies:
                raise ChangeRejected(
                    f"the store has no currency {money.currency} "
                    f"(its currencies: {', '.join(self.store.currencies)}); "
                    "add it in Medusa's store settings or convert the price "
                    "(expect.price.currency and rate)"
                )
            if money.amount < 0:
                raise ChangeRejected(f"a negative price ({money}) cannot be right")
            body = outbox.variants.setdefault(product_id, {}).setdefault(variant_id, {})
            prices = body.get("prices") or _price_set(variant)
            body["prices"] = _with_price(prices, money)
            outbox.own(("variant", variant_id), index)
        elif name is Field.GTIN or (name is Field.TITLE and self.options.title == "variant"):
            body = outbox.variants.setdefault(product_id, {}).setdefault(variant_id, {})
            if name is Field.GTIN:
                body[self.options.gtin] = _gtin_out(change.after)
            else:
                body["title"] = change.after
            outbox.own(("variant", variant_id), index)
        elif name in (Field.TITLE, Field.DESCRIPTION):
            if name is Field.TITLE and not change.after:
                raise ChangeRejected("a product needs a title")
            outbox.products.setdefault(product_id, {})[name.value] = change.after
            outbox.own(("product", product_id), index)
        elif name is Field.STOCK:
            location_id = self._location_id(change.location)
            items = variant.get("inventory_items") or []
            if variant.get("manage_inventory") is False or not items:
                raise ChangeRejected("the variant does not manage inventory in Medusa")
            if len(items) != 1 or _number(items[0].get("required_quantity")) not in (None, 1):
                raise ChangeRejected(
                    "the variant is a kit of several inventory items; set their stock in Medusa"
                )
            quantity = stock_quantity(change)
            item_id = str(items[0]["inventory_item_id"])
            levels = (items[0].get("inventory") or {}).get("location_levels") or []
            exists = any(lv.get("location_id") == location_id for lv in levels)
            outbox.levels[(item_id, location_id)] = [quantity, exists]
            outbox.own(("level", item_id, location_id), index)
        else:
            raise ChangeRejected(f"the medusa connector cannot write {name.value}")

    # -- sending: a batch per kind, item by item when the batch is refused

    def _send(self, outbox: _Outbox, failures: dict[int, str]) -> None:
        def fail(key: tuple[str, ...], message: str) -> None:
            for index in outbox.owners.get(key, []):
                failures.setdefault(index, message)

        post = self.api.post
        fields = {"fields": "id"}

        def variants(product: str) -> None:
            updates = outbox.variants[product]
            batch = [{"id": vid, **body} for vid, body in updates.items()]
            self._batched(
                partial(
                    post, f"/admin/products/{product}/variants/batch", {"update": batch}, fields
                ),
                [
                    (
                        ("variant", vid),
                        partial(post, f"/admin/products/{product}/variants/{vid}", body, fields),
                    )
                    for vid, body in updates.items()
                ],
                fail,
            )

        # Medusa updates variants product by product: send those requests side by side.
        for _ in self.client.map(variants, list(outbox.variants)):
            pass
        if outbox.products:
            batch = [{"id": pid, **body} for pid, body in outbox.products.items()]
            self._batched(
                partial(post, "/admin/products/batch", {"update": batch}, fields),
                [
                    (("product", pid), partial(post, f"/admin/products/{pid}", body, fields))
                    for pid, body in outbox.products.items()
                ],
                fail,
            )
        if outbox.levels:
            self._batched(
                partial(
                    post,
                    "/admin/inventory-items/location-levels/batch",
                    _levels_body(outbox.levels),
                ),
                [
                    (("level", item, location), partial(self._set_level, item, location, *spec))
                    for (item, location), spec in outbox.levels.items()
                ],
                fail,
            )

    @staticmethod
    def _batched(
        batch: Callable[[], Any],
        singles: list[tuple[tuple[str, ...], Callable[[], Any]]],
        fail: Callable[[tuple[str, ...], str], None],
    ) -> None:
        """Send ``batch``; when Medusa refuses it (all or nothing), send each item alone so the
        good ones land and the bad one fails with Medusa's message."""
        try:
            batch()
            return
        except HttpError as exc:
            if len(singles) == 1:
                fail(singles[0][0], exc.message)
                return
            log.info("batch refused (%s); sending its %d items one by one", exc, len(singles))
        for key, single in singles:
            try:
                single()
            except HttpError as exc:
                fail(key, exc.message)

    def _set_level(self, item: str, location: str, quantity: int, exists: bool) -> None:
        """Set one level; create it when Medusa says the item is not stocked there."""
        path = f"/admin/inventory-items/{item}/location-levels"
        if exists:
            try:
                self.api.post(
                    f"{path}/{location}", {"stocked_quantity": quantity}, {"fields": "id"}
                )
                return
            except HttpError as exc:
                if exc.status != 404:
                    raise
        try:
            self.api.post(
                path, {"location_id": location, "stocked_quantity": quantity}, {"fields": "id"}
            )
        except HttpError as exc:
            if exc.status != 400 or "already exists" not in exc.message:
                raise
            self.api.post(f"{path}/{location}", {"stocked_quantity": quantity}, {"fields": "id"})

    # -- confirming: Medusa may answer 200 and change nothing

    def _price_in(self, variant: dict[str, Any], currency: str) -> Money | None:
        return _price(variant, currency)

    def _unconfirmed(self, now: Any, after: Any) -> str:
        return (
            f"Medusa answered OK but the variant shows {_show(now)}, not "
            f"{_show(after)} (an update Medusa silently skipped)"
        )
