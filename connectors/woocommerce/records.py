"""WooCommerce products and variations ↔ omnisync records, and changes → batch items.

The sellable unit is a simple product (or any type that is not a container) or a variation of
a variable product. Money comes as strings in the store currency (``"21.99"``, ``""`` for
none); sale windows are read and written through the ``_gmt`` fields only, so the site's time
zone never matters; stock is a single number that counts only while ``manage_stock`` is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from omnisync.errors import ChangeRejected
from omnisync.markup import read_html, write_html
from omnisync.models import Availability, Change, Field, Money, Record
from omnisync.normalize import clean_text, minor_units, normalize_gtin
from omnisync.sdk.mapping import ProblemCollector
from omnisync.sdk.values import json_money, json_to_record

#: Product fields a pull asks for (``_fields``): everything a record needs, nothing more.
PRODUCT_FIELDS = (
    "id",
    "type",
    "name",
    "sku",
    "description",
    "regular_price",
    "sale_price",
    "date_on_sale_from_gmt",
    "date_on_sale_to_gmt",
    "manage_stock",
    "stock_quantity",
    "stock_status",
    "global_unique_id",
    "date_modified_gmt",
    "variations",
)
VARIATION_FIELDS = tuple(f for f in PRODUCT_FIELDS if f not in ("type", "name", "variations"))

#: Product types that only group other products: never a record themselves.
GROUPED = "grouped"

_AVAILABILITY = {
    "instock": Availability.IN_STOCK,
    "outofstock": Availability.OUT_OF_STOCK,
    "onbackorder": Availability.BACKORDER,
}
_STOCK_STATUS = {value.value: key for key, value in _AVAILABILITY.items()}

#: WooCommerce's date-time form (no offset; the ``_gmt`` fields are UTC).
_GMT_FORMAT = "%Y-%m-%dT%H:%M:%S"


def is_container(product: dict[str, Any]) -> bool:
    """Whether a product holds variations (``variable``, ``variable-subscription``, ...)."""
    return str(product.get("type") or "").startswith("variable")


def is_sellable(product: dict[str, Any]) -> bool:
    """Whether a listed product is a record itself (not a variable or grouped container)."""
    return not is_container(product) and product.get("type") != GROUPED


def parse_gmt(value: Any) -> datetime | None:
    """A ``_gmt`` date-time (``2026-11-20T09:00:00``) as an aware UTC datetime."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_gmt(moment: datetime | None) -> str:
    """A datetime for a ``_gmt`` field; ``""`` clears the field (``null`` would be ignored)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # naive values in omnisync are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_GMT_FORMAT)


def format_amount(amount: Decimal, currency: str) -> str:
    """An amount as WooCommerce stores it: a plain decimal string with the currency's minor
    unit (``19.90``), keeping extra digits if the amount has them."""
    places = minor_units(currency)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return f"{amount:f}"
    return f"{amount.quantize(Decimal(1).scaleb(-places)):f}"


@dataclass(frozen=True)
class Target:
    """Where a record lives: a product, or a variation of a parent product."""

    product_id: int
    variation_id: int | None = None

    @property
    def id(self) -> int:
        return self.variation_id if self.variation_id is not None else self.product_id

    @property
    def batch_path(self) -> str:
        if self.variation_id is None:
            return "products/batch"
        return f"products/{self.product_id}/variations/batch"

    @classmethod
    def from_ids(cls, ids: dict[str, Any] | None) -> Target | None:
        """The target named by a record's ids (``product_id``, ``variation_id``), if any."""
        if not ids or not str(ids.get("product_id") or "").isdigit():
            return None
        variation = str(ids.get("variation_id") or "")
        return cls(int(ids["product_id"]), int(variation) if variation.isdigit() else None)

    def ids(self) -> dict[str, str]:
        ids = {"product_id": str(self.product_id)}
        if self.variation_id is not None:
            ids["variation_id"] = str(self.variation_id)
        return ids


# ---------------------------------------------------------------- reading


def to_record(
    obj: dict[str, Any],
    *,
    currency: str,
    target: Target,
    title: Any,
    origin: str,
    problems: ProblemCollector,
) -> Record | None:
    """One product or variation as a record; None (and a problem) when a value is unusable.

    ``title`` is the product's name (a variation shows its parent's name). Blank SKUs are the
    caller's business: such objects cannot be compared and are skipped before this.
    """
    sku = str(obj.get("sku") or "").strip()
    where = f"{origin} ({'variation' if target.variation_id else 'product'} {target.id}, SKU {sku})"
    found: list[str] = []

    def money(name: str) -> Money | None:
        text = str(obj.get(name) or "").strip()
        if not text:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            found.append(f"{name} {text!r} is not a number")
            return None
        if not amount.is_finite() or amount < 0:
            found.append(f"{name} {text!r} is not a price")
            return None
        return Money(amount, currency)

    def moment(name: str) -> datetime | None:
        try:
            return parse_gmt(obj.get(name))
        except ValueError:
            found.append(f"{name} {obj.get(name)!r} is not a date-time")
            return None

    record = Record(sku=sku, ids=target.ids(), origin=origin)
    record.title = _text(title)
    record.description = read_html(obj.get("description"))
    record.gtin = _gtin(obj.get("global_unique_id"))
    record.price = money("regular_price")
    sale = money("sale_price")
    if sale is not None:
        record.sale_price = sale
        record.sale_start = moment("date_on_sale_from_gmt")
        record.sale_end = moment("date_on_sale_to_gmt")
    # "parent" (a variation whose parent manages the stock) counts as managed: the quantity
    # shown is the shared one.
    if obj.get("manage_stock") not in (False, None, "", "no"):
        try:
            record.stock = {"default": int(obj.get("stock_quantity") or 0)}
        except (TypeError, ValueError):
            found.append(f"stock_quantity {obj.get('stock_quantity')!r} is not a whole number")
    record.availability = _AVAILABILITY.get(str(obj.get("stock_status") or ""))
    for message in found:
        problems.add(where, message)
    return None if found else record


