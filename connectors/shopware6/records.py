"""Shopware 6 product objects ↔ :class:`~omnisync.models.Record`, planned changes → sync payloads.

Reading (a product as ``POST /api/search/product`` returns it with ``sw-inheritance: 1``, so a
variant's unset fields already hold its parent's values):

==============  ==================================================================
record          Shopware
==============  ==================================================================
sku             ``productNumber``
title           ``translated.name`` (the language's value or its fallback), else ``name``
description     ``translated.description``, else ``description`` (HTML as stored)
gtin            ``ean`` as a 14-digit GTIN (written back in its shortest standard length)
price           the ``price[]`` entry of the configured currency: ``gross`` (or ``net``);
                while its ``listPrice`` is higher, the list price is the regular price
sale_price      ... and the price the sale price (Shopware shows the list price struck through)
stock           ``{"default": stock}`` (core Shopware keeps one stock per product)
ids             ``product_id`` and, for a variant, ``parent_id``
==============  ==================================================================

A product with children (``childCount`` > 0) is a container; its variants are the records.
Prices arrive as JSON floats; each is taken by its shortest representation (``repr``), which
is exactly the decimal that was stored, and never enters float arithmetic.

Writing: the ``price`` field of a product is one array for all currencies, and a write
replaces the whole array. So a price change reads the product first and sends its array back
with only the configured currency's entry changed. Shopware stores gross *and* net and the
API does not derive one from the other (``linked: true`` only makes the admin UI do so), so
omnisync writes both: the other one is computed from the product's tax rate and rounded to
the currency's decimals; ``linked`` keeps its value. A sale is written as a list price above
the price (Shopware has no sale window: ``sale_price`` changes with a window are refused).
A variant that inherits its parent's price gets a price array of its own when its price is
written: from then on it no longer follows its parent's price (an undo writes the old value
back, it does not restore the inheritance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from omnisync.errors import ChangeRejected
from omnisync.markup import read_html, write_html
from omnisync.models import Change, Field, Money, Op, Record
from omnisync.normalize import clean_text, normalize_gtin
from omnisync.sdk.values import json_money

#: The product fields a pull asks for (``includes``, Shopware's partial data loading): what a
#: record is made of, and no more, since decoding the answer is most of a pull's CPU time.
#: ``translated`` holds the name and description with their fallbacks (the system language,
#: and with ``sw-inheritance`` the parent), so the plain ``name`` and ``description`` would
#: add nothing.
PRODUCT_FIELDS = (
    "id",
    "parentId",
    "productNumber",
    "translated",
    "ean",
    "price",
    "stock",
    "childCount",
    "createdAt",
    "updatedAt",
)
#: The fields a targeted read before a write asks for: a price write also needs the tax rate.
TARGET_FIELDS = (*PRODUCT_FIELDS, "taxId")
#: Fields a write can set, by record field.
WRITES = {Field.TITLE: "name", Field.DESCRIPTION: "description"}
#: The key of omnisync's operation in a sync body.
SYNC_KEY = "omnisync-product"

Basis = Literal["gross", "net"]


@dataclass(frozen=True)
class Currency:
    """A Shopware currency: its id, ISO code and the decimals prices are rounded to."""

    id: str
    code: str
    decimals: int = 2


# ------------------------------------------------------------------ reading


def amount(value: Any) -> Decimal | None:
    """A JSON number as an exact Decimal: a float by its shortest repr (what was stored)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def is_container(product: Mapping[str, Any]) -> bool:
    """Whether the product has variants (then they, not it, are the sellable units)."""
    return int(product.get("childCount") or 0) > 0


def stamp(product: Mapping[str, Any]) -> str | None:
    """When the product last changed: ``updatedAt``, or ``createdAt`` for one never updated
    (Shopware leaves ``updatedAt`` null until the first update)."""
    created, updated = product.get("createdAt"), product.get("updatedAt")
    return updated if updated and (not created or updated > created) else created


def price_entry(product: Mapping[str, Any], currency_id: str) -> dict[str, Any] | None:
    for entry in product.get("price") or ():
        if isinstance(entry, dict) and entry.get("currencyId") == currency_id:
            return entry
    return None


def regular_and_sale(
    entry: Mapping[str, Any], basis: Basis
) -> tuple[Decimal | None, Decimal | None]:
    """(regular, sale) of a price entry: a list price above the price makes it a sale."""
    value = amount(entry.get(basis))
    listed = entry.get("listPrice")
    regular = amount(listed.get(basis)) if isinstance(listed, dict) else None
    if regular is not None and value is not None and regular > value:
        return regular, value
    return value, None


