"""Magento products ↔ :class:`~omnisync.models.Record`, planned changes → bulk payloads and
source items.

Reading (a product as ``GET /rest/{store_code}/V1/products`` lists it: the store view's values,
falling back to the global ones):

==============  ==================================================================
record          Magento
==============  ==================================================================
sku             ``sku``
title           ``name``
description     custom attribute ``description`` (HTML, compared as its text)
gtin            the custom attribute ``gtin_attribute`` names (``ean``, ``gtin``, ...)
price           ``price`` (a JSON number) in the store's base currency
sale_price      custom attribute ``special_price``
sale_start/end  ``special_from_date`` / ``special_to_date``: dates, so the sale runs from the
                start of the first day to the end of the last (23:59:59) in the store's
                time zone
stock           MSI: one location per source (``source_code``, quantity of its source item);
                legacy: ``{"default": extension_attributes.stock_item.qty}``
ids             ``product_id`` (``id``) and, for a configurable product's child,
                ``parent_id`` (the configurable's ``id``)
==============  ==================================================================

Simple, virtual and downloadable products are records; a configurable product is a container
(its children, simple products with SKUs of their own, are the records); bundle and grouped
products are not sellable units with a stock of their own and are skipped. Prices arrive as
JSON floats; each is taken by its shortest representation (``repr``), which is exactly the
decimal that was stored, and never enters float arithmetic. Custom attributes arrive as text
(``"19.990000"``: Magento's DECIMAL(20,6)).

Writing: a product's changes become one payload ``{"product": {"sku": ..., ...}}`` of a bulk
``PUT /async/bulk/V1/products/bySku`` (a partial update: only what is sent changes): ``name``,
``price``, custom attributes for the description, the GTIN attribute and the sale, and with
legacy stock ``extension_attributes.stock_item``. MSI stock becomes source items
``{"sku", "source_code", "quantity", "status"}`` (status 1 "in stock" while the quantity is
above 0). A sale window must start at midnight and end at 23:59 in the store's time zone,
since Magento keeps only the dates; other windows are refused, not rounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from omnisync.errors import ChangeRejected, Problem
from omnisync.markup import read_html, write_html
from omnisync.models import Change, Field, Money, Op, Record
from omnisync.normalize import clean_text, normalize_gtin
from omnisync.sdk.values import json_money

#: Product types that hold other products (or none of their own stock): never records.
CONTAINERS = frozenset({"configurable", "bundle", "grouped"})
CONFIGURABLE = "configurable"
#: What a pull asks for (``fields``): what a record is made of, and no more.
PRODUCT_FIELDS = (
    "items[id,sku,name,type_id,price,created_at,updated_at,custom_attributes,"
    "extension_attributes[stock_item[qty,manage_stock],configurable_product_links]],total_count"
)
#: The legacy stock of every product, alone (incremental pulls refresh it).
STOCK_FIELDS = (
    "items[id,sku,type_id,extension_attributes[stock_item[qty,manage_stock]]],total_count"
)
#: A configurable product's children, for parent links.
LINK_FIELDS = "items[id,sku,type_id,extension_attributes[configurable_product_links]],total_count"
SOURCE_FIELDS = "items[sku,source_code,quantity,status],total_count"
#: Magento's date-time text (``created_at``, dates of custom attributes).
MAGENTO_FORMAT = "%Y-%m-%d %H:%M:%S"
SALE_ATTRIBUTES = ("special_price", "special_from_date", "special_to_date")


@dataclass(frozen=True)
class Shop:
    """What reading and writing a store view needs: its base currency, its time zone (sale
    dates are in it) and the custom attribute holding GTINs."""

    currency: str
    zone: ZoneInfo
    gtin_attribute: str | None = None


# ------------------------------------------------------------------ reading


def amount(value: Any) -> Decimal | None:
    """A JSON number or a decimal text as an exact Decimal (a float by its shortest repr)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a number")
        return Decimal(repr(value))  # a float's shortest repr carries no padding zeros
    if isinstance(value, int | str):
        try:
            exact = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not exact.is_finite():
        raise ValueError(f"{value!r} is not a number")
    # "19.990000" (DECIMAL(20,6)) is 19.99: keep no more places than carry digits, but two.
    if _places(exact) > 2:
        trimmed = exact.normalize()
        exact = trimmed if _places(trimmed) > 2 else exact.quantize(Decimal("0.01"))
    return exact


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def attributes(product: Mapping[str, Any]) -> dict[str, Any]:
    """A product's ``custom_attributes`` by code."""
    found: dict[str, Any] = {}
    for item in product.get("custom_attributes") or ():
        if isinstance(item, Mapping) and isinstance(item.get("attribute_code"), str):
            found[item["attribute_code"]] = item.get("value")
    return found


