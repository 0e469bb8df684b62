"""Changes → Shopify mutations, and back: a batch's changes as mutation fields (prices in the
sale model, barcodes, product fields, quantities), the fields as one GraphQL request, and the
request's ``userErrors`` as per-change failures.

Each :class:`Mutation` is one aliased root field of the ``OmnisyncWrite`` request and knows
which changes (by batch index) each of its input elements carries, so that a ``userError``
pointing at ``variants[3]`` fails exactly the changes of that element.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from omnisync import secrets
from omnisync.markup import write_html
from omnisync.models import Change, Field, Money, Op
from omnisync.normalize import minor_units
from omnisync.sdk.values import json_money

from .client import MAX_PAGE, MUTATION_COST
from .records import FIELDS, Shop, VariantState

#: Product fields (every variant of the product shares them) and their ``ProductUpdateInput``.
PRODUCT_INPUT = {Field.TITLE: "title", Field.DESCRIPTION: "descriptionHtml", Field.BRAND: "vendor"}
_KEY_NAMESPACE = uuid.UUID("6c1f3f1e-8a51-4d43-9f5a-0d3b7f2a9c11")


# ---------------------------------------------------------------- a batch


def requests_for(
    changes: Sequence[Change],
    states: list[tuple[VariantState | None, str | None]],
    shop: Shop,
    *,
    run: str,
    channel: str,
    keyed: bool,
    budget: int,
) -> tuple[list[list[Mutation]], dict[int, str]]:
    """A batch's mutations, grouped into requests of at most ``budget`` points, and the
    changes refused up front. ``states`` holds each change's variant (or why there is none);
    ``keyed``: the API version takes ``changeFromQuantity`` and ``@idempotent`` keys."""
    failed: dict[int, str] = {}
    prices: dict[str, dict[str, Any]] = {}  # variant GID -> {"price": i, "sale_price": i}
    barcodes: dict[str, int] = {}
    content: dict[str, dict[str, list[int]]] = {}  # product GID -> input key -> indices
    quantities: list[tuple[int, dict[str, Any]]] = []
    for index, change in enumerate(changes):
        problem = unsupported(change)
        state = None
        if problem is None:
            state, problem = states[index]
        if problem is not None or state is None:
            failed[index] = problem or "unknown variant"
            continue
        field = Field(change.field or "")
        if field in (Field.PRICE, Field.SALE_PRICE):
            problem = money_problem(change, shop.currency)
            if problem is None:
                prices.setdefault(state.variant_id, {})[field.value] = index
        elif field is Field.GTIN:
            barcodes[state.variant_id] = index
        elif field in PRODUCT_INPUT:
            if field is Field.TITLE and not str(change.after or "").strip():
                problem = "a Shopify product must have a title"
            else:
                key = PRODUCT_INPUT[field]
                content.setdefault(state.product_id, {}).setdefault(key, []).append(index)
        elif field is Field.STOCK:
            row, problem = quantity_row(change, state, shop, change_from=keyed)
            if row is not None:
                quantities.append((index, row))
        if problem is not None:
            failed[index] = problem
    mutations = variant_mutations(changes, states, prices, barcodes, failed, shop.currency)
    mutations += product_mutations(changes, content, failed)
    mutations += inventory_mutations(quantities, run, channel, keyed=keyed)
    return split_by_cost(mutations, budget), failed


# ---------------------------------------------------------------- refused up front


def unsupported(change: Change) -> str | None:
    """Why the connector cannot write ``change`` at all, or None."""
    if change.op is not Op.UPDATE:
        return (
            f"the shopify connector does not {change.op.value} products; "
            "do it in Shopify (or leave push.create/push.delete off)"
        )
    if change.field not in {f.value for f in FIELDS}:
        return f"the shopify connector cannot write {change.field}"
    return None


def money_problem(change: Change, currency: str) -> str | None:
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


# ---------------------------------------------------------------- the sale model


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


# ---------------------------------------------------------------- mutation fields


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


def variant_mutations(
    changes: Sequence[Change],
    states: list[tuple[VariantState | None, str | None]],
    prices: dict[str, dict[str, Any]],
    barcodes: dict[str, int],
    failed: dict[int, str],
    currency: str,
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
            regular, sale = regular_and_sale(state, currency)
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
                spec.update(sale_prices(regular, sale))
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


def product_mutations(
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


def quantity_row(
    change: Change, state: VariantState, shop: Shop, *, change_from: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """A stock change as an ``inventorySetQuantities`` quantity, or why it cannot be one;
    compare-and-set as ``changeFromQuantity`` (``change_from``) or ``compareQuantity``."""
    # A change's location None is the record's "default" (a channel may map a Shopify
    # location to it, as for a canonical with one stock column).
    name = change.location or "default"
    location = shop.gid_of(name)
    if location is None:
        known = ", ".join(loc.as_name for loc in shop.locations) or "none"
        return (
            None,
            f"stock location {name!r} is not a mapped Shopify location ({known})",
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
    if change_from:
        row["changeFromQuantity"] = before
    elif before is not None:
        row["compareQuantity"] = before
    return row, None


def inventory_mutations(
    quantities: list[tuple[int, dict[str, Any]]], run: str, channel: str, *, keyed: bool
) -> list[Mutation]:
    """``inventorySetQuantities``: 250 quantities per call, compare-and-set, and with
    ``keyed`` an ``@idempotent`` key derived from the push ``run``, the channel and the
    quantities."""
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
        if keyed:
            key = str(
                uuid.uuid5(_KEY_NAMESPACE, f"{run}:{channel}:{json.dumps(rows, sort_keys=True)}")
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


# ---------------------------------------------------------------- the request


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


# ---------------------------------------------------------------- userErrors → failures


def failures(
    batch: Sequence[Mutation], data: dict[str, Any], failed: dict[int, str], stale: set[int]
) -> list[Mutation]:
    """Record the ``userErrors`` of a write request's answer as per-change failures (and
    compare-and-set refusals in ``stale``). Returns the inventory mutations to send again
    without the quantities Shopify rejected."""
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
