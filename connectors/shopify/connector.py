"""Shopify through its Admin GraphQL API: ``connector: shopify``.

::

    connector: shopify
    options:
      url: https://my-shop.myshopify.com
      api_version: "2026-01"
      token: ${SHOPIFY_TOKEN}          # an Admin API access token (shpat_...)
      locations: {Warehouse: lager, "gid://shopify/Location/2": berlin}
      currency: EUR                    # default: the shop's currency (shop.currencyCode)
      page_size: 250                   # variants per page (Shopify's maximum)
      full_every: 86400                # seconds between full pulls when pulling incrementally
      max_batch: 50                    # variants per write request

Reading: every product variant is one record (see :mod:`.records` for the field mapping and
the sale model). A full pull pages through ``productVariants`` and, in parallel, through each
location's ``inventoryLevels``, 250 per page, paced by the cost bucket (:mod:`.client`). With
a state store the pull is incremental (:func:`omnisync.sdk.incremental.incremental_read`): only
products whose ``updatedAt`` and inventory levels whose ``updatedAt`` are newer than the
mark are fetched again (with a minute of overlap: Shopify's timestamps have whole seconds and a
pull is not instantaneous). Deleted products show up at the next full pull (``full_every``,
``--full``).

Writing (``push.fields``): ``price``/``sale_price`` and ``gtin`` with
``productVariantsBulkUpdate`` (one call per product, ``allowPartialUpdates`` so that a
rejected variant does not block the others), ``title``/``description``/``brand`` with
``productUpdate`` (product fields: every variant of the product shares them), ``stock`` with
``inventorySetQuantities`` (``available``, reason ``correction``, compare-and-set against the
plan's *from* value, an ``@idempotent`` key from API version 2026-01: a uuid5 of the push run,
the channel and the quantities, so the same on a retry and on ``apply --resume``). A batch
goes out as one request carrying these mutations as aliased fields (split only when it would
exceed 1000 points). ``userErrors`` become per-change failures with Shopify's message; an
inventory mutation is all-or-nothing at Shopify, so the quantities it did not reject are sent
again.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, StringConstraints, field_validator

from omnisync import secrets
from omnisync.errors import ConnectorError
from omnisync.markup import write_html
from omnisync.models import Change, Entity, Field, Op, Record
from omnisync.sdk.connector import Capabilities
from omnisync.sdk.http import HttpConnector, HttpOptions
from omnisync.sdk.incremental import incremental_read
from omnisync.sdk.values import current_value, json_money, same
from omnisync.sdk.write import BatchWriter, Prepared

from . import records
from .client import MAX_PAGE, MAX_QUERY_COST, ShopifyClient
from .records import Mutation, VariantState

log = logging.getLogger(__name__)

#: Seconds an incremental pull reaches back before its mark (whole-second timestamps,
#: updates landing while the previous pull ran).
OVERLAP = 60
#: Search terms per query string when looking variants up by id or SKU.
TERMS_PER_QUERY = 50
#: API version from which inventorySetQuantities takes ``changeFromQuantity`` and ``@idempotent``.
IDEMPOTENT_FROM = "2026-01"
_FIELDS = frozenset(
    {
        Field.TITLE,
        Field.DESCRIPTION,
        Field.GTIN,
        Field.BRAND,
        Field.PRICE,
        Field.SALE_PRICE,
        Field.STOCK,
    }
)
_PRODUCT_INPUT = {Field.TITLE: "title", Field.DESCRIPTION: "descriptionHtml", Field.BRAND: "vendor"}
_KEY_NAMESPACE = uuid.UUID("6c1f3f1e-8a51-4d43-9f5a-0d3b7f2a9c11")


class ShopifyOptions(HttpOptions):
    """Options of the shopify connector."""

    #: The shop's base URL: https://<shop>.myshopify.com
    url: str
    #: Admin API version (quarterly: 2025-10, 2026-01, ...); 2024-10 or newer.
    api_version: Annotated[str, StringConstraints(pattern=r"^(\d{4}-(01|04|07|10)|unstable)$")] = (
        "2026-01"
    )
    #: Admin API access token (shpat_...). A secret: write it as ${ENV_VAR}.
    token: SecretStr = PydanticField(min_length=1)
    #: Shopify location (name or GID) -> omnisync location name. Only these are read and
    #: written; default: every location under its own name.
    locations: dict[str, str] | None = None
    #: The shop's currency; default: read from the shop (shop.currencyCode).
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    #: Variants (and inventory levels) per page: at most 250.
    page_size: int = PydanticField(default=MAX_PAGE, ge=1, le=MAX_PAGE)
    #: Seconds between full pulls when pulling incrementally (deletions show up then).
    full_every: float = PydanticField(default=86_400, ge=0)
    #: Variants per write request (each costs a mutation field; inputs are capped at 250).
    max_batch: int = PydanticField(default=50, ge=1, le=MAX_PAGE)

    @field_validator("api_version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value != "unstable" and value < "2024-10":
            raise ValueError(
                "omnisync needs API version 2024-10 or newer (productUpdate(product:))"
            )
        return value

    @field_validator("locations")
    @classmethod
    def _distinct(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if not value:
                raise ValueError("name at least one location, or leave the option out")
            targets = list(value.values())
            doubled = sorted({t for t in targets if targets.count(t) > 1})
            if doubled:
                raise ValueError(f"two Shopify locations map to {', '.join(doubled)}")
        return value


class _Capabilities:
    """On the class: what the kind can do; on an instance: with its ``max_batch``."""

    def __get__(self, instance: ShopifyConnector | None, owner: type | None = None) -> Capabilities:
        everything = frozenset(Entity)
        batch = instance.options.max_batch if instance is not None else 50
        return Capabilities(reads=everything, writes=everything, incremental=True, max_batch=batch)


@dataclass(frozen=True)
class ShopLocation:
    gid: str
    name: str
    #: The omnisync location name it is read and written as.
    as_name: str


@dataclass(frozen=True)
class Shop:
    name: str
    currency: str
    locations: tuple[ShopLocation, ...]

    def by_gid(self) -> dict[str, str]:
        return {loc.gid: loc.as_name for loc in self.locations}

    def gid_of(self, name: str) -> str | None:
        return next((loc.gid for loc in self.locations if loc.as_name == name), None)


class ShopifyConnector(BatchWriter[list[Mutation]], HttpConnector[ShopifyOptions, ShopifyClient]):
    """Shopify Admin GraphQL API: variants, prices (sale model), stock per location."""

    description = "Shopify (Admin GraphQL API): variants, prices, stock per location; writes"
    Options = ShopifyOptions
    capabilities = _Capabilities()

    def _init_state(self) -> None:
        self._shop_lock = threading.Lock()
        self._shop_info: Shop | None = None
        #: Variants read by current(), by GID: write() of the same batch needs their prices.
        self._seen: dict[str, VariantState] = {}

    def connect(self, transport: httpx.BaseTransport | None) -> ShopifyClient:
        """The Admin API client."""
        options = self.options
        return ShopifyClient.connect(
            self.name,
            options,
            token=options.token.get_secret_value(),
            api_version=options.api_version,
            transport=transport,
        )

    def describe(self) -> str:
        return f"{secrets.mask(self.options.url)} (Admin GraphQL {self.options.api_version})"

    def fields(self) -> frozenset[Field]:
        return _FIELDS

    def check(self) -> None:
        """Ask for the shop's currency and locations: token, scopes, URL, version, mapping."""
        self.shop()

    # ------------------------------------------------------------------ the shop

    def shop(self) -> Shop:
        """The shop's name, currency and mapped locations (asked once per connector)."""
        with self._shop_lock:
            if self._shop_info is None:
                self._shop_info = self._load_shop()
            return self._shop_info

    def _load_shop(self) -> Shop:
        name, currency = "", ""
        found: list[tuple[str, str]] = []
        for data in self._shop_pages():
            shop = data.get("shop") or {}
            name, currency = shop.get("name") or "", shop.get("currencyCode") or ""
            found += [(n["id"], n["name"]) for n in data["locations"]["nodes"]]
        mapping = self.options.locations
        if mapping is None:
            locations = tuple(ShopLocation(gid, label, label) for gid, label in found)
        else:
            chosen = []
            for key, target in mapping.items():
                match = [(gid, label) for gid, label in found if key in (gid, label)]
                if not match:
                    known = ", ".join(f"{label} ({gid})" for gid, label in found) or "none"
                    raise ConnectorError(
                        f"options.locations names {key!r}, which is not a location of the shop",
                        where=self.name,
                        hint=f"the shop's locations: {known}",
                    )
                chosen.append(ShopLocation(match[0][0], match[0][1], target))
            locations = tuple(chosen)
        return Shop(name, self.options.currency or currency, locations)

    def _shop_pages(self) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            data = self.client.execute(
                records.SHOP,
                {"first": MAX_PAGE, "after": after},
                operation="OmnisyncShop",
                cost=records.shop_cost(MAX_PAGE),
            )
            yield data
            info = data["locations"]["pageInfo"]
            if not info["hasNextPage"]:
                return
            after = info["endCursor"]

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Every variant; incremental with a state store (see the module docstring)."""
        return incremental_read(
            self,
            fetch_all=self._fetch_all,
            fetch_since=self._fetch_since,
            full_every=self.options.full_every,
        )

    def _fetch_all(self) -> Iterator[tuple[Record, str | None]]:
        """Variants page by page while each location's levels are fetched in parallel; the
        variants read before the stock is complete wait in memory (stock is joined by item)."""
        shop = self.shop()
        stop = threading.Event()
        size = records.page_size(self.options.page_size, records.VARIANT_COST)
        pages = self.client.pages(
            records.VARIANTS,
            {"first": size, "query": None},
            operation="OmnisyncVariants",
            cost=records.page_cost(size, records.VARIANT_COST),
            path=("productVariants",),
        )
        workers = min(max(1, self.options.concurrency - 1), max(1, len(shop.locations)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"omnisync-{self.name}")
        try:
            futures = [pool.submit(self._stock_at, loc, stop) for loc in shop.locations]
            if self.options.concurrency <= 1:
                for future in futures:
                    future.result()
            stock: dict[str, dict[str, tuple[int, str]]] | None = None
            waiting: list[tuple[dict[str, Any], str]] = []
            for number, page in enumerate(pages, start=1):
                origin = f"productVariants page {number}"
                for future in futures:  # a failed location stream fails the pull now
                    if future.done() and future.exception() is not None:
                        future.result()
                if stock is None and all(f.done() for f in futures):
                    stock = _merged(shop, futures)
                    yield from (self._joined(n, o, stock, shop) for n, o in waiting)
                    waiting.clear()
                for node in page["nodes"]:
                    if stock is None:
                        waiting.append((node, origin))
                    else:
                        yield self._joined(node, origin, stock, shop)
            if stock is None:
                stock = _merged(shop, futures)
                yield from (self._joined(n, o, stock, shop) for n, o in waiting)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _stock_at(
        self, location: ShopLocation, stop: threading.Event
    ) -> dict[str, tuple[int, str]]:
        """``{inventory item GID: (available, updatedAt)}`` at one location."""
        size = records.page_size(self.options.page_size, records.LEVEL_COST, overhead=1)
        found: dict[str, tuple[int, str]] = {}
        for page in self.client.pages(
            records.LEVELS,
            {"location": location.gid, "first": size, "query": None},
            operation="OmnisyncLevels",
            cost=records.page_cost(size, records.LEVEL_COST, overhead=1),
            path=("location", "inventoryLevels"),
            stop=stop,
        ):
            for level in page["nodes"]:
                quantity = records.available_of(level)
                if quantity is not None:
                    found[level["item"]["id"]] = (quantity, level.get("updatedAt") or "")
        return found

    def _joined(
        self,
        node: dict[str, Any],
        origin: str,
        stock: dict[str, dict[str, tuple[int, str]]],
        shop: Shop,
    ) -> tuple[Record, str | None]:
        item = (node.get("inventoryItem") or {}).get("id")
        quantities: dict[str, int] = {}
        newest = (node.get("product") or {}).get("updatedAt")
        for loc in shop.locations:
            level = stock[loc.gid].get(item or "")
            if level is not None:
                quantities[loc.as_name] = level[0]
                newest = max(newest or "", level[1]) or None
        record = records.to_record(node, shop.currency, quantities or None, origin)
        return record, newest

    def _fetch_since(self, mark: str) -> Iterator[tuple[Record, str | None]]:
        """Variants of products changed since ``mark`` and variants whose stock changed."""
        shop = self.shop()
        search = f"updated_at:>'{_earlier(mark, OVERLAP)}'"
        size = records.page_size(self.options.page_size, records.CHANGED_PRODUCT_COST)
        terms: list[str] = []
        for page in self.client.pages(
            records.CHANGED_PRODUCTS,
            {"first": size, "query": search},
            operation="OmnisyncChangedProducts",
            cost=records.page_cost(size, records.CHANGED_PRODUCT_COST),
            path=("products",),
        ):
            terms += [f"product_id:{_number(n['id'])}" for n in page["nodes"]]
        size = records.page_size(self.options.page_size, records.CHANGED_LEVEL_COST, 1)
        variants: set[str] = set()
        for loc in shop.locations:
            for page in self.client.pages(
                records.CHANGED_LEVELS,
                {"location": loc.gid, "first": size, "query": search},
                operation="OmnisyncChangedLevels",
                cost=records.page_cost(size, records.CHANGED_LEVEL_COST, overhead=1),
                path=("location", "inventoryLevels"),
            ):
                for level in page["nodes"]:
                    variant = ((level.get("item") or {}).get("variant") or {}).get("id")
                    if variant:
                        variants.add(variant)
        terms += [f"id:{_number(v)}" for v in sorted(variants)]
        seen: set[str] = set()
        for node in self._targets(terms):
            if node["id"] in seen:  # a changed product whose stock changed too
                continue
            seen.add(node["id"])
            yield self._target_record(node, shop, "changed since " + mark)

    def _targets(self, terms: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Variant nodes (``TARGETS``: with stock at every location) matching any term."""
        if not terms:
            return
        shop = self.shop()
        levels = max(1, min(MAX_PAGE, len(shop.locations)))
        size = records.page_size(self.options.page_size, records.target_cost(levels))
        chunks = [
            list(terms[i : i + TERMS_PER_QUERY]) for i in range(0, len(terms), TERMS_PER_QUERY)
        ]

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            # An id matches one variant, a SKU usually one: ask for no more than that (the
            # cost is charged for `first`); pagination fetches any surplus.
            first = size
            if all(t.startswith(("id:", "sku:")) for t in chunk):
                first = min(size, 2 * len(chunk))
            nodes: list[dict[str, Any]] = []
            for page in self.client.pages(
                records.TARGETS,
                {"first": first, "query": " OR ".join(chunk), "levels": levels},
                operation="OmnisyncTargets",
                cost=records.page_cost(first, records.target_cost(levels)),
                path=("productVariants",),
            ):
                nodes += page["nodes"]
            return nodes

        for nodes in self.client.map(fetch, chunks):
            yield from nodes

    def _target_record(
        self, node: dict[str, Any], shop: Shop, origin: str
    ) -> tuple[Record, str | None]:
        by_gid = shop.by_gid()
        quantities: dict[str, int] = {}
        newest = (node.get("product") or {}).get("updatedAt")
        item = node.get("inventoryItem") or {}
        for level in (item.get("inventoryLevels") or {}).get("nodes") or []:
            name = by_gid.get(level["location"]["id"])
            quantity = records.available_of(level)
            if name is not None and quantity is not None:
                quantities[name] = quantity
                newest = max(newest or "", level.get("updatedAt") or "") or None
        return records.to_record(node, shop.currency, quantities or None, origin), newest

    # ------------------------------------------------------------------ writing

    def _lookup(self, changes: Sequence[Change]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """The changes' variants as ``TARGETS`` nodes, by GID and by SKU (ids where the change
        has them, else its SKU)."""
        terms: list[str] = []
        for change in changes:
            variant = change.ids.get("variant_id")
            number = _number(variant) if variant else None
            term = f"id:{number}" if number else f'sku:"{_quoted(change.sku)}"'
            if term not in terms:
                terms.append(term)
        by_gid: dict[str, Any] = {}
        by_sku: dict[str, list[Any]] = {}
        for node in self._targets(terms):
            if node["id"] in by_gid:
                continue
            by_gid[node["id"]] = node
            by_sku.setdefault((node.get("sku") or "").strip(), []).append(node)
        return by_gid, by_sku

    @staticmethod
    def _node_for(
        change: Change, by_gid: dict[str, Any], by_sku: dict[str, list[Any]]
    ) -> tuple[Any, str | None]:
        """The change's variant node, or why there is none."""
        variant = change.ids.get("variant_id")
        if variant:
            node = by_gid.get(variant)
            if node is None:
                return None, f"variant {variant} (SKU {change.sku}) no longer exists in the shop"
            return node, None
        candidates = by_sku.get(change.sku, [])
        if not candidates:
            return None, f"no variant with SKU {change.sku} in the shop"
        if len(candidates) > 1:
            return None, f"{len(candidates)} variants have SKU {change.sku}; fix the duplicates"
        return candidates[0], None

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The targets' current values, read by variant id (or SKU) only."""
        shop = self.shop()
        by_gid, by_sku = self._lookup(changes)
        self._seen.clear()
        result: dict[str, Any] = {}
        for change in changes:
            node, _ = self._node_for(change, by_gid, by_sku)
            record = self._target_record(node, shop, "current")[0] if node else None
            if node is not None:
                self._seen[node["id"]] = records.state_of(node)
            result[change.key] = current_value(change, record)
        return result

    def prepare(self, changes: Sequence[Change]) -> Prepared[list[Mutation]]:
        """The mutations for a batch, grouped into requests, and the changes refused up front."""
        requests, refused = self._prepare(changes, run=self._run())
        self._stale: set[int] = set()
        return Prepared(requests, refused)

    def covers(self, request: list[Mutation]) -> list[int]:
        return [index for mutation in request for index in mutation.changes]

    def show(self, request: list[Mutation]) -> list[Any]:
        query, variables = records.document(request)
        return [{"operationName": "OmnisyncWrite", "query": query, "variables": variables}]

    def send(self, request: list[Mutation]) -> dict[int, str | None]:
        """One request (rarely more): Shopify applies an inventory mutation all or nothing,
        so what it did not reject itself is sent again (each round has fewer quantities, so
        this ends)."""
        failed: dict[int, str] = {}
        again = self._send(request, failed, self._stale)
        while again:
            again = self._send(again, failed, self._stale)
        return {index: failed.get(index) for index in self.covers(request)}

    def settle(self, changes: Sequence[Change], failed: dict[int, str]) -> None:
        self._forgive_stale(changes, failed, self._stale)
        self._seen.clear()

    def _run(self) -> str:
        """What idempotency keys derive from, with the channel and the quantities sent: the
        push run, so that ``apply --resume`` sends a batch with the keys it had before; else
        (no push run: a direct write) a fresh value per write, which its retries share."""
        return self.context.run_id or str(uuid.uuid4())

    def _prepare(
        self, changes: Sequence[Change], *, run: str
    ) -> tuple[list[list[Mutation]], dict[int, str]]:
        """The mutations for a batch, grouped into requests, and the changes refused up front."""
        shop = self.shop()
        failed: dict[int, str] = {}
        states = self._states(changes)
        prices: dict[str, dict[str, Any]] = {}  # variant GID -> {"price": i, "sale_price": i}
        barcodes: dict[str, int] = {}
        content: dict[str, dict[str, list[int]]] = {}  # product GID -> input key -> indices
        quantities: list[tuple[int, dict[str, Any]]] = []
        for index, change in enumerate(changes):
            problem = self._unsupported(change)
            state = None
            if problem is None:
                state, problem = states[index]
            if problem is not None or state is None:
                failed[index] = problem or "unknown variant"
                continue
            field = Field(change.field or "")
            if field in (Field.PRICE, Field.SALE_PRICE):
                problem = _money_problem(change, shop.currency)
                if problem is None:
                    prices.setdefault(state.variant_id, {})[field.value] = index
            elif field is Field.GTIN:
                barcodes[state.variant_id] = index
            elif field in _PRODUCT_INPUT:
                if field is Field.TITLE and not str(change.after or "").strip():
                    problem = "a Shopify product must have a title"
                else:
                    key = _PRODUCT_INPUT[field]
                    content.setdefault(state.product_id, {}).setdefault(key, []).append(index)
            elif field is Field.STOCK:
                row, problem = self._quantity(change, state, shop)
                if row is not None:
                    quantities.append((index, row))
            if problem is not None:
                failed[index] = problem
        mutations = self._variant_mutations(changes, states, prices, barcodes, failed)
        mutations += self._product_mutations(changes, content, failed)
        mutations += self._inventory_mutations(quantities, run)
        budget = min(MAX_QUERY_COST, int(self.client.bucket.maximum or MAX_QUERY_COST))
        return records.split_by_cost(mutations, budget), failed

    def _states(self, changes: Sequence[Change]) -> list[tuple[VariantState | None, str | None]]:
        """Each change's variant (from the current() that preceded, else read now)."""
        known = [self._seen.get(c.ids.get("variant_id", "")) for c in changes]
        missing = [c for c, state in zip(changes, known, strict=True) if state is None]
        by_gid, by_sku = self._lookup(missing) if missing else ({}, {})
        found: list[tuple[VariantState | None, str | None]] = []
        for change, state in zip(changes, known, strict=True):
            if state is not None:
                found.append((state, None))
                continue
            node, problem = self._node_for(change, by_gid, by_sku)
            found.append((records.state_of(node) if node else None, problem))
        return found

    def _unsupported(self, change: Change) -> str | None:
        if change.op is not Op.UPDATE:
            return (
                f"the shopify connector does not {change.op.value} products; "
                "do it in Shopify (or leave push.create/push.delete off)"
            )
        if change.field not in {f.value for f in _FIELDS}:
            return f"the shopify connector cannot write {change.field}"
        return None

    def _quantity(
        self, change: Change, state: VariantState, shop: Shop
    ) -> tuple[dict[str, Any] | None, str | None]:
        location = shop.gid_of(change.location or "")
        if location is None:
            known = ", ".join(loc.as_name for loc in shop.locations) or "none"
            return (
                None,
                f"stock location {change.location!r} is not a mapped Shopify location ({known})",
            )
        if not state.tracked or state.item_id is None:
            return None, "Shopify does not track this variant's inventory (enable 'Track quantity')"
        try:
            quantity = int(change.after)
        except (TypeError, ValueError):
            return None, f"stock must be a whole number, not {change.after!r}"
        row: dict[str, Any] = {
            "inventoryItemId": state.item_id,
            "locationId": location,
            "quantity": quantity,
        }
        before = None if change.before is None else int(change.before)
        if self._new_inventory_api():
            row["changeFromQuantity"] = before
        elif before is not None:
            row["compareQuantity"] = before
        return row, None

    def _new_inventory_api(self) -> bool:
        version = self.options.api_version
        return version == "unstable" or version >= IDEMPOTENT_FROM

    def _variant_mutations(
        self,
        changes: Sequence[Change],
        states: list[tuple[VariantState | None, str | None]],
        prices: dict[str, dict[str, Any]],
        barcodes: dict[str, int],
        failed: dict[int, str],
    ) -> list[Mutation]:
        """``productVariantsBulkUpdate`` per product: prices in the sale model, barcodes."""
        variant_state = {s.variant_id: s for s, _ in states if s is not None}
        per_product: dict[str, list[tuple[dict[str, Any], list[int]]]] = {}
        for variant in dict.fromkeys([*prices, *barcodes]):
            state = variant_state[variant]
            spec: dict[str, Any] = {"id": variant}
            carried: list[int] = []
            wanted = prices.get(variant, {})
            if wanted:
                # The sale model needs both amounts: the one not changed is the current one.
                regular, sale = records.regular_and_sale(state, self.shop().currency)
                for name, index in wanted.items():
                    value = json_money(changes[index].after)
                    if name == Field.PRICE.value:
                        regular = value
                    else:
                        sale = value
                    carried.append(index)
                if regular is None:
                    for index in carried:
                        failed[index] = "the variant has no regular price to put the sale under"
                    carried = []
                else:
                    spec.update(records.sale_prices(regular, sale))
            if variant in barcodes:
                index = barcodes[variant]
                spec["barcode"] = changes[index].after or None
                carried.append(index)
            if carried:
                per_product.setdefault(state.product_id, []).append((spec, carried))
        mutations = []
        for number, (product, variants) in enumerate(per_product.items()):
            for start in range(0, len(variants), MAX_PAGE):
                part = variants[start : start + MAX_PAGE]
                mutations.append(
                    Mutation(
                        alias=f"v{number}_{start}" if start else f"v{number}",
                        field="productVariantsBulkUpdate",
                        arguments=[
                            ("productId", "ID!", product),
                            ("variants", "[ProductVariantsBulkInput!]!", [s for s, _ in part]),
                        ],
                        elements=[indices for _, indices in part],
                        literals="allowPartialUpdates: true",
                    )
                )
        return mutations

    def _product_mutations(
        self,
        changes: Sequence[Change],
        content: dict[str, dict[str, list[int]]],
        failed: dict[int, str],
    ) -> list[Mutation]:
        """``productUpdate`` per product; variants asking different values of one product field
        cannot all be right, so none of them is written."""
        mutations = []
        for number, (product, wanted) in enumerate(content.items()):
            spec: dict[str, Any] = {"id": product}
            carried: list[int] = []
            for key, indices in wanted.items():
                values = {json.dumps(changes[i].after) for i in indices}
                if len(values) > 1:
                    skus = ", ".join(sorted({changes[i].sku for i in indices}))
                    for i in indices:
                        failed[i] = (
                            f"variants {skus} share one Shopify product but are to get different "
                            f"{changes[i].field} values; make them equal in canonical"
                        )
                    continue
                value = changes[indices[0]].after
                if key == "descriptionHtml":
                    value = write_html(value)
                spec[key] = value if value is not None else ""
                carried += indices
            if carried:
                mutations.append(
                    Mutation(
                        alias=f"p{number}",
                        field="productUpdate",
                        arguments=[("product", "ProductUpdateInput!", spec)],
                        elements=[carried],
                    )
                )
        return mutations

    def _inventory_mutations(
        self, quantities: list[tuple[int, dict[str, Any]]], run: str
    ) -> list[Mutation]:
        """``inventorySetQuantities``: 250 quantities per call, compare-and-set, keyed."""
        mutations = []
        for start in range(0, len(quantities), MAX_PAGE):
            part = quantities[start : start + MAX_PAGE]
            rows = [row for _, row in part]
            payload = {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"gid://omnisync/Push/{run}",
                "quantities": rows,
            }
            key = None
            if self._new_inventory_api():
                key = str(
                    uuid.uuid5(
                        _KEY_NAMESPACE, f"{run}:{self.name}:{json.dumps(rows, sort_keys=True)}"
                    )
                )
            mutations.append(
                Mutation(
                    alias=f"s{start // MAX_PAGE}",
                    field="inventorySetQuantities",
                    arguments=[("input", "InventorySetQuantitiesInput!", payload)],
                    elements=[[index] for index, _ in part],
                    idempotency_key=key,
                )
            )
        return mutations

    def _send(
        self, batch: list[Mutation], failed: dict[int, str], stale: set[int]
    ) -> list[Mutation]:
        """Send one request; record per-change failures. Returns inventory mutations to send
        again without the quantities Shopify rejected."""
        query, variables = records.document(batch)
        data = self.client.execute(
            query,
            variables,
            operation="OmnisyncWrite",
            cost=records.MUTATION_COST * len(batch),
            shape=f"OmnisyncWrite:{len(batch)}",
        )
        again: list[Mutation] = []
        for mutation in batch:
            payload = data.get(mutation.alias) or {}
            errors = payload.get("userErrors") or []
            if not errors:
                continue
            blamed: dict[int, str] = {}
            general: list[str] = []
            for error in errors:
                element = _element(error.get("field"))
                message = _message(error)
                if element is not None and element < len(mutation.elements):
                    blamed.setdefault(element, message)
                    if str(error.get("code") or "").endswith("_STALE"):
                        stale.update(mutation.elements[element])
                else:
                    general.append(message)
            if general or mutation.field == "productUpdate":
                message = "; ".join(general) or "; ".join(blamed.values())
                for index in mutation.changes:
                    failed.setdefault(index, message)
                continue
            for element, message in blamed.items():
                for index in mutation.elements[element]:
                    failed.setdefault(index, message)
            if mutation.field == "inventorySetQuantities":
                rest = [i for i in range(len(mutation.elements)) if i not in blamed]
                if rest:
                    again.append(_without(mutation, rest))
        return again

    def _forgive_stale(
        self, changes: Sequence[Change], failed: dict[int, str], stale: set[int]
    ) -> None:
        """A compare-and-set refused because the quantity already is the target (a resend of
        a request whose answer was lost, on API versions without idempotency keys) succeeded."""
        recheck = [i for i in stale if i in failed]
        if not recheck:
            return
        now = self.current([changes[i] for i in recheck])
        for i in recheck:
            change = changes[i]
            if same(Field.STOCK.value, now.get(change.key), change.after):
                del failed[i]


def _merged(
    shop: Shop, futures: Sequence[Future[dict[str, tuple[int, str]]]]
) -> dict[str, dict[str, tuple[int, str]]]:
    return {loc.gid: future.result() for loc, future in zip(shop.locations, futures, strict=True)}


def _number(gid: str) -> str | None:
    match = re.search(r"/(\d+)(?:\?.*)?$", gid or "")
    return match.group(1) if match else None


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _earlier(mark: str, seconds: int) -> str:
    """``mark`` (Shopify's ``2026-01-02T03:04:05Z``) moved back by ``seconds``."""
    try:
        moment = datetime.fromisoformat(mark.replace("Z", "+00:00"))
    except ValueError:
        return mark
    return (moment - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money_problem(change: Change, currency: str) -> str | None:
    """Why a price change cannot be sent (a negative amount is Shopify's to refuse)."""
    if change.after is None:
        return None if change.field == Field.SALE_PRICE.value else "a Shopify variant needs a price"
    try:
        money = json_money(change.after)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return f"not a price: {change.after!r}"
    if money is not None and money.currency != currency:
        return f"the shop's currency is {currency}; the plan gives {money.currency}"
    return None


def _element(path: Any) -> int | None:
    """The input element a userError's ``field`` points at (``["variants", "3", "price"]``)."""
    if isinstance(path, list):
        for part in path:
            if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
                return int(part)
    return None


def _message(error: dict[str, Any]) -> str:
    message = secrets.mask(str(error.get("message") or "rejected by Shopify"))
    code = error.get("code")
    return f"{message} ({code})" if code else message


def _without(mutation: Mutation, keep: list[int]) -> Mutation:
    """An inventory mutation carrying only the elements ``keep``, with its own key."""
    name, type_, payload = mutation.arguments[0]
    rows = [payload["quantities"][i] for i in keep]
    key = None
    if mutation.idempotency_key is not None:
        key = str(
            uuid.uuid5(
                _KEY_NAMESPACE, f"{mutation.idempotency_key}:{json.dumps(rows, sort_keys=True)}"
            )
        )
    return Mutation(
        alias=mutation.alias,
        field=mutation.field,
        arguments=[(name, type_, {**payload, "quantities": rows})],
        elements=[mutation.elements[i] for i in keep],
        idempotency_key=key,
    )