def is_container(product: Mapping[str, Any]) -> bool:
    """Whether the product is not a sellable unit itself (configurable, bundle, grouped)."""
    return str(product.get("type_id") or "") in CONTAINERS


def links(product: Mapping[str, Any]) -> list[str] | None:
    """The ids of a configurable product's children; None when the answer does not say
    (``/V1/configurable-products/{sku}/children`` tells then)."""
    extension = product.get("extension_attributes")
    if not isinstance(extension, Mapping) or "configurable_product_links" not in extension:
        return None
    return [str(i) for i in extension.get("configurable_product_links") or ()]


def stamp(product: Mapping[str, Any]) -> str | None:
    """When the product last changed: ``updated_at`` (``2026-11-20 09:00:00``, UTC)."""
    value = product.get("updated_at") or product.get("created_at")
    return str(value) if value else None


def legacy_stock(product: Mapping[str, Any]) -> dict[str, int] | None:
    """The single stock of ``extension_attributes.stock_item`` (None unless it is managed)."""
    extension = product.get("extension_attributes")
    item = extension.get("stock_item") if isinstance(extension, Mapping) else None
    if (
        not isinstance(item, Mapping)
        or item.get("manage_stock") is False
        or item.get("qty") is None
    ):
        return None
    return {"default": _whole(item.get("qty"), "stock_item.qty")}


