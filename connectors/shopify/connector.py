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

Targeted reads (``omnisync watch``): ``read_skus`` searches ``productVariants`` by ``sku:``
(with each variant's stock at every location), and ``find_skus`` turns a webhook's GIDs into
SKUs: inventory items and variants through ``nodes(ids:)``, products through their variants.

Writing (``push.fields``; the mutations are built in :mod:`.mutations`): ``price``/
``sale_price`` and ``gtin`` with ``productVariantsBulkUpdate`` (one call per product,
``allowPartialUpdates`` so that a rejected variant does not block the others),
``title``/``description``/``brand`` with ``productUpdate`` (product fields: every variant of
the product shares them), ``stock`` with ``inventorySetQuantities`` (``available``, reason
``correction``, compare-and-set against the plan's *from* value, an ``@idempotent`` key from
API version 2026-01: a uuid5 of the push run, the channel and the quantities, so the same on a
retry and on ``apply --resume``). A batch goes out as one request carrying these mutations as
aliased fields (split only when it would exceed 1000 points). ``userErrors`` become per-change
failures with Shopify's message; an inventory mutation is all-or-nothing at Shopify, so the
quantities it did not reject are sent again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, StringConstraints, field_validator

from omnisync import secrets
from omnisync.models import Change, Entity, Field, Record
from omnisync.sdk.connector import Capabilities
from omnisync.sdk.http import HttpConnector, HttpOptions
from omnisync.sdk.incremental import incremental_read
from omnisync.sdk.values import current_value, same
from omnisync.sdk.write import BatchWriter, Prepared

from . import mutations, records
from .client import MAX_PAGE, ShopifyClient
from .mutations import Mutation
from .records import Shop, ShopLocation, VariantState

log = logging.getLogger(__name__)

#: Seconds an incremental pull reaches back before its mark (whole-second timestamps,
#: updates landing while the previous pull ran).
OVERLAP = 60
#: API version from which inventorySetQuantities takes ``changeFromQuantity`` and ``@idempotent``.
IDEMPOTENT_FROM = "2026-01"


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
        return Capabilities(
            reads=everything, writes=everything, incremental=True, max_batch=batch, targeted=True
        )


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
        return records.FIELDS

    def check(self) -> None:
        """Ask for the shop's currency and locations: token, scopes, URL, version, mapping."""
        self.shop()

    def shop(self) -> Shop:
        """The shop's name, currency and mapped locations (asked once per connector)."""
        with self._shop_lock:
            if self._shop_info is None:
                options = self.options
                self._shop_info = records.to_shop(
                    self.client.shop_pages(), options.locations, options.currency, self.name
                )
            return self._shop_info

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
        pages = self.client.variant_pages(self.options.page_size)
        workers = min(max(1, self.options.concurrency - 1), max(1, len(shop.locations)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"omnisync-{self.name}")
        joined = records.joined_record
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
                    yield from (joined(n, o, stock, shop) for n, o in waiting)
                    waiting.clear()
                for node in page["nodes"]:
                    if stock is None:
                        waiting.append((node, origin))
                    else:
                        yield joined(node, origin, stock, shop)
            if stock is None:
                stock = _merged(shop, futures)
                yield from (joined(n, o, stock, shop) for n, o in waiting)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _stock_at(
        self, location: ShopLocation, stop: threading.Event
    ) -> dict[str, tuple[int, str]]:
        """``{inventory item GID: (available, updatedAt)}`` at one location."""
        found: dict[str, tuple[int, str]] = {}
        for page in self.client.level_pages(location.gid, self.options.page_size, stop):
            for level in page["nodes"]:
                quantity = records.available_of(level)
                if quantity is not None:
                    found[level["item"]["id"]] = (quantity, level.get("updatedAt") or "")
        return found

    def _fetch_since(self, mark: str) -> Iterator[tuple[Record, str | None]]:
        """Variants of products changed since ``mark`` and variants whose stock changed."""
        shop = self.shop()
        search = f"updated_at:>'{_earlier(mark, OVERLAP)}'"
        wanted = self.options.page_size
        products = self.client.changed_products(search, wanted)
        terms = [f"product_id:{records.gid_number(p)}" for p in products]
        variants: set[str] = set()
        for loc in shop.locations:
            variants.update(self.client.changed_variants(loc.gid, search, wanted))
        terms += [f"id:{records.gid_number(v)}" for v in sorted(variants)]
        seen: set[str] = set()
        for node in self._targets(terms):
            if node["id"] in seen:  # a changed product whose stock changed too
                continue
            seen.add(node["id"])
            yield records.target_record(node, shop, "changed since " + mark)

    def _targets(self, terms: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Variant nodes (with stock at every mapped location) matching any term."""
        if not terms:
            return
        # An item's levels are listed across every location of the shop: asking for as many
        # as there are mapped ones could leave a mapped one out.
        shop = self.shop()
        levels = max(1, min(MAX_PAGE, shop.location_count or len(shop.locations)))
        yield from self.client.targets(terms, levels, self.options.page_size)

    # ------------------------------------------------------------------ targeted reads

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The variants with these SKUs, their stock inside (``productVariants`` searched by
        ``sku:``, 50 terms a query, the queries in parallel)."""
        wanted = {sku for sku in skus if sku.strip()}
        if not wanted:
            return iter(())
        shop = self.shop()
        found: dict[str, Record] = {}
        for node in self._targets([records.sku_term(sku) for sku in sorted(wanted)]):
            record, _ = records.target_record(node, shop, "productVariants by SKU")
            # Shopify's search is not an exact match everywhere: keep only the SKUs asked for.
            if record.sku in wanted:
                found[node["id"]] = record
        return iter(sorted(found.values(), key=lambda r: (r.sku, r.ids["variant_id"])))

    def find_skus(self, refs: Mapping[str, Collection[str]]) -> set[str]:
        """The SKUs behind a webhook's ids: variants and inventory items by GID
        (``nodes(ids:)``), products by their variants (``productVariants`` searched by
        ``product_id:``). Ids of other kinds, and GIDs the shop does not know, name nothing."""
        variants = records.gids("ProductVariant", refs.get("variant_id", ()))
        items = records.gids("InventoryItem", refs.get("inventory_item_id", ()))
        products = records.gids("Product", refs.get("product_id", ()))
        skus: set[str] = set()
        for node in self.client.nodes(variants + items):
            if node.get("__typename") == "InventoryItem":
                node = node.get("variant") or {}
            skus.add((node.get("sku") or "").strip())
        terms = [f"product_id:{records.gid_number(gid)}" for gid in products]
        skus.update(sku.strip() for sku in self.client.skus(terms, self.options.page_size))
        skus.discard("")
        return skus

    # ------------------------------------------------------------------ writing

    def _lookup(self, changes: Sequence[Change]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """The changes' variants as ``TARGETS`` nodes, by GID and by SKU (ids where the change
        has them, else its SKU)."""
        by_gid: dict[str, Any] = {}
        by_sku: dict[str, list[Any]] = {}
        for node in self._targets(records.lookup_terms(changes)):
            if node["id"] in by_gid:
                continue
            by_gid[node["id"]] = node
            by_sku.setdefault((node.get("sku") or "").strip(), []).append(node)
        return by_gid, by_sku

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The targets' current values, read by variant id (or SKU) only."""
        shop = self.shop()
        by_gid, by_sku = self._lookup(changes)
        self._seen.clear()
        result: dict[str, Any] = {}
        for change in changes:
            node, _ = records.node_for(change, by_gid, by_sku)
            record = records.target_record(node, shop, "current")[0] if node else None
            if node is not None:
                self._seen[node["id"]] = records.state_of(node)
            result[change.key] = current_value(change, record)
        return result

    def prepare(self, changes: Sequence[Change]) -> Prepared[list[Mutation]]:
        """The mutations for a batch, grouped into requests, and the changes refused up front."""
        requests, refused = mutations.requests_for(
            changes,
            self._states(changes),
            self.shop(),
            run=self._run(),
            channel=self.name,
            keyed=self._new_inventory_api(),
            budget=self.client.write_budget(),
        )
        self._stale: set[int] = set()
        return Prepared(requests, refused)

    def covers(self, request: list[Mutation]) -> list[int]:
        return [index for mutation in request for index in mutation.changes]

    def show(self, request: list[Mutation]) -> list[Any]:
        query, variables = mutations.document(request)
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

    def _new_inventory_api(self) -> bool:
        version = self.options.api_version
        return version == "unstable" or version >= IDEMPOTENT_FROM

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
            node, problem = records.node_for(change, by_gid, by_sku)
            found.append((records.state_of(node) if node else None, problem))
        return found

    def _send(
        self, batch: list[Mutation], failed: dict[int, str], stale: set[int]
    ) -> list[Mutation]:
        """Send one request; record per-change failures. Returns inventory mutations to send
        again without the quantities Shopify rejected."""
        query, variables = mutations.document(batch)
        data = self.client.mutate(query, variables, len(batch))
        return mutations.failures(batch, data, failed, stale)

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


def _earlier(mark: str, seconds: int) -> str:
    """``mark`` (Shopify's ``2026-01-02T03:04:05Z``) moved back by ``seconds``."""
    try:
        moment = datetime.fromisoformat(mark.replace("Z", "+00:00"))
    except ValueError:
        return mark
    return (moment - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