def _text(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def _gtin(value: Any) -> str | None:
    if isinstance(value, str) and 8 <= len(value) <= 14 and value.isdigit() and value.isascii():
        return value.zfill(14)  # already clean: what normalize_gtin(clean_text(value)) gives
    text = _text(value)
    if text is None:
        return None
    try:
        return normalize_gtin(text)  # 14 digits, as every source's GTINs are compared
    except ValueError:
        return text  # Shopware's ean is free text; the diff shows it as it is


def ean(gtin: Any) -> str | None:
    """A planned GTIN as Shopware's ``ean`` holds it: omnisync's 14-digit form (zero-padded)
    back in the shortest standard length it fits, GTIN-8, UPC-A (12), EAN-13 or GTIN-14."""
    if gtin is None:
        return None
    text = str(gtin).strip()
    try:
        normal = normalize_gtin(text)
    except ValueError:
        return text
    if normal is None:
        return None
    for length in (8, 12, 13):
        if normal[: 14 - length] == "0" * (14 - length):
            return normal[14 - length :]
    return normal


def to_record(product: Mapping[str, Any], currency: Currency, basis: Basis, origin: str) -> Record:
    """The record of a sellable product (a variant or a product without variants)."""
    translated = product.get("translated")
    translated = translated if isinstance(translated, dict) else {}
    entry = price_entry(product, currency.id)
    regular, sale = regular_and_sale(entry, basis) if entry else (None, None)
    ids = {"product_id": str(product["id"])}
    if product.get("parentId"):
        ids["parent_id"] = str(product["parentId"])
    stock = product.get("stock")
    return Record(
        sku=str(product.get("productNumber") or "").strip(),
        title=_text(translated.get("name")) or _text(product.get("name")),
        description=read_html(translated.get("description"))
        or read_html(product.get("description")),
        gtin=_gtin(product.get("ean")),
        price=Money(regular, currency.code) if regular is not None else None,
        sale_price=Money(sale, currency.code) if sale is not None else None,
        stock={"default": int(stock)} if stock is not None else None,
        ids=ids,
        origin=origin,
    )


# ------------------------------------------------------------------ writing


def payload(
    product_id: str,
    changes: Sequence[Change],
    product: Mapping[str, Any] | None,
    *,
    currency: Currency,
    basis: Basis,
    tax_rates: Mapping[str, Decimal],
) -> tuple[dict[str, Any] | None, dict[int, str]]:
    """The sync payload record setting the changes of one product (None when none can be
    written), and why the others cannot, by their index in ``changes``. ``product`` is the
    current product (prices are read-modify-write)."""
    data: dict[str, Any] = {"id": product_id}
    money: dict[Field, Any] = {}
    money_at: list[int] = []
    refused: dict[int, str] = {}
    for index, change in enumerate(changes):
        try:
            if change.op is not Op.UPDATE or change.field is None:
                raise ChangeRejected(
                    f"the shopware6 connector does not {change.op.value} products; "
                    "do it in the Shopware admin"
                )
            field = Field(change.field)
            if field in (Field.PRICE, Field.SALE_PRICE):
                money[field] = change.after
                money_at.append(index)
            elif field is Field.STOCK:
                if change.location not in (None, "default"):
                    raise ChangeRejected(
                        "Shopware keeps one stock per product; "
                        f"there is no location {change.location!r}"
                    )
                if change.after is None:
                    raise ChangeRejected("Shopware needs a stock number; the plan clears it")
                data["stock"] = int(change.after)
            elif field is Field.GTIN:
                data["ean"] = ean(change.after)
            elif field in WRITES:
                if field is Field.TITLE and not change.after:
                    raise ChangeRejected("Shopware needs a product name; the plan clears it")
                data[WRITES[field]] = (
                    write_html(change.after) if field is Field.DESCRIPTION else change.after
                )
            else:
                raise ChangeRejected(f"the shopware6 connector does not write {field.value}")
        except ChangeRejected as exc:
            refused[index] = str(exc)
    if money:
        # Price and sale price share one entry of the array: they go or fail together.
        try:
            if product is None:
                raise ChangeRejected("the product could not be read back to update its price array")
            data["price"] = price_array(product, money, currency, basis, tax_rates)
        except ChangeRejected as exc:
            refused.update((i, str(exc)) for i in money_at)
    return (data if len(data) > 1 else None), refused


def price_array(
    product: Mapping[str, Any],
    money: Mapping[Field, Any],
    currency: Currency,
    basis: Basis,
    tax_rates: Mapping[str, Decimal],
) -> list[dict[str, Any]]:
    """The product's price array with the currency's entry set to the planned price and sale;
    every other currency's entry as it is."""
    entries = [e for e in product.get("price") or () if isinstance(e, dict)]
    current = price_entry(product, currency.id)
    regular, sale = regular_and_sale(current, basis) if current else (None, None)
    if Field.PRICE in money:
        regular = _planned(money[Field.PRICE], currency)
    if Field.SALE_PRICE in money:
        value = money[Field.SALE_PRICE]
        if value and (value.get("start") or value.get("end")):
            raise ChangeRejected(
                "Shopware list prices have no sale window; "
                "use `expect.price.sale: separate` for this channel"
            )
        sale = _planned(value, currency)
    if regular is None:
        raise ChangeRejected(f"Shopware needs a price in {currency.code}; the plan removes it")
    ratio = _net_per_gross(product, current, basis, tax_rates)
    entry = dict(current) if current else {"currencyId": currency.id, "linked": True}
    entry.pop("percentage", None)  # derived from the list price; Shopware's indexer recomputes it
    if sale is None:
        entry.update(_pair(regular, basis, ratio, currency.decimals))
        entry.pop("listPrice", None)
    else:
        if sale >= regular:
            raise ChangeRejected(
                f"sale price {sale} is not below the regular price {regular}: Shopware shows a "
                "sale as a list price above the price"
            )
        entry.update(_pair(sale, basis, ratio, currency.decimals))
        listed = entry.get("listPrice")
        listed = dict(listed) if isinstance(listed, dict) else {"linked": entry.get("linked", True)}
        listed.update(_pair(regular, basis, ratio, currency.decimals))
        entry["listPrice"] = listed
    if current is None:
        return [*entries, entry]
    return [entry if e is current else e for e in entries]


def _planned(value: Any, currency: Currency) -> Decimal | None:
    money = json_money(value)
    if money is None:
        return None
    if money.currency != currency.code:
        raise ChangeRejected(
            f"the plan's amount is in {money.currency}, this channel's prices are in {currency.code}"
        )
    return money.amount


def _net_per_gross(
    product: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    basis: Basis,
    tax_rates: Mapping[str, Decimal],
) -> Decimal:
    rate = tax_rates.get(str(product.get("taxId")))
    if rate is not None:
        return 1 / (1 + rate / 100)
    # No tax entity at hand: keep the product's present net/gross proportion.
    gross = amount(current.get("gross")) if current else None
    net = amount(current.get("net")) if current else None
    if gross and net:
        return net / gross
    raise ChangeRejected(f"the product's tax rate is unknown (taxId {product.get('taxId')!r})")


def _pair(value: Decimal, basis: Basis, net_per_gross: Decimal, decimals: int) -> dict[str, float]:
    """gross and net for ``value`` (one of them), the other derived and rounded; as JSON floats
    (a 2-decimal amount survives Decimal → float → JSON text unchanged)."""
    step = Decimal(1).scaleb(-decimals)
    if basis == "gross":
        gross, net = value, (value * net_per_gross).quantize(step, ROUND_HALF_UP)
    else:
        net, gross = value, (value / net_per_gross).quantize(step, ROUND_HALF_UP)
    return {"gross": float(gross), "net": float(net)}


def sync_operations(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The body of ``POST /api/_action/sync`` upserting ``records``."""
    return [{"key": SYNC_KEY, "action": "upsert", "entity": "product", "payload": list(records)}]


def record_index(pointer: str | None) -> int | None:
    """The payload index an error's ``source.pointer`` names: ``/0/payload/3/price`` (operation,
    payload, index), ``/omnisync-product/3/price`` (operation key, index) or ``/3/price``."""
    if not pointer:
        return None
    parts = pointer.strip("/").split("/")
    if "payload" in parts:
        at = parts.index("payload") + 1
    elif parts[0] == SYNC_KEY:
        at = 1
    else:
        at = 0
    if at < len(parts) and parts[at].isdigit():
        return int(parts[at])
    return None


def error_text(error: Mapping[str, Any]) -> str:
    """One Shopware error as a message: its detail, code and pointer."""
    detail = str(error.get("detail") or error.get("title") or "rejected")
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    where = " at ".join(str(p) for p in (error.get("code"), pointer) if p)
    return f"{detail} ({where})" if where else detail