def _whole(value: Any, name: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the usual case, spared the Decimal
    number = amount(value)
    if number is None or number != number.to_integral_value():
        raise ValueError(f"{name} {value!r} is not a whole number")
    return int(number)


def source_quantity(item: Mapping[str, Any]) -> int:
    """The quantity of a source item, a whole number."""
    return _whole(item.get("quantity"), f"quantity of source {item.get('source_code')!r}")


def _text(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def _gtin(value: Any) -> str | None:
    if isinstance(value, str) and 8 <= len(value) <= 14 and value.isdigit() and value.isascii():
        return value.zfill(14)  # already clean: what normalize_gtin(clean_text(value)) gives
    text = _text(str(value) if isinstance(value, int) else value)
    if text is None:
        return None
    try:
        return normalize_gtin(text)  # 14 digits, as every source's GTINs are compared
    except ValueError:
        return text  # a free-text attribute; the diff shows it as it is


def _date(value: Any, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """A sale date (``2026-11-20 00:00:00`` or ``2026-11-20``) as the moment it starts, or for
    the end, the last second of that day, in the store's zone (then UTC)."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        day = datetime.fromisoformat(text[:10]).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date") from None
    moment = datetime.combine(day, time(23, 59, 59) if end else time(0), zone)
    return moment.astimezone(UTC)


def to_record(product: Mapping[str, Any], shop: Shop, origin: str) -> Record:
    """The record of a sellable product (stock and parent link are added by the caller).
    Raises ValueError for a value that cannot be read."""
    custom = attributes(product)
    price = amount(product.get("price"))
    record = Record(
        sku=str(product.get("sku") or "").strip(),
        title=_text(product.get("name")),
        description=read_html(custom.get("description")),
        gtin=_gtin(custom.get(shop.gtin_attribute)) if shop.gtin_attribute else None,
        price=Money(price, shop.currency) if price is not None else None,
        ids={"product_id": str(product.get("id"))},
        origin=origin,
    )
    special = amount(custom.get("special_price"))
    if special is not None:
        record.sale_price = Money(special, shop.currency)
        record.sale_start = _date(custom.get("special_from_date"), shop.zone, end=False)
        record.sale_end = _date(custom.get("special_to_date"), shop.zone, end=True)
    return record


@dataclass
class Catalogue:
    """What a pull gathers from its pages before it yields: records by product id, the
    configurables' child ids, stock per SKU (MSI or legacy), the types of the products seen
    and the problems met."""

    msi: bool
    records: dict[str, tuple[Record, str | None]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    #: Configurables whose listing lacked their links (``/children`` tells).
    unlinked: list[dict[str, Any]] = field(default_factory=list)
    stock: dict[str, dict[str, int]] = field(default_factory=dict)
    newest: str | None = None
    problems: list[Problem] = field(default_factory=list)
    #: The type of every product listed, by SKU (containers too).
    kinds: dict[str, str] = field(default_factory=dict)
    #: Child id → configurable id, once known.
    links: dict[str, str] = field(default_factory=dict)

    def add_products(self, items: Sequence[Mapping[str, Any]], shop: Shop, origin: str) -> None:
        for product in items:
            product_id = str(product.get("id"))
            self.kinds[str(product.get("sku"))] = str(product.get("type_id"))
            when = stamp(product)
            if when and (self.newest is None or when > self.newest):
                self.newest = when
            if str(product.get("type_id")) == CONFIGURABLE:
                self.add_links([product])
                continue
            if is_container(product):
                continue
            try:
                record = to_record(product, shop, origin)
                if not self.msi:
                    record.stock = legacy_stock(product)
            except (ValueError, ArithmeticError) as exc:
                self.problems.append(Problem(f"{origin}: SKU {product.get('sku')}", str(exc)))
                continue
            if not record.sku:
                self.problems.append(Problem(f"{origin}: product {product_id}", "no sku"))
                continue
            self.records[product_id] = (record, when)

    def add_links(self, items: Sequence[Mapping[str, Any]]) -> None:
        for product in items:
            children = links(product)
            if children is None:
                self.unlinked.append(dict(product))
            else:
                self.children[str(product.get("id"))] = children

    def add_sources(
        self, items: Sequence[Mapping[str, Any]], mapped: Mapping[str, str], origin: str
    ) -> None:
        """Source items, at the locations ``mapped`` gives their source codes (others are
        not compared)."""
        for item in items:
            location = mapped.get(str(item.get("source_code")))
            if location is None:
                continue
            try:
                quantity = source_quantity(item)
            except ValueError as exc:
                self.problems.append(Problem(f"{origin}: SKU {item.get('sku')}", str(exc)))
                continue
            at = self.stock.setdefault(str(item.get("sku")), {})
            at[location] = at.get(location, 0) + quantity

    def add_stock(self, items: Sequence[Mapping[str, Any]], origin: str) -> None:
        """Products' legacy stock items alone."""
        for product in items:
            if is_container(product):
                continue
            try:
                stock = legacy_stock(product)
            except ValueError as exc:
                self.problems.append(Problem(f"{origin}: SKU {product.get('sku')}", str(exc)))
                continue
            if stock is not None:
                self.stock[str(product.get("sku"))] = stock

    def finish(self, links: Mapping[str, str]) -> Iterator[tuple[Record, str | None]]:
        """The records with their stock and parent links (``links``: child id → parent id),
        in entity id order. The newest timestamp seen (a configurable's too) rides on the last
        one: the next incremental pull starts there."""
        ordered = sorted(self.records.items(), key=lambda item: _numeric(item[0]))
        for n, (product_id, (record, when)) in enumerate(ordered, start=1):
            if self.msi:
                record.stock = self.stock.get(record.sku)
            if product_id in links:
                record.ids["parent_id"] = links[product_id]
            yield record, (self.newest if n == len(ordered) else when)


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


# ------------------------------------------------------------------ writing


def ean(gtin: Any) -> str | None:
    """A planned GTIN as a shop attribute holds it: omnisync's 14 digits back in the shortest
    standard length they fit (GTIN-8, UPC-A, EAN-13, GTIN-14); other text as it is."""
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


def _money(value: Any, shop: Shop) -> Decimal | None:
    money = json_money(value)
    if money is None:
        return None
    if money.currency != shop.currency:
        raise ChangeRejected(
            f"the plan's amount is in {money.currency}, this store's base currency is "
            f"{shop.currency}; set the channel's expect.price.currency (and rate) or "
            "options.currency"
        )
    if money.amount < 0:
        raise ChangeRejected(f"a price cannot be negative ({money.amount})")
    return money.amount


def _number(value: Decimal) -> float | int:
    """An amount as the JSON number Magento's ``price`` takes, refused unless exact."""
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ChangeRejected(f"{value} has more digits than a JSON number carries exactly")
    return number


def sale_dates(value: Mapping[str, Any], zone: ZoneInfo) -> tuple[str, str]:
    """``special_from_date`` and ``special_to_date`` for a planned sale window ("" for an
    open side). Magento keeps dates, so the window must run from midnight to 23:59."""
    texts = []
    for key, end in (("start", False), ("end", True)):
        raw = value.get(key)
        if not raw:
            texts.append("")
            continue
        moment = datetime.fromisoformat(str(raw))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(zone)
        fits = (local.hour, local.minute) == ((23, 59) if end else (0, 0))
        if not fits:
            raise ChangeRejected(
                f"Magento keeps a sale's dates, not times: in the store's time zone ({zone.key}) "
                f"the sale must start at 00:00 and end at 23:59, and this one "
                f"{'ends' if end else 'starts'} {local:%Y-%m-%d %H:%M}"
            )
        texts.append(datetime.combine(local.date(), time(0)).strftime(MAGENTO_FORMAT))
    return texts[0], texts[1]


def product_payload(
    sku: str, changes: Sequence[Change], shop: Shop, *, msi: bool
) -> tuple[dict[str, Any] | None, dict[int, str]]:
    """The bulk payload setting the changes of one product (None when none can be sent), and
    why the others cannot, by their index in ``changes``. Stock changes with MSI are source
    items, not part of it."""
    product: dict[str, Any] = {"sku": sku}
    custom: dict[str, Any] = {}
    refused: dict[int, str] = {}
    for index, change in enumerate(changes):
        try:
            _set(product, custom, change, shop, msi=msi)
        except ChangeRejected as exc:
            refused[index] = str(exc)
    if custom:
        product["custom_attributes"] = [
            {"attribute_code": code, "value": value} for code, value in custom.items()
        ]
    return ({"product": product} if len(product) > 1 else None), refused


def _set(
    product: dict[str, Any], custom: dict[str, Any], change: Change, shop: Shop, *, msi: bool
) -> None:
    if change.op is not Op.UPDATE or change.field is None:
        raise ChangeRejected(
            f"the magento2 connector does not {change.op.value} products; do it in the "
            "Magento admin (or an import)"
        )
    field = Field(change.field)
    value = change.after
    if field is Field.TITLE:
        if not value:
            raise ChangeRejected("Magento needs a product name; the plan clears it")
        product["name"] = str(value)
    elif field is Field.DESCRIPTION:
        custom["description"] = write_html(value)
    elif field is Field.GTIN:
        if not shop.gtin_attribute:
            raise ChangeRejected(
                "set options.gtin_attribute: Magento has no GTIN attribute of its own"
            )
        custom[shop.gtin_attribute] = ean(value) or ""
    elif field is Field.PRICE:
        price = _money(value, shop)
        if price is None:
            raise ChangeRejected("Magento needs a price; the plan removes it")
        product["price"] = _number(price)
    elif field is Field.SALE_PRICE:
        special = _money(value, shop)
        if special is None:  # end the sale: "" clears a custom attribute
            custom.update(dict.fromkeys(SALE_ATTRIBUTES, ""))
        else:
            start, end = sale_dates(value, shop.zone)
            custom.update(
                special_price=f"{special:f}", special_from_date=start, special_to_date=end
            )
    elif field is Field.STOCK and not msi:
        if change.location not in (None, "default"):
            raise ChangeRejected(
                f"without MSI Magento keeps one stock per product, not per location "
                f"({change.location!r}); map it to location `default` or set options.msi: true"
            )
        quantity = stock_quantity(change)
        product.setdefault("extension_attributes", {})["stock_item"] = {
            "qty": quantity,
            "is_in_stock": quantity > 0,
        }
    else:
        raise ChangeRejected(f"the magento2 connector does not write {field.value}")


def stock_quantity(change: Change) -> int:
    """The stock a change sets: a whole number of at least 0."""
    quantity = change.after
    if quantity is None:
        raise ChangeRejected("Magento needs a stock quantity; the plan clears it")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise ChangeRejected(f"stock must be a whole number of at least 0, not {quantity!r}")
    return quantity


def source_item(sku: str, source_code: str, quantity: int) -> dict[str, Any]:
    """An MSI source item as ``POST /V1/inventory/source-items`` takes it."""
    return {
        "sku": sku,
        "source_code": source_code,
        "quantity": quantity,
        "status": 1 if quantity > 0 else 0,
    }
