"""Merchant API products and local inventories ↔ :class:`~omnisync.models.Record`, and planned
changes → product input and local inventory payloads.

Reading a processed product (``products/v1``, attributes under ``productAttributes``):

==============  ==================================================================
record          Merchant API
==============  ==================================================================
sku             ``offerId``
title           ``title``
description     ``description`` (plain text, as Google requires)
brand           ``brand``
gtin            the first of ``gtins`` as a 14-digit GTIN (written back in its shortest length)
price           ``price``: ``{"amountMicros": "15990000", "currencyCode": "EUR"}``
sale_price      ``salePrice``, its window from ``salePriceEffectiveDate`` ``{startTime, endTime}``
availability    ``availability``: ``IN_STOCK``, ``OUT_OF_STOCK``, ``PREORDER``, ``BACKORDER``
                (``LIMITED_AVAILABILITY`` reads as in stock)
ids             ``name`` (``accounts/{a}/products/{language}~{feed label}~{offerId}``)
==============  ==================================================================

Amounts are micros (millionths of the currency unit), an int64 that JSON carries as a string:
``Decimal(micros).scaleb(-6)`` is exact, and a planned amount becomes micros only when it has
at most six decimals. Sale windows are RFC 3339 timestamps (UTC ``Z`` or an offset, up to
nanoseconds, cut to microseconds here).

Local inventories (``inventories/v1``, per product, attributes under
``localInventoryAttributes``): each store is a location of the record. ``quantity`` is the
stock at ``stock[storeCode]``; a store's own ``price`` is ``location_prices[storeCode]``,
compared with the price the channel should show exactly as the online price is — "store price
= online price" per store. A store without a price of its own shows the online price and adds
nothing to compare. A store's sale price and availability are kept as they are on writes but
not compared.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from omnisync.errors import ChangeRejected
from omnisync.models import Availability, Change, Field, Money, Record
from omnisync.normalize import clean_text, normalize_gtin
from omnisync.sdk.values import json_money

#: Micros per currency unit.
MICROS = 6
#: The Merchant API's availability values → omnisync's.
AVAILABILITY = {
    "IN_STOCK": Availability.IN_STOCK,
    "LIMITED_AVAILABILITY": Availability.IN_STOCK,
    "OUT_OF_STOCK": Availability.OUT_OF_STOCK,
    "PREORDER": Availability.PREORDER,
    "BACKORDER": Availability.BACKORDER,
}
#: omnisync's → the value written.
AVAILABILITY_OUT = {
    Availability.IN_STOCK: "IN_STOCK",
    Availability.OUT_OF_STOCK: "OUT_OF_STOCK",
    Availability.PREORDER: "PREORDER",
    Availability.BACKORDER: "BACKORDER",
}
#: Record fields → the product attributes a write sets (the update mask's names).
ATTRIBUTES = {
    Field.TITLE: ("title",),
    Field.DESCRIPTION: ("description",),
    Field.BRAND: ("brand",),
    Field.GTIN: ("gtins",),
    Field.PRICE: ("price",),
    Field.SALE_PRICE: ("salePrice", "salePriceEffectiveDate"),
    Field.AVAILABILITY: ("availability",),
}


# ------------------------------------------------------------------ names


def product_id(language: str, feed_label: str, offer_id: str) -> str:
    """The ``{product}`` segment of a name: ``de~DE~SKU-1``, or its unpadded base64url form
    when a part holds ``/``, ``%`` or ``~`` (which the plain form cannot carry)."""
    plain = f"{language}~{feed_label}~{offer_id}"
    if any(c in part for part in (language, feed_label, offer_id) for c in "/%~"):
        return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")
    return plain


def offer_of(name: str) -> str | None:
    """The offerId in a product name (plain or base64url form); None for another shape."""
    segment = name.rsplit("/", 1)[-1]
    if "~" not in segment:
        try:
            segment = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    parts = segment.split("~", 2) if not segment.startswith("local~") else None
    return parts[2] if parts and len(parts) == 3 else None


# ------------------------------------------------------------------ reading


def micros(value: Any) -> Decimal:
    """An ``amountMicros`` (int64 as a JSON string or number) as an exact Decimal amount."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"amountMicros {value!r} is not an integer")
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError(f"amountMicros {value!r} is not an integer")
    return Decimal(int(text)).scaleb(-MICROS)


