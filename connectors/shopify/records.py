"""Shopify's objects and omnisync's records: the queries, API objects → :class:`Record`, and
changes → mutation inputs.

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

Costs: scalars are free, an object costs 1, a connection ``2 + first × node``, a mutation 10
(Shopify's published model). The queries below keep a variant at 3 points, so that a page of
250 costs 752 — under the 1000-point ceiling of one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnisync.markup import read_html
from omnisync.models import Money, Record
from omnisync.normalize import minor_units

from .client import MAX_PAGE, MAX_QUERY_COST

MUTATION_COST = 10

_VARIANT_FIELDS = """id sku barcode price compareAtPrice
      product { id title descriptionHtml vendor updatedAt }"""

#: Every variant, a page at a time: 3 points per variant (variant, product, inventory item).
VARIANTS = f"""query OmnisyncVariants($first: Int!, $after: String, $query: String) {{
  productVariants(first: $first, after: $after, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {_VARIANT_FIELDS}
      inventoryItem {{ id tracked }}
    }}
  }}
}}"""
VARIANT_COST = 3

#: The variants a search selects (ids, SKUs, products), with their stock at every location:
#: ``5 + 3 × locations`` points per variant.
TARGETS = f"""query OmnisyncTargets($first: Int!, $after: String, $query: String, $levels: Int!) {{
  productVariants(first: $first, after: $after, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {_VARIANT_FIELDS}
      inventoryItem {{
        id tracked
        inventoryLevels(first: $levels) {{
          nodes {{ updatedAt location {{ id }} quantities(names: ["available"]) {{ name quantity }} }}
        }}
      }}
    }}
  }}
}}"""


def target_cost(levels: int) -> int:
    return 5 + 3 * levels


#: The stock at one location, a page of inventory levels at a time: 3 points per level.
LEVELS = """query OmnisyncLevels($location: ID!, $first: Int!, $after: String, $query: String) {
  location(id: $location) {
    inventoryLevels(first: $first, after: $after, query: $query) {
      pageInfo { hasNextPage endCursor }
      nodes { updatedAt item { id } quantities(names: ["available"]) { name quantity } }
    }
  }
}"""
LEVEL_COST = 3

#: Levels changed since a moment, with their variant (4 points per level).
CHANGED_LEVELS = """query OmnisyncChangedLevels($location: ID!, $first: Int!, $after: String, $query: String) {
  location(id: $location) {
    inventoryLevels(first: $first, after: $after, query: $query) {
      pageInfo { hasNextPage endCursor }
      nodes { updatedAt item { id variant { id } } }
    }
  }
}"""
CHANGED_LEVEL_COST = 3

#: Products changed since a moment (1 point per product).
CHANGED_PRODUCTS = """query OmnisyncChangedProducts($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id updatedAt }
  }
}"""
CHANGED_PRODUCT_COST = 1

#: The shop's currency and its locations: the connectivity probe.
SHOP = """query OmnisyncShop($first: Int!, $after: String) {
  shop { name currencyCode }
  locations(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name }
  }
}"""


def shop_cost(first: int) -> int:
    return 1 + 2 + first


def page_size(wanted: int, node_cost: int, overhead: int = 0) -> int:
    """The largest page (≤ ``wanted``, ≤ 250) whose query stays within 1000 points."""
    fits = (MAX_QUERY_COST - overhead - 2) // max(node_cost, 1)
    return max(1, min(wanted, MAX_PAGE, fits))


def page_cost(first: int, node_cost: int, overhead: int = 0) -> int:
    return overhead + 2 + first * node_cost


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


# ---------------------------------------------------------------- changes → mutation inputs


def regular_and_sale(state: VariantState, currency: str) -> tuple[Money | None, Money | None]:
    """A variant's current regular and sale price in omnisync's terms."""
    if state.on_sale:
        assert state.compare_at is not None
        assert state.price is not None
        return Money(state.compare_at, currency), Money(state.price, currency)
    return (Money(state.price, currency) if state.price is not None else None), None


def amount(money: Money) -> str:
    """A price as Shopify's Money string, at the currency's minor unit (``"19.90"``)."""
    places = minor_units(money.currency)
    return f"{money.amount.quantize(Decimal(1).scaleb(-places)):f}"


def sale_prices(regular: Money | None, sale: Money | None) -> dict[str, Any]:
    """``price``/``compareAtPrice`` for a regular and an optional sale price.

    During a sale Shopify's ``price`` is what the customer pays and ``compareAtPrice`` the
    regular price shown struck through; without one ``compareAtPrice`` is cleared."""
    assert regular is not None
    if sale is not None and sale.amount < regular.amount:
        return {"price": amount(sale), "compareAtPrice": amount(regular)}
    return {"price": amount(regular), "compareAtPrice": None}


@dataclass
class Mutation:
    """One root field of a write request: which changes (by index) it carries."""

    alias: str
    field: str
    #: ``(argument, GraphQL type, value)`` for each variable of this field.
    arguments: list[tuple[str, str, Any]]
    #: Batch indices of the changes carried, per input element (``variants[i]``,
    #: ``quantities[i]``); a product update carries all of them in element 0.
    elements: list[list[int]]
    #: Literal arguments written into the document (``allowPartialUpdates: true``).
    literals: str = ""
    idempotency_key: str | None = None

    @property
    def changes(self) -> list[int]:
        return [index for element in self.elements for index in element]


_PAYLOADS = {
    "productVariantsBulkUpdate": "userErrors { field message code }",
    "productUpdate": "userErrors { field message }",
    "inventorySetQuantities": "userErrors { field message code }",
}


def document(mutations: Sequence[Mutation]) -> tuple[str, dict[str, Any]]:
    """One GraphQL request carrying ``mutations`` as aliased fields, values as variables."""
    declarations: list[str] = []
    fields: list[str] = []
    variables: dict[str, Any] = {}
    for mutation in mutations:
        arguments = []
        for name, type_, value in mutation.arguments:
            variable = f"{mutation.alias}_{name}"
            declarations.append(f"${variable}: {type_}")
            variables[variable] = value
            arguments.append(f"{name}: ${variable}")
        if mutation.literals:
            arguments.append(mutation.literals)
        directive = ""
        if mutation.idempotency_key is not None:
            variable = f"{mutation.alias}_key"
            declarations.append(f"${variable}: String!")
            variables[variable] = mutation.idempotency_key
            directive = f" @idempotent(key: ${variable})"
        fields.append(
            f"  {mutation.alias}: {mutation.field}({', '.join(arguments)}){directive} "
            f"{{ {_PAYLOADS[mutation.field]} }}"
        )
    query = f"mutation OmnisyncWrite({', '.join(declarations)}) {{\n" + "\n".join(fields) + "\n}"
    return query, variables


def split_by_cost(mutations: Sequence[Mutation], budget: int) -> list[list[Mutation]]:
    """Mutations in requests of at most ``budget`` points (10 per mutation field)."""
    per_request = max(1, budget // MUTATION_COST)
    return [list(mutations[i : i + per_request]) for i in range(0, len(mutations), per_request)]
