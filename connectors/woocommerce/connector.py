"""A WooCommerce shop through its REST API v3: ``connector: woocommerce``.

::

    connector: woocommerce
    options:
      url: https://shop.example.com          # the shop; /wp-json/wc/v3 is appended
      consumer_key: ${WOO_CONSUMER_KEY}      # ck_... (a REST API key; masked everywhere)
      consumer_secret: ${WOO_CONSUMER_SECRET}
      currency: EUR                          # default: the store's woocommerce_currency
      concurrency: 8                         # pages in flight while pulling
      full_every: 86400                      # seconds between full pulls (deletions)

Reads every product; a simple product (or any type that is not a container) is a record, a
variable product's variations are records (price and stock live there) with the parent's name
as title, grouped products are skipped. Pages are fetched 100 at a time, page 1 first and the
rest in parallel; variable products' variations are fetched per parent, in parallel too. With
the state store open, later pulls fetch only what changed since the newest
``date_modified_gmt`` seen (``modified_after`` + ``dates_are_gmt``) and a full pull runs every
``full_every`` seconds, which is what notices deletions.

Writes go through ``POST /products/batch`` and ``POST /products/{id}/variations/batch``, at
most 100 items per request (WooCommerce answers 413 above). Every item of the HTTP 200 reply
is checked: an item WooCommerce rejected fails with its message and code, the others count as
applied. A variation's title is its parent's name, so a title change goes to the parent.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field as PydanticField
from pydantic import SecretStr, field_validator

from omnisync import secrets
from omnisync.errors import ChangeRejected, ConnectorError
from omnisync.models import Change, Entity, Field, Op, Record
from omnisync.sdk.connector import Capabilities
from omnisync.sdk.http import HttpConnector, HttpError, HttpOptions
from omnisync.sdk.incremental import incremental_read, stamped
from omnisync.sdk.mapping import ProblemCollector
from omnisync.sdk.values import current_value, modified_time
from omnisync.sdk.write import BatchWriter, Prepared

from .client import WooClient, api_url, item_error
from .records import (
    PRODUCT_FIELDS,
    VARIATION_FIELDS,
    Target,
    create_item,
    format_gmt,
    is_container,
    is_sellable,
    parse_gmt,
    to_record,
    update_fields,
)

log = logging.getLogger(__name__)

#: Objects one batch request may carry (WooCommerce's ``woocommerce_rest_batch_items_limit``).
MAX_BATCH = 100
#: Ids per ``include`` filter and SKUs per ``sku`` filter when re-reading targets.
_INCLUDE_CHUNK = 100
_SKU_CHUNK = 40
#: What a lookup of where SKUs live asks for.
_LOOKUP_FIELDS = ("id", "sku", "type", "parent_id")
#: WordPress keeps modification times to the second and ``modified_after`` is exclusive, so a
#: product saved in the same second as the newest one seen would be missed; look back a little.
_OVERLAP = timedelta(seconds=1)


class WooCommerceOptions(HttpOptions):
    """Options of the woocommerce connector (plus ``timeout``, ``retries``, ``max_wait``,
    ``http2`` of every HTTP connector)."""

    #: The REST API key's consumer key (``ck_...``) and secret (``cs_...``). Both are secrets.
    consumer_key: SecretStr
    consumer_secret: SecretStr
    #: ``basic``: HTTP Basic auth (https). ``query``: key and secret as query parameters, for
    #: servers that strip the Authorization header.
    auth: Literal["basic", "query"] = "basic"
    #: The store currency (ISO 4217); default: read from the shop's general settings.
    currency: str | None = None
    #: Objects per page (WooCommerce allows at most 100).
    per_page: int = PydanticField(default=100, ge=1, le=100)
    #: Pages in flight at once while pulling (measured: bench/woocommerce_pull.py).
    concurrency: int = PydanticField(default=8, ge=1, le=64)
    #: Which products to read: ``any`` (every status but trash), or one status.
    status: Literal["any", "publish", "draft", "pending", "private"] = "any"
    #: Pull only what changed since the last pull (needs the state store).
    incremental: bool = True
    #: Seconds after which the next pull is a full one again (deletions show only then).
    full_every: float = PydanticField(default=86400, gt=0)
    #: Status of products a push creates: ``draft`` lets someone review them first.
    create_status: Literal["draft", "pending", "private", "publish"] = "draft"

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 3 or not value.isalpha():
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR)")
        return value.upper()


@dataclass
class _Item:
    """One object in a batch request and the changes it carries."""

    kind: Literal["create", "update", "delete"]
    payload: Any
    changes: list[int] = field(default_factory=list)


@dataclass
class _Request:
    """One batch request: a path and at most 100 items."""

    path: str
    items: list[_Item]

    def body(self) -> dict[str, list[Any]]:
        body: dict[str, list[Any]] = {}
        for item in self.items:
            body.setdefault(item.kind, []).append(item.payload)
        return body


class WooCommerceConnector(BatchWriter[_Request], HttpConnector[WooCommerceOptions, WooClient]):
    """Reads and writes a WooCommerce shop: products, variations, prices, sales and stock."""

    description = "WooCommerce shop (REST API v3): products and variations, batched writes"
    Options = WooCommerceOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads=frozenset(Entity),
        writes=frozenset(Entity),
        incremental=True,
        max_batch=MAX_BATCH,
        targeted=True,
    )

    # ------------------------------------------------------------------ basics

    def connect(self, transport: httpx.BaseTransport | None) -> WooClient:
        """The API client; its keys must not be blank."""
        # Blank keys pass validation, so that a disabled channel whose ${VAR:-} is unset
        # still loads; using them is an error.
        blank = [
            name
            for name in ("consumer_key", "consumer_secret")
            if not getattr(self.options, name).get_secret_value().strip()
        ]
        if blank:
            raise ConnectorError(
                f"options.{' and options.'.join(blank)} {'is' if len(blank) == 1 else 'are'} empty",
                where=self.name,
                hint="set the environment variables the config names (a WooCommerce REST "
                "API key: WooCommerce → Settings → Advanced → REST API)",
            )
        options = self.options
        return WooClient(
            self.name,
            options,
            key=options.consumer_key.get_secret_value(),
            secret=options.consumer_secret.get_secret_value(),
            auth=options.auth,
            per_page=options.per_page,
            transport=transport,
        )

    @cached_property
    def currency(self) -> str:
        return self.options.currency or self.client.currency()

    def describe(self) -> str:
        return f"WooCommerce {secrets.mask(api_url(self.options.url))}"

    def fields(self) -> frozenset[Field]:
        return frozenset(
            {
                Field.TITLE,
                Field.DESCRIPTION,
                Field.GTIN,
                Field.PRICE,
                Field.SALE_PRICE,
                Field.STOCK,
                Field.AVAILABILITY,
            }
        )

    def check(self) -> None:
        """One product (the key may list products) and the store currency."""
        self.client.get("products", {"per_page": 1, "_fields": "id"})
        _ = self.currency

    # ------------------------------------------------------------------ reading

    def read(self) -> Iterator[Record]:
        """Every sellable product and variation; incremental where the store allows."""
        if not self.options.incremental:
            return (record for record, _ in stamped(self._pull({})))
        return incremental_read(
            self,
            fetch_all=lambda: self._pull({}),
            fetch_since=self._pull_since,
            full_every=self.options.full_every,
        )

    def _pull_since(self, mark: str) -> Iterator[tuple[Record, str | None]]:
        try:
            since = parse_gmt(mark)
        except ValueError:
            since = None
        if since is None:
            return self._pull({})
        return self._pull({"modified_after": format_gmt(since - _OVERLAP), "dates_are_gmt": "true"})

    def _list_params(self, fields: Sequence[str]) -> dict[str, Any]:
        # edit context: raw stored values (view would wrap descriptions in <p> and show a
        # variation without a SKU of its own under its parent's SKU).
        return {
            "context": "edit",
            "orderby": "id",
            "order": "asc",
            "status": self.options.status,
            "_fields": ",".join(fields),
        }

    def _pull(self, filters: dict[str, Any]) -> Iterator[tuple[Record, str | None]]:
        """``(record, date_modified_gmt)`` for every product (matching ``filters``) and every
        variation of the variable ones among them."""
        _ = self.currency  # resolved before the first page, not in a worker thread
        problems = ProblemCollector()
        unkeyed: list[str] = []
        parents: list[dict[str, Any]] = []
        listed = 0
        announced: int | None = None
        for page in self.client.pages("products", {**self._list_params(PRODUCT_FIELDS), **filters}):
            announced = page.total if announced is None else announced
            listed += len(page.items)
            for obj in page.items:
                if is_container(obj):
                    if obj.get("variations") != []:  # [] = a variable product without any
                        parents.append(obj)
                    continue
                if not is_sellable(obj):
                    continue
                target = Target(int(obj["id"]))
                record = self._record(obj, target, obj.get("name"), page.origin, problems, unkeyed)
                if record is not None:
                    yield record, obj.get("date_modified_gmt")
        params = self._list_params(VARIATION_FIELDS)

        def variations(parent: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
            path = f"products/{parent['id']}/variations"
            return [
                (p.origin, v)
                for p in self.client.pages(path, params, parallel=False)
                for v in p.items
            ]

        for parent, found in zip(parents, self.client.http.map(variations, parents), strict=True):
            parent_modified = parent.get("date_modified_gmt")
            for origin, obj in found:
                target = Target(int(parent["id"]), int(obj["id"]))
                record = self._record(obj, target, parent.get("name"), origin, problems, unkeyed)
                if record is not None:
                    # The parent's time too: the next mark then covers the parent itself.
                    modified = max(
                        (t for t in (obj.get("date_modified_gmt"), parent_modified) if t),
                        default=None,
                    )
                    yield record, modified
        if announced is not None and listed != announced:
            log.warning(
                "%s: the shop listed %d products but announced %d; the catalogue changed "
                "during the pull, so a product may have been skipped — check again",
                self.name,
                listed,
                announced,
            )
        if unkeyed:
            log.warning(
                "%s: %d product(s)/variation(s) without a SKU skipped (cannot be compared), "
                "e.g. %s",
                self.name,
                len(unkeyed),
                ", ".join(unkeyed[:5]),
            )
        problems.raise_if_any(
            where=self.name, hint="fix these values in WooCommerce, then check again"
        )

    def _record(
        self,
        obj: dict[str, Any],
        target: Target,
        title: Any,
        origin: str,
        problems: ProblemCollector,
        unkeyed: list[str],
    ) -> Record | None:
        if not str(obj.get("sku") or "").strip():
            kind = "variation" if target.variation_id is not None else "product"
            unkeyed.append(f"{kind} {target.id}")
            return None
        return to_record(
            obj,
            currency=self.currency,
            target=target,
            title=title,
            origin=origin,
            problems=problems,
        )

    # ------------------------------------------------------------------ targeted reads

    def _lookup_skus(self, skus: Sequence[str]) -> dict[str, Target]:
        """Where each SKU lives, by the ``sku`` filter (it finds variations too)."""
        return {sku: target for sku, (target, _) in self._find(skus, _LOOKUP_FIELDS).items()}

    def _find(
        self, skus: Sequence[str], fields: Sequence[str]
    ) -> dict[str, tuple[Target, dict[str, Any]]]:
        """Each SKU's target and object (with ``fields``), by the ``sku`` filter."""
        wanted = sorted(set(skus))
        # A SKU with a comma would be split by the filter: ask for it alone.
        chunks = [[s] for s in wanted if "," in s]
        plain = [s for s in wanted if "," not in s]
        chunks += [plain[i : i + _SKU_CHUNK] for i in range(0, len(plain), _SKU_CHUNK)]
        params = self._list_params(fields)

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            return self.client.items("products", {**params, "sku": ",".join(chunk)})

        found: dict[str, tuple[Target, dict[str, Any]]] = {}
        for objects in self.client.http.map(fetch, chunks):
            for obj in objects:
                sku = str(obj.get("sku") or "")
                if sku not in wanted or sku in found:
                    continue
                # Variations carry no `type` in the REST API; a parent id says what they are.
                if obj.get("parent_id"):
                    found[sku] = (Target(int(obj["parent_id"]), int(obj["id"])), obj)
                else:
                    found[sku] = (Target(int(obj["id"])), obj)
        return found

    def _targets(self, changes: Sequence[Change]) -> dict[int, Target]:
        """The record each change addresses: by its ids, or looked up by SKU."""
        targets: dict[int, Target] = {}
        unknown: dict[int, str] = {}
        for index, change in enumerate(changes):
            if change.op is Op.CREATE:
                continue
            before_ids = change.before.get("ids") if isinstance(change.before, dict) else None
            target = Target.from_ids(change.ids) or Target.from_ids(before_ids)
            if target is not None:
                targets[index] = target
            else:
                unknown[index] = change.sku
        if unknown:
            located = self._lookup_skus(list(unknown.values()))
            for index, sku in unknown.items():
                if sku in located:
                    targets[index] = located[sku]
        return targets

    def _read_targets(self, targets: Sequence[Target]) -> dict[Target, Record]:
        """The records at ``targets``, read by id (``include``), parents included for names."""
        products = sorted({t.product_id for t in targets})
        by_parent: dict[int, set[int]] = {}
        for target in targets:
            if target.variation_id is not None:
                by_parent.setdefault(target.product_id, set()).add(target.variation_id)
        jobs: list[tuple[str, list[int]]] = [
            ("products", products[i : i + _INCLUDE_CHUNK])
            for i in range(0, len(products), _INCLUDE_CHUNK)
        ]
        for parent_id, ids in sorted(by_parent.items()):
            ordered = sorted(ids)
            jobs += [
                (f"products/{parent_id}/variations", ordered[i : i + _INCLUDE_CHUNK])
                for i in range(0, len(ordered), _INCLUDE_CHUNK)
            ]

        def fetch(job: tuple[str, list[int]]) -> list[dict[str, Any]]:
            path, ids = job
            fields = PRODUCT_FIELDS if path == "products" else VARIATION_FIELDS
            params = {**self._list_params(fields), "include": ",".join(map(str, ids))}
            return self.client.items(path, params)

        parents: dict[int, dict[str, Any]] = {}
        variations: dict[Target, dict[str, Any]] = {}
        for (path, _), objects in zip(jobs, self.client.http.map(fetch, jobs), strict=True):
            for obj in objects:
                if path == "products":
                    parents[int(obj["id"])] = obj
                else:
                    variations[Target(int(path.split("/")[1]), int(obj["id"]))] = obj
        problems = ProblemCollector()
        records: dict[Target, Record] = {}
        for target in set(targets):
            parent = parents.get(target.product_id)
            found: dict[str, Any] | None
            if target.variation_id is None:
                found = parent if parent is not None and is_sellable(parent) else None
            else:
                found = variations.get(target)
            if found is None or not str(found.get("sku") or "").strip():
                continue
            record = to_record(
                found,
                currency=self.currency,
                target=target,
                title=(parent or {}).get("name"),
                origin=_origin(target),
                problems=problems,
            )
            if record is not None:
                records[target] = record
        problems.raise_if_any(where=self.name)
        return records

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The records of ``skus`` from one ``sku``-filtered request per 40 SKUs, with every
        field a record needs; a variation's name comes from its parent, read by id in one
        more request when any variation is among them."""
        found = self._find(list(skus), (*PRODUCT_FIELDS, "parent_id"))
        parents = sorted({t.product_id for t, _ in found.values() if t.variation_id is not None})
        names: dict[int, Any] = {}
        if parents:
            params = self._list_params(("id", "name"))

            def fetch(ids: list[int]) -> list[dict[str, Any]]:
                return self.client.items("products", {**params, "include": ",".join(map(str, ids))})

            chunks = [
                parents[i : i + _INCLUDE_CHUNK] for i in range(0, len(parents), _INCLUDE_CHUNK)
            ]
            for objects in self.client.http.map(fetch, chunks):
                names.update((int(obj["id"]), obj.get("name")) for obj in objects)
        problems = ProblemCollector()
        records: list[Record] = []
        for sku, (target, obj) in sorted(found.items()):
            if target.variation_id is None and not is_sellable(obj):
                continue
            record = to_record(
                obj,
                currency=self.currency,
                target=target,
                title=names.get(target.product_id) if target.variation_id else obj.get("name"),
                origin=_origin(target),
                problems=problems,
            )
            if record is not None and record.sku == sku:
                # The record's own time (a full read also counts a variation's parent's).
                record.modified_at = modified_time(obj.get("date_modified_gmt"))
                records.append(record)
        problems.raise_if_any(where=self.name)
        return iter(records)

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        """The current values of the changes' targets, re-read by id (and SKU where a change
        carries no ids)."""
        targets = self._targets(changes)
        creates = {i: c.sku for i, c in enumerate(changes) if c.op is Op.CREATE}
        if creates:  # a create is already applied when its SKU exists
            located = self._lookup_skus(list(creates.values()))
            targets.update({i: located[sku] for i, sku in creates.items() if sku in located})
        records = self._read_targets(list(targets.values()))
        result: dict[str, Any] = {}
        for index, change in enumerate(changes):
            target = targets.get(index)
            record = records.get(target) if target is not None else None
            if record is not None and record.sku != change.sku:
                record = None  # the id now holds another SKU: the planned target is gone
            result[change.key] = current_value(change, record)
        return result

    # ------------------------------------------------------------------ writing

    def prepare(self, changes: Sequence[Change]) -> Prepared[_Request]:
        """The batch requests for ``changes`` (at most 100 items each) and the changes that
        cannot be sent, with why."""
        currency = self.currency
        targets = self._targets(changes)
        failed: dict[int, str] = {}
        groups: dict[str, dict[tuple[str, int], _Item]] = {}
        for index, change in enumerate(changes):
            try:
                if change.op is Op.CREATE:
                    payload = create_item(change, currency, self.options.create_status)
                    group = groups.setdefault("products/batch", {})
                    group[("create", index)] = _Item("create", payload, [index])
                    continue
                target = targets.get(index)
                if target is None:
                    raise ChangeRejected(
                        f"no product or variation with SKU {change.sku} in the shop"
                    )
                if change.op is Op.DELETE:
                    group = groups.setdefault(target.batch_path, {})
                    item = group.setdefault(("delete", target.id), _Item("delete", target.id))
                    item.changes.append(index)
                    continue
                fields = update_fields(change, currency)
                if change.field == Field.TITLE.value and target.variation_id is not None:
                    target = Target(target.product_id)  # a variation shows its parent's name
                group = groups.setdefault(target.batch_path, {})
                item = group.setdefault(("update", target.id), _Item("update", {"id": target.id}))
                clash = [k for k, v in fields.items() if k in item.payload and item.payload[k] != v]
                if clash:
                    raise ChangeRejected(
                        f"another change in this batch sets {', '.join(clash)} of "
                        f"{'product' if target.variation_id is None else 'variation'} "
                        f"{target.id} to a different value"
                    )
                item.payload.update(fields)
                item.changes.append(index)
            except ChangeRejected as exc:
                failed[index] = str(exc)
        requests: list[_Request] = []
        for path, items in groups.items():
            ordered = list(items.values())
            for start in range(0, len(ordered), MAX_BATCH):
                requests.append(_Request(path, ordered[start : start + MAX_BATCH]))
        return Prepared(requests, failed)

    def covers(self, request: _Request) -> list[int]:
        return [index for item in request.items for index in item.changes]

    def show(self, request: _Request) -> list[Any]:
        return [
            {"method": "POST", "path": f"/wp-json/wc/v3/{request.path}", "body": request.body()}
        ]

    def send(self, request: _Request) -> dict[int, str | None]:
        """Send one batch; per change ``None`` (applied) or WooCommerce's message."""
        try:
            reply = self.client.batch(request.path, request.body())
        except HttpError as exc:
            if exc.status == 413 and len(request.items) > 1:
                # A store that lowered the batch limit: halve until it fits.
                half = len(request.items) // 2
                first = self.send(_Request(request.path, request.items[:half]))
                return first | self.send(_Request(request.path, request.items[half:]))
            return {i: exc.message for item in request.items for i in item.changes}
        outcome: dict[int, str | None] = {}
        for kind in ("create", "update", "delete"):
            sent = [item for item in request.items if item.kind == kind]
            answers = reply.get(kind)
            answers = answers if isinstance(answers, list) else []
            for position, item in enumerate(sent):
                error: str | None
                if position < len(answers):
                    error = item_error(answers[position])
                else:
                    error = f"WooCommerce's reply has no {kind} entry for it"
                outcome.update(dict.fromkeys(item.changes, error))
        return outcome


def _origin(target: Target) -> str:
    variation = f"/variations/{target.variation_id}" if target.variation_id else ""
    return f"GET /products/{target.product_id}{variation}"