def money(price: Any) -> Money | None:
    """A Merchant API ``Price`` as Money (None when absent)."""
    if not isinstance(price, dict) or price.get("amountMicros") is None:
        return None
    currency = price.get("currencyCode")
    if not isinstance(currency, str) or not currency:
        raise ValueError("a price without currencyCode")
    return Money(micros(price["amountMicros"]), currency.upper())


def moment(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2026-11-01T00:00:00Z``, fractions up to nanoseconds) in UTC."""
    if not value:
        return None
    text = str(value).strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python reads at most microseconds
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if value.isascii() and "\r" not in value:  # NFC leaves ASCII as it is: skip it
        return value.strip() or None
    return clean_text(value)


def _gtin(values: Any) -> str | None:
    if not isinstance(values, list) or not values:
        return None
    first = values[0]
    if isinstance(first, str) and 8 <= len(first) <= 14 and first.isdigit() and first.isascii():
        return first.zfill(14)  # already clean: what normalize_gtin gives
    first = _text(first)
    if first is None:
        return None
    try:
        return normalize_gtin(first)
    except ValueError:
        return first  # shown as it is; the diff reports it


def availability(value: Any) -> Availability | None:
    if not isinstance(value, str) or not value:
        return None
    known = AVAILABILITY.get(value.upper().replace(" ", "_"))
    if known is None:
        raise ValueError(f"unknown availability {value!r}")
    return known


def to_record(product: Mapping[str, Any], origin: str) -> Record:
    """The record of a processed product (without its stores: see :func:`add_stores`)."""
    attributes = product.get("productAttributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    sale = money(attributes.get("salePrice"))
    window = attributes.get("salePriceEffectiveDate")
    window = window if isinstance(window, dict) and sale is not None else {}
    return Record(
        sku=str(product.get("offerId") or "").strip(),
        title=_text(attributes.get("title")),
        description=_text(attributes.get("description")),
        gtin=_gtin(attributes.get("gtins")),
        brand=_text(attributes.get("brand")),
        price=money(attributes.get("price")),
        sale_price=sale,
        sale_start=moment(window.get("startTime")),
        sale_end=moment(window.get("endTime")),
        availability=availability(attributes.get("availability")),
        ids={"name": str(product.get("name") or "")},
        origin=origin,
    )


def add_stores(
    record: Record, inventories: Sequence[Mapping[str, Any]], wanted: frozenset[str] | None
) -> None:
    """Put the product's local inventories on ``record``: quantity per store as stock, a
    store's own price as its location price. ``wanted`` limits the stores (None: all)."""
    stock: dict[str, int] = {}
    prices: dict[str, Money] = {}
    for inventory in inventories:
        store = str(inventory.get("storeCode") or "")
        if not store or (wanted is not None and store not in wanted):
            continue
        attributes = inventory.get("localInventoryAttributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        quantity = attributes.get("quantity")
        if quantity is not None:
            stock[store] = int(quantity)
        price = money(attributes.get("price"))
        if price is not None:
            prices[store] = price
    record.stock = stock
    record.location_prices = prices or None


# ------------------------------------------------------------------ writing


def price_out(value: Any, what: str) -> dict[str, str] | None:
    """A planned amount as a Merchant API ``Price`` (micros as an int64 string)."""
    planned = json_money(value)
    if planned is None:
        return None
    try:
        scaled = planned.amount.scaleb(MICROS)
        exact = scaled == scaled.to_integral_value()
    except InvalidOperation:
        exact = False
    if not exact:
        raise ChangeRejected(f"{what} {planned} has more decimals than micros can hold")
    return {"amountMicros": str(int(scaled)), "currencyCode": planned.currency}


def _stamp(value: Any) -> str | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gtin_out(value: Any) -> list[str]:
    """A planned GTIN as ``gtins``: omnisync's 14 digits in the shortest standard length."""
    if not value:
        return []
    text = str(value).strip()
    try:
        normal = normalize_gtin(text)
    except ValueError:
        return [text]
    if normal is None:
        return []
    for length in (8, 12, 13):
        if normal[: 14 - length] == "0" * (14 - length):
            return [normal[14 - length :]]
    return [normal]


def attributes_for(field: Field, after: Any) -> dict[str, Any]:
    """The product attributes that set ``field`` to ``after`` (empty: the attributes are
    cleared, being named in the update mask without a value)."""
    if field in (Field.TITLE, Field.DESCRIPTION, Field.BRAND):
        if field is Field.TITLE and not after:
            raise ChangeRejected("Google needs a title; the plan clears it")
        return {field.value: str(after)} if after else {}
    if field is Field.GTIN:
        gtins = gtin_out(after)
        return {"gtins": gtins} if gtins else {}
    if field is Field.PRICE:
        price = price_out(after, "price")
        if price is None:
            raise ChangeRejected("Google needs a price; the plan clears it")
        return {"price": price}
    if field is Field.SALE_PRICE:
        sale = price_out(after, "sale price")
        if sale is None:
            return {}
        out: dict[str, Any] = {"salePrice": sale}
        start, end = _stamp(after.get("start")), _stamp(after.get("end"))
        if start or end:
            if not (start and end):
                raise ChangeRejected(
                    "Google's sale_price_effective_date needs both a start and an end"
                )
            out["salePriceEffectiveDate"] = {"startTime": start, "endTime": end}
        return out
    if field is Field.AVAILABILITY:
        if not after:
            raise ChangeRejected("Google needs an availability; the plan clears it")
        return {"availability": AVAILABILITY_OUT[Availability(after)]}
    raise ChangeRejected(f"the google_merchant connector does not write {field.value}")


def product_input(
    changes: Sequence[Change], *, name: str | None
) -> tuple[dict[str, Any], list[str], dict[int, str]]:
    """A product input patch setting ``changes`` of one product: the body, the update mask
    and the refused changes by index."""
    attributes: dict[str, Any] = {}
    mask: list[str] = []
    refused: dict[int, str] = {}
    for index, change in enumerate(changes):
        try:
            field = Field(change.field or "")
            if field not in ATTRIBUTES:
                raise ChangeRejected(f"the google_merchant connector does not write {field.value}")
            attributes.update(attributes_for(field, change.after))
            mask += [f"productAttributes.{name}" for name in ATTRIBUTES[field]]
        except (ChangeRejected, ValueError) as exc:
            refused[index] = str(exc)
    body: dict[str, Any] = {"productAttributes": attributes}
    if name:
        body["name"] = name
    return body, mask, refused


def new_product(after: Mapping[str, Any], language: str, feed_label: str) -> dict[str, Any]:
    """A whole product input for a create (``after`` is the expected record as JSON)."""
    attributes: dict[str, Any] = {}
    for field in (Field.TITLE, Field.DESCRIPTION, Field.BRAND, Field.GTIN, Field.PRICE):
        value = after.get(field.value)
        if value is not None:
            attributes.update(attributes_for(field, value))
    if after.get("sale_price"):
        attributes.update(attributes_for(Field.SALE_PRICE, after["sale_price"]))
    stated = after.get("availability")
    stock = after.get("stock")
    if stated:
        attributes.update(attributes_for(Field.AVAILABILITY, stated))
    elif isinstance(stock, dict):
        total = sum(int(v) for v in stock.values())
        attributes["availability"] = "IN_STOCK" if total > 0 else "OUT_OF_STOCK"
    if "price" not in attributes:
        raise ChangeRejected("Google needs a price to create a product; canonical has none")
    return {
        "offerId": str(after["sku"]),
        "contentLanguage": language,
        "feedLabel": feed_label,
        "productAttributes": attributes,
    }


def store_inventory(
    store: str, current: Mapping[str, Any] | None, changes: Sequence[Change]
) -> tuple[dict[str, Any], dict[int, str]]:
    """The whole local inventory of ``store`` with ``changes`` (stock, price) applied to the
    current one (an insert replaces the entry: every other attribute is sent back)."""
    attributes = dict((current or {}).get("localInventoryAttributes") or {})
    refused: dict[int, str] = {}
    for index, change in enumerate(changes):
        try:
            if change.field == Field.STOCK.value:
                if change.after is None or int(change.after) < 0:
                    raise ChangeRejected("Google needs a quantity of 0 or more at a store")
                attributes["quantity"] = str(int(change.after))
            elif change.field == Field.PRICE.value:
                price = price_out(change.after, "store price")
                if price is None:
                    attributes.pop("price", None)  # the store shows the online price again
                else:
                    attributes["price"] = price
            else:
                raise ChangeRejected(
                    f"the google_merchant connector writes stock and price at a store, not "
                    f"{change.field}"
                )
        except (ChangeRejected, ValueError) as exc:
            refused[index] = str(exc)
    return {"storeCode": store, "localInventoryAttributes": attributes}, refused