def _text(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def _gtin(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return normalize_gtin(text)
    except ValueError:
        return text  # shown as it is; the check reports it as differing


# ---------------------------------------------------------------- writing


def update_fields(change: Change, currency: str) -> dict[str, Any]:
    """The fields of a batch ``update`` item that set ``change`` (without the ``id``)."""
    assert change.field is not None
    value = change.after
    match Field(change.field):
        case Field.PRICE:
            money = _money(value, currency)
            return {"regular_price": format_amount(money.amount, currency) if money else ""}
        case Field.SALE_PRICE:
            money = _money(value, currency)
            if money is None:  # end the sale: empty price and dates ("" clears, null is ignored)
                return {"sale_price": "", "date_on_sale_from_gmt": "", "date_on_sale_to_gmt": ""}
            start = parse_gmt(value.get("start"))
            end = parse_gmt(value.get("end"))
            return {
                "sale_price": format_amount(money.amount, currency),
                "date_on_sale_from_gmt": format_gmt(start),
                "date_on_sale_to_gmt": format_gmt(end),
            }
        case Field.STOCK:
            if change.location not in (None, "default"):
                raise ChangeRejected(
                    f"WooCommerce keeps one stock per product, not per location "
                    f"({change.location!r}); map the shop's stock to location `default`"
                )
            # stock_quantity is ignored unless the product manages its stock.
            return {"manage_stock": True, "stock_quantity": int(value or 0)}
        case Field.AVAILABILITY:
            status = _STOCK_STATUS.get(str(value or ""))
            if status is None:
                raise ChangeRejected(f"WooCommerce has no stock status for {value!r}")
            return {"stock_status": status}
        case Field.TITLE:
            if not value:
                raise ChangeRejected("WooCommerce products need a name; refusing to clear it")
            return {"name": str(value)}
        case Field.DESCRIPTION:
            return {"description": write_html(value)}
        case Field.GTIN:
            return {"global_unique_id": _write_gtin(value)}
        case other:
            raise ChangeRejected(f"the woocommerce connector does not write {other.value}")


def create_item(change: Change, currency: str, status: str) -> dict[str, Any]:
    """A batch ``create`` item (a simple product) for a create change."""
    record = json_to_record(change.after or {"sku": change.sku})
    if record.ids.get("variation_id"):
        raise ChangeRejected(
            "cannot re-create a variation (the connector creates simple products); "
            "restore it in WooCommerce"
        )
    item: dict[str, Any] = {
        "type": "simple",
        "status": status,
        "sku": change.sku,
        "name": record.title or change.sku,
    }
    if record.description is not None:
        item["description"] = write_html(record.description)
    if record.gtin is not None:
        item["global_unique_id"] = _write_gtin(record.gtin)
    for field, money, extra in (
        (Field.PRICE, record.price, {}),
        (
            Field.SALE_PRICE,
            record.sale_price,
            {
                "date_on_sale_from_gmt": format_gmt(record.sale_start),
                "date_on_sale_to_gmt": format_gmt(record.sale_end),
            },
        ),
    ):
        if money is None:
            continue
        if money.currency != currency:
            raise ChangeRejected(_currency_message(money.currency, currency, field.value))
        name = "regular_price" if field is Field.PRICE else "sale_price"
        item[name] = format_amount(money.amount, currency)
        item.update(extra)
    if record.stock is not None:
        item["manage_stock"] = True
        item["stock_quantity"] = sum(record.stock.values())
    elif record.availability is not None and record.availability.value in _STOCK_STATUS:
        item["stock_status"] = _STOCK_STATUS[record.availability.value]
    return item


def _money(value: Any, currency: str) -> Money | None:
    money = json_money(value)
    if money is not None and money.currency != currency:
        raise ChangeRejected(_currency_message(money.currency, currency, "price"))
    return money


def _currency_message(given: str, store: str, field: str) -> str:
    return (
        f"the shop's currency is {store}, the {field} is in {given}; "
        "set the channel's expect.price.currency (and rate) or options.currency"
    )


def _write_gtin(value: Any) -> str:
    """A GTIN as the shop shows it: omnisync keeps 14 digits, shops the 13 of an EAN."""
    text = str(value or "").strip()
    if len(text) == 14 and text.isdigit() and text.startswith("0"):
        return text[1:]
    return text
