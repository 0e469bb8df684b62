"""Magento 2 / Adobe Commerce through its REST API: ``connector: magento2``.

::

    connector: magento2
    options:
      url: https://shop.example.com        # the store's base URL (``/rest`` is added)
      token: ${MAGENTO_TOKEN}              # an integration's access token (bearer), or:
      # username: omnisync                 # an admin user, traded for 4-hour admin tokens
      # password: ${MAGENTO_PASSWORD}
      store_code: default                  # names and descriptions of this store view
      write_scope: global                  # or store_view: where writes land
      gtin_attribute: ean                  # the custom attribute holding GTINs
      msi: true                            # stock per source (false: the legacy single stock)
      # currency: EUR                      # default: the base currency (/V1/directory/currency)
      # timezone: Europe/Berlin            # default: the store view's (/V1/store/storeConfigs)
      # locations: {default: lager}        # source_code → omnisync location (default: all)
      # page_size: 300                     # products per page (300: the most with input limits on)
      # batch_size: 200                    # products per bulk request, source items per save

**Reading.** ``GET /rest/{store_code}/V1/products`` pages through the catalogue sorted by
``entity_id`` (``searchCriteria`` ``pageSize``/``currentPage``; the first page's
``total_count`` says how many follow), ``fields`` trimming each answer to what a record needs.
With MSI, the source items (``GET /V1/inventory/source-items``) are listed beside the products;
the store's base currency, its time zone and its sources are looked up alongside the first
pages. All of these requests share one pool of ``concurrency`` threads: a page's follow-ups are
queued as soon as its first page has told the total, and answers are decoded as they arrive.
A configurable product is a container: its children are the records, linked to it by
``extension_attributes.configurable_product_links`` (or ``/V1/configurable-products/{sku}/
children`` where the listing lacks them). See :mod:`.records` for the fields.

**Incremental pulls** (with a state store): products whose ``updated_at`` is at or after the
newest one seen, and every cached record whose stock or parent changed. Magento changes source
items (and the legacy stock item) without touching a product's ``updated_at``, and linking a
child to a configurable touches only the configurable, so the stock (source items; legacy: the
products' ``stock_item`` alone) and the configurables' links are listed in full each time,
both light next to the products. A full pull every ``full_every`` seconds drops deleted
products.

**Targeted reads** (``omnisync watch``): ``read_skus`` searches ``sku in (...)``,
``page_size`` SKUs a request, with their source items and the parent links (the configurables'
links, kept for :data:`LINKS_TTL` seconds); ``find_skus`` resolves product and parent ids.

**Writing** (:mod:`.bulk`): product changes are one ``{"product": {...}}`` body per product in
``PUT /rest/all/async/bulk/V1/products/bySku`` (``write_scope: store_view``:
``/rest/{store_code}/...``), ``batch_size`` bodies a bulk; each bulk is polled until its
operations are done, and a failed operation fails that product's changes with Magento's
message. MSI stock goes to ``POST /V1/inventory/source-items`` in batches of ``batch_size``
items (all-or-nothing: a rejected batch is halved until the rejected items are alone). After
a bulk the written products are read again from the store view: a value that does not show
fails with what shadows it (a store view's own value over the global one).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, StringConstraints, field_validator, model_validator

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError, InputError
from omnisync.models import Change, Entity, Field, Op, Record
from omnisync.sdk.connector import Capabilities, map_locations
from omnisync.sdk.http import HttpClient, HttpConnector, HttpOptions
from omnisync.sdk.incremental import incremental_read
from omnisync.sdk.values import current_value, field_value, json_to_record, same
from omnisync.sdk.write import BatchWriter, Prepared

from . import records
from .bulk import BulkSender
from .client import (
    Criteria,
    Filter,
    Listing,
    MagentoClient,
    messages,
    one_of,
    parse_json,
    sku_path,
)
from .records import Catalogue, Shop

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
#: How long the configurables' links stand in for a fresh listing in targeted reads.
LINKS_TTL = 300.0
#: How long products read by current() stand in for a fresh read in write().
REUSE_SECONDS = 5.0
_BY_ID = (("entity_id", "ASC"),)
_BY_SOURCE = (("sku", "ASC"), ("source_code", "ASC"))
#: Fields confirmed by reading the products again after a bulk.
_CONFIRMED = {Field.TITLE, Field.DESCRIPTION, Field.GTIN, Field.PRICE, Field.SALE_PRICE}


class Magento2Options(HttpOptions):
    """Options of the magento2 connector (plus url, timeout, concurrency, retries, ...)."""

    #: An integration's access token, sent as a bearer token. Write it as ${ENV_VAR}.
    token: SecretStr | None = None
    #: An admin user (instead of a token): traded for admin tokens, renewed.
    username: str | None = None
    password: SecretStr | None = None
    #: Seconds an admin token lives (Magento's default: 4 hours).
    token_lifetime: float = PydanticField(default=14400, ge=60)
    #: The store view whose names and descriptions are read (``all``: the global values).
    store_code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")] = "default"
    #: ``global`` writes global values (``/rest/all``); ``store_view`` the store view's own.
    write_scope: Literal["global", "store_view"] = "global"
    #: ISO 4217 code of the store's base currency; default: read from the store.
    currency: str | None = None
    #: IANA zone sale dates are in; default: the store view's configured time zone.
    timezone: str | None = None
    #: The custom attribute holding GTINs (Magento has none of its own): ``ean``, ``gtin``.
    gtin_attribute: str | None = None
    #: Stock per source (Multi-Source Inventory); false: the legacy single stock item.
    msi: bool = True
    #: MSI source (code or name) → omnisync location; empty: every source, by code.
    locations: dict[str, str] = PydanticField(default_factory=dict)
    #: Products (and source items) per page.
    page_size: int = PydanticField(default=300, ge=1, le=10000)
    #: Products per bulk request and source items per save.
    batch_size: int = PydanticField(default=DEFAULT_BATCH, ge=1, le=5000)
    #: Seconds between full pulls (an incremental pull cannot see deletions).
    full_every: float = PydanticField(default=86400, ge=0)
    #: Seconds before the first status poll of a bulk (then 1.5 times longer each, up to 10).
    bulk_poll: float = PydanticField(default=1.0, gt=0, le=60)
    #: Seconds to wait for a bulk's operations before failing those still open.
    bulk_timeout: float = PydanticField(default=900, gt=0)

    @field_validator("url")
    @classmethod
    def _without_rest(cls, value: str) -> str:
        # Magento's docs write both the store URL and .../rest (or .../rest/V1); take either.
        return re.sub(r"/rest(/[A-Za-z0-9_]+)?(/V1)?$", "", value)

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR)")
        return value.upper() if value else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)"
                ) from None
        return value

    @model_validator(mode="after")
    def _one_login(self) -> Magento2Options:
        if self.token is not None and (self.username or self.password is not None):
            raise ValueError("give either token or username and password, not both")
        if self.token is None and not (self.username and self.password is not None):
            raise ValueError(
                "needs token (an integration's access token) or username and password "
                "(an admin user)"
            )
        return self


class _Capabilities:
    """On the class: what the kind can do. On an instance: its configured batch size."""

    def __get__(
        self, instance: Magento2Connector | None, owner: type | None = None
    ) -> Capabilities:
        batch = instance.options.batch_size if instance is not None else DEFAULT_BATCH
        everything = frozenset(Entity)
        return Capabilities(
            reads=everything, writes=everything, incremental=True, max_batch=batch, targeted=True
        )


@dataclass
class _Bulk:
    """Product bodies for one bulk: per product the change indexes it carries."""

    items: list[tuple[list[int], dict[str, Any]]]


@dataclass
class _Stock:
    """Source items for one save: per item the change index it carries."""

    items: list[tuple[list[int], dict[str, Any]]]


class Magento2Connector(BatchWriter[_Bulk | _Stock], HttpConnector[Magento2Options, MagentoClient]):
    """Simple and configurable products of a Magento 2 store: content, prices, stock."""

    description = "Magento 2 / Adobe Commerce REST: products, MSI stock, async bulk writes"
    Options = Magento2Options
    capabilities = _Capabilities()

    def _init_state(self) -> None:
        self._lookup_locks = {name: threading.Lock() for name in ("_currency", "_zone", "_sources")}
        self._currency: str | None = self.options.currency
        self._zone: ZoneInfo | None = (
            ZoneInfo(self.options.timezone) if self.options.timezone else None
        )
        #: Source code → omnisync location (MSI), once the sources are known.
        self._sources: dict[str, str] | None = None if self.options.msi else {}
        self._links: tuple[float, dict[str, str]] | None = None
        #: Product types read by current(), by SKU, with when: prepare() reuses them a moment.
        self._recent: dict[str, tuple[float, str]] = {}
        self._bulk: BulkSender | None = None
        #: Source item saves sent (benchmarks and tests count them).
        self.source_saves = 0
        store = self.options.store_code
        self.base = f"/rest/{store}/V1"
        scope = "all" if self.options.write_scope == "global" else store
        self.bulk_path = f"/rest/{scope}/async/bulk/V1/products/bySku"

    # ------------------------------------------------------------------ describing

    def describe(self) -> str:
        return (
            f"Magento 2 at {secrets.mask(self.options.url)} (store view {self.options.store_code})"
        )

    def fields(self) -> frozenset[Field]:
        found = {Field.TITLE, Field.DESCRIPTION, Field.PRICE, Field.SALE_PRICE, Field.STOCK}
        if self.options.gtin_attribute:
            found.add(Field.GTIN)
        return frozenset(found)

    # ------------------------------------------------------------------ connecting

    def connect(self, transport: httpx.BaseTransport | None) -> MagentoClient:
        """The authenticated API client; its credentials must not be blank."""
        options = self.options
        token = options.token.get_secret_value().strip() if options.token is not None else None
        password = options.password.get_secret_value() if options.password is not None else None
        # Blank values pass validation, so that a disabled channel whose ${VAR:-} is unset still
        # loads; using them is an error.
        if token == "" or (token is None and not password):
            name = "options.token" if token is not None else "options.password"
            raise ConnectorError(
                f"{name} is empty",
                where=self.name,
                hint="set the environment variable the config names (an integration's access "
                "token: System > Extensions > Integrations)",
            )
        http = HttpClient.from_options(self.name, options, transport=transport)
        return MagentoClient(
            http,
            token=token,
            username=options.username,
            password=password,
            token_lifetime=options.token_lifetime,
        )

    @property
    def api(self) -> MagentoClient:
        return self.client

    @property
    def bulk(self) -> BulkSender:
        if self._bulk is None:
            options = self.options
            self._bulk = BulkSender(
                self.api, self.bulk_path, self.base, options.bulk_poll, options.bulk_timeout
            )
        return self._bulk

    def check(self) -> None:
        """A token, the base currency, the time zone and (MSI) the sources."""
        self.shop()

    # ------------------------------------------------------------------ the store

    def _lookups(self) -> list[Callable[[], None]]:
        """What :meth:`shop` still has to ask the store (each one request), as jobs that may
        run in any thread: a second caller waits for the one asking."""
        readers = (
            ("_currency", self._read_currency),
            ("_zone", self._read_zone),
            ("_sources", self._read_sources),
        )
        return [
            functools.partial(self._look_up, name, reader)
            for name, reader in readers
            if getattr(self, name) is None
        ]

    def _look_up(self, name: str, reader: Callable[[], None]) -> None:
        with self._lookup_locks[name]:
            if getattr(self, name) is None:
                reader()

    def shop(self) -> Shop:
        """The store's base currency, time zone and GTIN attribute (looked up once)."""
        for job in self._lookups():
            job()
        assert self._currency is not None
        assert self._zone is not None
        return Shop(self._currency, self._zone, self.options.gtin_attribute)

    def _read_currency(self) -> None:
        data = self.api.get(f"{self.base}/directory/currency")
        code = str((data or {}).get("base_currency_code") or "").upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ConnectorError(
                f"the store reports the base currency {code or 'nothing'!r}",
                where=self.name,
                hint="set options.currency (e.g. EUR)",
            )
        self._currency = code

    def _read_zone(self) -> None:
        configs = self.api.get(f"{self.base}/store/storeConfigs")
        views = [c for c in configs or () if isinstance(c, dict)]
        code = self.options.store_code
        view = next((c for c in views if c.get("code") == code), None)
        if view is None and code == "all":
            view = next(
                (c for c in views if c.get("code") == "default"), views[0] if views else None
            )
        if view is None:
            known = ", ".join(str(c.get("code")) for c in views) or "none"
            raise ConnectorError(
                f"the store has no store view {code!r}",
                where=self.name,
                hint=f"set options.store_code to one of: {known}",
            )
        try:
            self._zone = ZoneInfo(str(view.get("timezone") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConnectorError(
                f"the store view's time zone {view.get('timezone')!r} is unknown here",
                where=self.name,
                hint="set options.timezone (e.g. Europe/Berlin)",
            ) from None

    def _read_sources(self) -> None:
        found = self.api.search(f"{self.base}/inventory/sources", Criteria())["items"]
        every = {str(s["source_code"]): str(s.get("name") or s["source_code"]) for s in found}
        if self.options.locations:
            mapped = map_locations(
                self.options.locations, every, where=self.name, owner="the store"
            )
        else:
            mapped = {code: code for code in every}
        self._sources = mapped

    @property
    def sources(self) -> dict[str, str]:
        """Source code → omnisync location of the compared MSI sources."""
        self._look_up("_sources", self._read_sources)
        assert self._sources is not None
        return self._sources

    # ------------------------------------------------------------------ paging

    def _products(
        self,
        groups: tuple[tuple[Filter, ...], ...],
        kind: Literal["products", "stock", "links", "types"] = "products",
    ) -> Listing:
        fields = {
            "products": records.PRODUCT_FIELDS,
            "stock": records.STOCK_FIELDS,
            "links": records.LINK_FIELDS,
            "types": records.LINK_FIELDS,
        }[kind]
        if kind == "links":
            groups = (*groups, (Filter("type_id", records.CONFIGURABLE),))
        size = self.options.page_size
        return Listing(kind, f"{self.base}/products", Criteria(groups, size, 1, _BY_ID), fields)

    def _stock(self, groups: tuple[tuple[Filter, ...], ...] = ()) -> Listing:
        """Where the stock comes from: source items (MSI) or the products' stock items."""
        if not self.options.msi:
            return self._products(groups, "stock")
        if self.options.locations:
            groups = (*groups, one_of("source_code", self.sources))
        size = self.options.page_size
        path = f"{self.base}/inventory/source-items"
        return Listing(
            "sources", path, Criteria(groups, size, 1, _BY_SOURCE), records.SOURCE_FIELDS
        )

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Every sellable product, incrementally where a state store allows."""
        return incremental_read(
            self,
            fetch_all=self._pull_all,
            fetch_since=self._pull_since,
            full_every=self.options.full_every,
        )

    def _pull_all(self) -> Iterator[tuple[Record, str | None]]:
        listings = [self._products(())]
        if self.options.msi:
            listings.insert(0, self._stock())
        catalogue = self._collect(listings)
        links = self._links_map(catalogue)
        self._links = (time.monotonic(), links)
        return self._finish(catalogue, links)

    def _pull_since(self, mark: str) -> Iterator[tuple[Record, str | None]]:
        """Products changed since ``mark``, and every cached record whose stock or parent
        changed: stock changes and new links leave a product's ``updated_at`` alone, so the
        stock and the configurables' links are listed in full (both light)."""
        changed = (Filter("updated_at", mark, "gteq"),)
        listings = [self._stock(), self._products((), "links"), self._products((changed,))]
        catalogue = self._collect(listings)
        links = self._links_map(catalogue)
        self._links = (time.monotonic(), links)
        fresh = list(self._finish(catalogue, links))
        yield from fresh
        yield from self._refreshed({r.sku for r, _ in fresh}, catalogue.stock, links)

    def _refreshed(
        self, skip: set[str], stock: Mapping[str, dict[str, int]], links: Mapping[str, str]
    ) -> Iterator[tuple[Record, str | None]]:
        """Cached records (not in ``skip``) whose stock or parent is not what the store shows."""
        store = self.context.store
        assert store is not None  # an incremental pull has one
        for data in store.cache(self.name):
            if data["sku"] in skip:
                continue
            record = json_to_record(data)
            now = stock.get(record.sku)
            parent = links.get(record.ids.get("product_id", ""))
            if now == record.stock and parent == record.ids.get("parent_id"):
                continue
            record.stock = dict(now) if now is not None else None
            record.ids.pop("parent_id", None)
            if parent is not None:
                record.ids["parent_id"] = parent
            yield record, None

    def _collect(self, listings: Sequence[Listing]) -> Catalogue:
        """Page through ``listings`` into a :class:`~.records.Catalogue`."""
        found = Catalogue(msi=self.options.msi)
        shop: Shop | None = None
        for listing, page, items in self.api.gather(listings, self._lookups()):
            origin = f"GET {listing.path} page {page}"
            if listing.kind == "sources":
                found.add_sources(items, self.sources, origin)
            elif listing.kind == "stock":
                found.add_stock(items, origin)
            elif listing.kind == "links":
                found.add_links(items)
            elif listing.kind == "types":
                found.kinds.update((str(p.get("sku")), str(p.get("type_id"))) for p in items)
            else:
                shop = shop or self.shop()
                found.add_products(items, shop, origin)
        return found

    def _finish(
        self, found: Catalogue, links: Mapping[str, str]
    ) -> Iterator[tuple[Record, str | None]]:
        if found.problems:
            raise InputError(found.problems, where=self.name, hint="fix these products in Magento")
        return found.finish(links)

    def _links_map(self, found: Catalogue) -> dict[str, str]:
        """Child id → configurable id, asking ``/children`` for configurables whose listing
        lacked their links."""
        for parent, children in zip(
            found.unlinked, self.api.http.map(self._children, found.unlinked), strict=True
        ):
            found.children[str(parent.get("id"))] = children
        found.unlinked.clear()
        return {child: parent for parent, ids in found.children.items() for child in ids}

    def _children(self, parent: Mapping[str, Any]) -> list[str]:
        path = f"{self.base}/configurable-products/{sku_path(str(parent.get('sku')))}/children"
        return [
            str(child.get("id")) for child in self.api.get(path) or () if isinstance(child, dict)
        ]

    # ------------------------------------------------------------------ targeted reads

    def _by_sku(
        self, skus: Sequence[str], *, with_links: bool, with_stock: bool = True
    ) -> Catalogue:
        """The products (and their stock) of ``skus``: ``sku in (...)``, ``page_size`` SKUs a
        request, all at once; with ``with_links`` the configurables' links as well, unless
        they were listed within :data:`LINKS_TTL` seconds."""
        size = self.options.page_size
        chunks = [list(skus[i : i + size]) for i in range(0, len(skus), size)]
        listings = [self._products((one_of("sku", chunk),)) for chunk in chunks]
        if self.options.msi and with_stock:
            listings += [self._stock((one_of("sku", chunk),)) for chunk in chunks]
        fresh = self._links is not None and time.monotonic() - self._links[0] < LINKS_TTL
        if with_links and not fresh:
            listings.append(self._products((), "links"))
        catalogue = self._collect(listings)
        if with_links:
            if fresh:
                assert self._links is not None
                catalogue.links = self._links[1]
            else:
                catalogue.links = self._links_map(catalogue)
                self._links = (time.monotonic(), catalogue.links)
        return catalogue

    def _records_of(
        self, skus: Collection[str], *, with_links: bool = False, with_stock: bool = True
    ) -> dict[str, Record]:
        """The records of these SKUs, by SKU (Magento's ``in`` ignores case: only exact
        matches count); without ``with_stock``, MSI stock is not read."""
        wanted = sorted({s for s in skus if s.strip()})
        if not wanted:
            return {}
        catalogue = self._by_sku(wanted, with_links=with_links, with_stock=with_stock)
        found = {r.sku: r for r, _ in self._finish(catalogue, catalogue.links)}
        return {sku: found[sku] for sku in wanted if sku in found}

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The records of these SKUs (configurables are not records, as in :meth:`read`)."""
        found = self._records_of(skus, with_links=True)
        return iter(sorted(found.values(), key=lambda r: r.sku))

    def _search_ids(self, ids: Collection[str]) -> list[dict[str, Any]]:
        """Products (id, sku, type and links) by entity id, ``page_size`` ids a request."""
        wanted = sorted({i for i in map(str, ids) if i.isdigit()}, key=int)
        size = self.options.page_size
        chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        path = f"{self.base}/products"

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            criteria = Criteria((one_of("entity_id", chunk),), len(chunk), 1, _BY_ID)
            return self.api.search(path, criteria, records.LINK_FIELDS)["items"]

        return [product for found in self.api.http.map(fetch, chunks) for product in found]

    def find_skus(self, refs: Mapping[str, Collection[str]]) -> set[str]:
        """The SKUs behind product ids (a configurable's id: its children's) and parent ids."""
        skus: set[str] = set()
        parents = {str(v) for v in refs.get("parent_id", ())}
        for product in self._search_ids(refs.get("product_id", ())):
            if str(product.get("type_id")) == records.CONFIGURABLE:
                parents.add(str(product.get("id")))
            elif not records.is_container(product):
                skus.add(str(product.get("sku") or "").strip())
        children: list[str] = []
        for product in self._search_ids(parents):
            if str(product.get("type_id")) == records.CONFIGURABLE:
                links = records.links(product)
                children += links if links is not None else self._children(product)
        for product in self._search_ids(children):
            if not records.is_container(product):
                skus.add(str(product.get("sku") or "").strip())
        skus.discard("")
        return skus

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The current value of each change's target, read by SKU (one request per page)."""
        skus = sorted({c.sku for c in changes})
        catalogue = self._by_sku(skus, with_links=False) if skus else Catalogue(self.options.msi)
        found = {r.sku: r for r, _ in self._finish(catalogue, {})}
        # The push pipeline writes right after this read: what it found is what prepare()
        # checks the changes against, without reading a second time.
        now = time.monotonic()
        self._recent = {sku: (now, kind) for sku, kind in catalogue.kinds.items()}
        return {c.key: current_value(c, found.get(c.sku)) for c in changes}

    # ------------------------------------------------------------------ writing

    def _kinds(self, skus: Sequence[str]) -> dict[str, str]:
        """The product type of each SKU Magento has (reusing what current() just read)."""
        fresh = time.monotonic() - REUSE_SECONDS
        kinds = {
            s: self._recent[s][1] for s in skus if s in self._recent and self._recent[s][0] >= fresh
        }
        rest = [s for s in skus if s not in kinds]
        if rest:
            listings = [
                self._products((one_of("sku", rest[i : i + self.options.page_size]),), "types")
                for i in range(0, len(rest), self.options.page_size)
            ]
            kinds.update(self._collect(listings).kinds)
        return kinds

    def prepare(self, changes: Sequence[Change]) -> Prepared[_Bulk | _Stock]:
        """Bulks of ``batch_size`` product bodies and saves of ``batch_size`` source items;
        the changes that cannot be sent, with why."""
        refused: dict[int, str] = {}
        groups: dict[str, list[int]] = {}
        for index, change in enumerate(changes):
            if change.op is Op.UPDATE and change.field is not None:
                groups.setdefault(change.sku, []).append(index)
            else:
                refused[index] = (
                    f"the magento2 connector does not {change.op.value} products; do it in "
                    "the Magento admin (or an import)"
                )
        kinds = self._kinds(sorted(groups)) if groups else {}
        shop = self.shop() if groups else None
        bodies: list[tuple[list[int], dict[str, Any]]] = []
        items: list[tuple[list[int], dict[str, Any]]] = []
        msi = self.options.msi
        for sku, indexes in groups.items():
            kind = kinds.get(sku)
            if kind is None or kind in records.CONTAINERS:
                reason = (
                    f"no product with SKU {sku!r} in Magento"
                    if kind is None
                    else f"{sku} is a {kind} product; write its children (the simple products)"
                )
                refused.update(dict.fromkeys(indexes, reason))
                continue
            assert shop is not None
            rest = []
            for index in indexes:
                if msi and changes[index].field == Field.STOCK.value:
                    try:
                        items.append(([index], self._source_item(changes[index])))
                    except ChangeRejected as exc:
                        refused[index] = str(exc)
                else:
                    rest.append(index)
            if not rest:
                continue
            body, rejected = records.product_payload(sku, [changes[i] for i in rest], shop, msi=msi)
            refused.update((rest[n], message) for n, message in rejected.items())
            if body is not None:
                bodies.append(([i for n, i in enumerate(rest) if n not in rejected], body))
        size = self.options.batch_size
        requests: list[_Bulk | _Stock] = [
            _Bulk(bodies[i : i + size]) for i in range(0, len(bodies), size)
        ]
        requests += [_Stock(items[i : i + size]) for i in range(0, len(items), size)]
        return Prepared(requests, refused)

    def _source_item(self, change: Change) -> dict[str, Any]:
        """The source item a stock change sets (its location names a compared source)."""
        quantity = records.stock_quantity(change)
        codes = [code for code, location in self.sources.items() if location == change.location]
        if change.location is None and len(self.sources) == 1:
            codes = list(self.sources)
        if len(codes) != 1:
            known = ", ".join(sorted(set(self.sources.values()))) or "none"
            raise ChangeRejected(
                f"location {change.location!r} is not one source of the store "
                f"(compared locations: {known}; see options.locations)"
            )
        return records.source_item(change.sku, codes[0], quantity)

    def covers(self, request: _Bulk | _Stock) -> list[int]:
        return [index for indexes, _ in request.items for index in indexes]

    def show(self, request: _Bulk | _Stock) -> list[Any]:
        if isinstance(request, _Bulk):
            return [
                {"method": "PUT", "path": self.bulk_path, "body": [b for _, b in request.items]}
            ]
        body = {"sourceItems": [item for _, item in request.items]}
        return [{"method": "POST", "path": f"{self.base}/inventory/source-items", "body": body}]

    def send(self, request: _Bulk | _Stock) -> dict[int, str | None]:
        """One bulk (waited for) or one source item save; per change None or Magento's message."""
        if isinstance(request, _Bulk):
            outcome = self.bulk.send([body for _, body in request.items])
            return {
                i: outcome.get(n) for n, (indexes, _) in enumerate(request.items) for i in indexes
            }
        failed = self._save_sources(request.items)
        return {index: failed.get(index) for index in self.covers(request)}

    def _save_sources(self, items: Sequence[tuple[list[int], dict[str, Any]]]) -> dict[int, str]:
        """Save source items; a rejected save (all or nothing) is halved until the rejected
        items are alone. The failures by change index."""
        path = f"{self.base}/inventory/source-items"
        self.source_saves += 1
        body = {"sourceItems": [item for _, item in items]}
        response = self.api.request("POST", path, json=body, ok=(400,))
        if response.status_code != 400:
            return {}
        if len(items) > 1:
            half = len(items) // 2
            return self._save_sources(items[:half]) | self._save_sources(items[half:])
        text = "; ".join(messages(parse_json(response, f"{self.name}: POST {path}"))) or "rejected"
        return dict.fromkeys(items[0][0], secrets.mask(f"Magento rejected the source item: {text}"))

    def settle(self, changes: Sequence[Change], failed: dict[int, str]) -> None:
        """Read the products of completed bulk operations again: a value the store view does
        not show fails with what shadows it."""
        self._recent = {}  # what was read before this write is not the state after it
        confirmed = {f.value for f in _CONFIRMED} | (set() if self.options.msi else {"stock"})
        sent = [i for i, c in enumerate(changes) if i not in failed and c.field in confirmed]
        if not sent:
            return
        # MSI stock is saved synchronously and not confirmed: the products alone are read.
        found = self._records_of({changes[i].sku for i in sent}, with_stock=False)
        for index in sent:
            change = changes[index]
            assert change.field is not None
            now = field_value(found.get(change.sku), change.field, change.location)
            if not same(change.field, now, change.after):
                failed[index] = self._unconfirmed(now)

    def _unconfirmed(self, now: Any) -> str:
        view = self.options.store_code
        if self.options.write_scope == "global" and view != "all":
            return (
                f"Magento completed the update, but store view {view!r} still shows {now!r}: "
                "a value of the store view (or its website) shadows the global one; set "
                "options.write_scope: store_view to write it there, or tick 'Use Default "
                "Value' for that field in the store view's product page"
            )
        return f"Magento completed the update, but store view {view!r} shows {now!r}"
