"""Shopify's objects and omnisync's records: the shop and its locations, variant nodes →
:class:`Record`, and changes → the variants they are for (what :mod:`.mutations` writes).

One record is one product variant (the unit with a SKU). Its fields come from:

==============  ==============================================================================
sku             ``ProductVariant.sku``
title           ``Product.title`` (shared by the product's variants)
description     ``Product.descriptionHtml``
brand           ``Product.vendor``
gtin            ``ProductVariant.barcode``
price           ``compareAtPrice`` while on sale (``compareAtPrice > price``), else ``price``
sale_price      ``price`` while on sale, else none
stock           ``available`` quantity per location (untracked items: none)
ids             ``product_id``, ``variant_id``, ``inventory_item_id`` (GIDs)
==============  ==============================================================================

The nodes come from the queries in :mod:`.client`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnisync.errors import ConnectorError
from omnisync.markup import read_html
from omnisync.models import Change, Field, Money, Record

#: The fields the connector reads and writes.
FIELDS = frozenset(
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

# ---------------------------------------------------------------- the shop


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
    #: The locations omnisync reads and writes (the mapped ones).
    locations: tuple[ShopLocation, ...]
    #: How many locations the shop has, mapped or not: an item's inventory levels are listed
    #: across all of them, so a read of the mapped ones' levels must ask for this many.
    location_count: int = 0

    def by_gid(self) -> dict[str, str]:
        return {loc.gid: loc.as_name for loc in self.locations}

    def gid_of(self, name: str) -> str | None:
        return next((loc.gid for loc in self.locations if loc.as_name == name), None)


def to_shop(
    pages: Iterable[dict[str, Any]],
    mapping: dict[str, str] | None,
    currency: str | None,
    where: str,
) -> Shop:
    """The shop of ``SHOP`` answers, its locations as ``mapping`` (Shopify location name or
    GID -> omnisync name; None: every location under its own name) names them."""
    name, shop_currency = "", ""
    found: list[tuple[str, str]] = []
    for data in pages:
        shop = data.get("shop") or {}
        name, shop_currency = shop.get("name") or "", shop.get("currencyCode") or ""
        found += [(n["id"], n["name"]) for n in data["locations"]["nodes"]]
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
                    where=where,
                    hint=f"the shop's locations: {known}",
                )
            chosen.append(ShopLocation(match[0][0], match[0][1], target))
        locations = tuple(chosen)
    return Shop(name, currency or shop_currency, locations, len(found))


# ---------------------------------------------------------------- API objects → records


@dataclass
class VariantState:
    """What a write needs to know of a variant: its ids and its raw prices and stock."""

    sku: str
    variant_id: str
    product_id: str
    item_id: str | None
    price: Decimal | None
    compare_at: Decimal | None
    tracked: bool
    #: Available quantity per Shopify location GID.
    stock: dict[str, int] = field(default_factory=dict)

    @property
    def on_sale(self) -> bool:
        return _on_sale(self.price, self.compare_at)


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value))


def _on_sale(price: Decimal | None, compare_at: Decimal | None) -> bool:
    return price is not None and compare_at is not None and compare_at > price


def state_of(node: dict[str, Any]) -> VariantState:
    """A ``TARGETS``/``VARIANTS`` node as a :class:`VariantState` (stock when queried)."""
    item = node.get("inventoryItem") or {}
    stock: dict[str, int] = {}
    for level in ((item.get("inventoryLevels") or {}).get("nodes")) or []:
        quantity = available_of(level)
        if quantity is not None:
            stock[level["location"]["id"]] = quantity
    return VariantState(
        sku=(node.get("sku") or "").strip(),
        variant_id=node["id"],
        product_id=node["product"]["id"],
        item_id=item.get("id"),
        price=_decimal(node.get("price")),
        compare_at=_decimal(node.get("compareAtPrice")),
        tracked=bool(item.get("tracked", True)),
        stock=stock,
    )


def available_of(level: dict[str, Any]) -> int | None:
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return int(quantity["quantity"])
    return None


def to_record(
    node: dict[str, Any],
    currency: str,
    stock: dict[str, int] | None,
    origin: str,
) -> Record:
    """A variant node as a record; ``stock`` is already keyed by omnisync location names."""
    product = node.get("product") or {}
    item = node.get("inventoryItem") or {}
    price = _decimal(node.get("price"))
    compare_at = _decimal(node.get("compareAtPrice"))
    regular, sale = price, None
    if _on_sale(price, compare_at):
        regular, sale = compare_at, price
    ids = {"product_id": product.get("id", ""), "variant_id": node["id"]}
    if item.get("id"):
        ids["inventory_item_id"] = item["id"]
    return Record(
        sku=(node.get("sku") or "").strip(),
        title=_text(product.get("title")),
        description=read_html(product.get("descriptionHtml")),
        gtin=_text(node.get("barcode")),
        brand=_text(product.get("vendor")),
        price=Money(regular, currency) if regular is not None else None,
        sale_price=Money(sale, currency) if sale is not None else None,
        stock=stock if item.get("tracked", True) else None,
        ids=ids,
        origin=origin,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def joined_record(
    node: dict[str, Any],
    origin: str,
    stock: dict[str, dict[str, tuple[int, str]]],
    shop: Shop,
) -> tuple[Record, str | None]:
    """A ``VARIANTS`` node with its stock from ``{location GID: {item GID: (available,
    updatedAt)}}``, and its newest ``updatedAt``."""
    item = (node.get("inventoryItem") or {}).get("id")
    quantities: dict[str, int] = {}
    newest = (node.get("product") or {}).get("updatedAt")
    for loc in shop.locations:
        level = stock[loc.gid].get(item or "")
        if level is not None:
            quantities[loc.as_name] = level[0]
            newest = max(newest or "", level[1]) or None
    record = to_record(node, shop.currency, quantities or None, origin)
    return record, newest


def target_record(node: dict[str, Any], shop: Shop, origin: str) -> tuple[Record, str | None]:
    """A ``TARGETS`` node (its stock inside) as a record, and its newest ``updatedAt``."""
    by_gid = shop.by_gid()
    quantities: dict[str, int] = {}
    newest = (node.get("product") or {}).get("updatedAt")
    item = node.get("inventoryItem") or {}
    for level in (item.get("inventoryLevels") or {}).get("nodes") or []:
        name = by_gid.get(level["location"]["id"])
        quantity = available_of(level)
        if name is not None and quantity is not None:
            quantities[name] = quantity
            newest = max(newest or "", level.get("updatedAt") or "") or None
    return to_record(node, shop.currency, quantities or None, origin), newest


# ---------------------------------------------------------------- changes → their variants


def gid_number(gid: str) -> str | None:
    """The number at the end of a GID (``gid://shopify/Product/7`` -> ``7``)."""
    match = re.search(r"/(\d+)(?:\?.*)?$", gid or "")
    return match.group(1) if match else None


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def sku_term(sku: str) -> str:
    """The search term for a variant by SKU."""
    return f'sku:"{_quoted(sku)}"'


def gids(kind: str, values: Iterable[str]) -> list[str]:
    """The values that are GIDs of ``kind`` (numbers, as a REST payload has them, become one);
    what is neither cannot name an object of the shop and is left out."""
    found: dict[str, None] = {}
    for value in values:
        text = str(value).strip()
        if text.isdigit():
            text = f"gid://shopify/{kind}/{text}"
        if re.fullmatch(rf"gid://shopify/{kind}/\d+", text):
            found[text] = None
    return list(found)


def lookup_terms(changes: Sequence[Change]) -> list[str]:
    """Search terms for the changes' variants: ids where the change has them, else its SKU."""
    terms: list[str] = []
    for change in changes:
        variant = change.ids.get("variant_id")
        number = gid_number(variant) if variant else None
        term = f"id:{number}" if number else sku_term(change.sku)
        if term not in terms:
            terms.append(term)
    return terms


def node_for(
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
