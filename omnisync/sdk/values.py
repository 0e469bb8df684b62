"""Field values as JSON: the one form plans, the journal and connectors exchange.

=============  ======================================================================
field          JSON value
=============  ======================================================================
price          ``{"amount": "19.99", "currency": "EUR"}`` (amount a decimal *string*)
sale_price     the same plus ``"start"``/``"end"`` (ISO 8601 UTC or null); null = no sale
stock          int, at one location (``Change.location``) or the total
availability   ``"in_stock"`` / ``"out_of_stock"`` / ``"backorder"`` / ``"preorder"``
title, ...     string
attributes     object
=============  ======================================================================

A whole record (creates, deletes) is :func:`record_to_json`. :func:`same` decides whether a
channel's current value still equals a planned one, with the normalisation the diff uses.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from types import EllipsisType
from typing import Any
from zoneinfo import ZoneInfo

from omnisync.models import Availability, Change, Field, Money, Op, Record
from omnisync.normalize import minor_units


def money_json(money: Money | None) -> dict[str, str] | None:
    if money is None:
        return None
    return {"amount": f"{money.amount.normalize():f}", "currency": money.currency}


def json_money(value: Any) -> Money | None:
    if not value:
        return None
    return Money(Decimal(str(value["amount"])), str(value["currency"]))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # engine values are naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sale_json(
    money: Money | None, start: datetime | None = None, end: datetime | None = None
) -> dict[str, Any] | None:
    if money is None:
        return None
    data: dict[str, Any] = dict(money_json(money) or {})
    data["start"] = _iso(start)
    data["end"] = _iso(end)
    return data


def field_value(record: Record | None, field: str, location: str | None = None) -> Any:
    """The JSON value of ``field`` (at ``location``) in ``record``; None when it has none."""
    if record is None:
        return None
    match Field(field):
        case Field.PRICE:
            if location is not None:  # a location's own price (Record.location_prices)
                return money_json((record.location_prices or {}).get(location))
            return money_json(record.price)
        case Field.SALE_PRICE:
            return sale_json(record.sale_price, record.sale_start, record.sale_end)
        case Field.STOCK:
            if record.stock is None:
                return None
            if location is None:
                return sum(record.stock.values())
            return record.stock.get(location)
        case Field.AVAILABILITY:
            return record.availability.value if record.availability else None
        case Field.ATTRIBUTES:
            return record.attributes
        case other:
            value = getattr(record, other.value)
            return value if value is None else str(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(unicodedata.normalize("NFC", str(value)).split())
    return text or None


def same(field: str, a: Any, b: Any) -> bool:
    """Whether two JSON values of ``field`` mean the same (``19.9`` = ``19.90``, whitespace, ...)."""
    match Field(field):
        case Field.PRICE:
            x, y = json_money(a), json_money(b)
            return (
                x == y
                if x is None or y is None
                else (x.amount, x.currency) == (y.amount, y.currency)
            )
        case Field.SALE_PRICE:
            if not a or not b:
                return not a and not b
            if not same(Field.PRICE, a, b):
                return False

            def minute(v: Any) -> datetime | None:
                moment = _moment(v)
                return moment.replace(second=0, microsecond=0) if moment else None

            return minute(a.get("start")) == minute(b.get("start")) and minute(
                a.get("end")
            ) == minute(b.get("end"))
        case Field.STOCK:
            return (a or 0) == (b or 0)
        case Field.GTIN:
            return (str(a).zfill(14) if a else None) == (str(b).zfill(14) if b else None)
        case Field.ATTRIBUTES:
            return (a or None) == (b or None)
        case _:
            return _text(a) == _text(b)


def current_value(
    change: Change, record: Record | None, location: str | EllipsisType | None = ...
) -> Any:
    """What ``change`` finds in the channel's ``record`` (None: the channel has no such SKU):
    for an update the JSON value of its field, at ``location`` (by default the change's own);
    for a create or delete the whole record, or None. What ``Connector.current`` returns."""
    if change.op is Op.UPDATE:
        assert change.field is not None
        return field_value(record, change.field, change.location if location is ... else location)
    return record_to_json(record) if record else None


def record_to_json(record: Record) -> dict[str, Any]:
    """A whole record as JSON (for creates and deletes)."""
    data: dict[str, Any] = {"sku": record.sku}
    for name in ("title", "description", "gtin", "brand"):
        value = getattr(record, name)
        if value is not None:
            data[name] = value
    if record.attributes:
        data["attributes"] = record.attributes
    if record.price:
        data["price"] = money_json(record.price)
    if record.sale_price:
        data["sale_price"] = sale_json(record.sale_price, record.sale_start, record.sale_end)
    if record.vat_rate is not None:
        data["vat_rate"] = f"{record.vat_rate.normalize():f}"
    if record.stock is not None:
        data["stock"] = dict(record.stock)
    if record.location_prices:
        data["location_prices"] = {
            location: money_json(price) for location, price in record.location_prices.items()
        }
    if record.availability:
        data["availability"] = record.availability.value
    if record.ids:
        data["ids"] = dict(record.ids)
    if record.modified_at is not None:
        data["modified_at"] = record.modified_at.isoformat()
    if record.parent is not None:
        data["parent"] = record.parent
    return data


def json_to_record(data: dict[str, Any]) -> Record:
    """The inverse of :func:`record_to_json`."""
    sale = data.get("sale_price")
    return Record(
        sku=str(data["sku"]),
        title=data.get("title"),
        description=data.get("description"),
        gtin=data.get("gtin"),
        brand=data.get("brand"),
        attributes=data.get("attributes"),
        price=json_money(data.get("price")),
        sale_price=json_money(sale),
        sale_start=_moment(sale.get("start")) if sale else None,
        sale_end=_moment(sale.get("end")) if sale else None,
        vat_rate=Decimal(data["vat_rate"]) if data.get("vat_rate") is not None else None,
        stock={str(k): int(v) for k, v in data["stock"].items()}
        if data.get("stock") is not None
        else None,
        availability=Availability(data["availability"]) if data.get("availability") else None,
        location_prices={
            str(k): money for k, v in data["location_prices"].items() if (money := json_money(v))
        }
        if data.get("location_prices")
        else None,
        ids=dict(data.get("ids") or {}),
        modified_at=_moment(data.get("modified_at")),
        parent=data.get("parent"),
    )


def modified_time(text: str | None) -> datetime | None:
    """An API's modification timestamp (``2026-11-20T09:00:00Z``, WooCommerce's
    ``…_gmt`` and Magento's ``2026-11-20 09:00:00``, both UTC without an offset) as an aware
    moment; None for none or a form it cannot read (the record is then never held back)."""
    if not text:
        return None
    try:
        return _moment(text)
    except ValueError:
        return None


def apply_value(record: Record, field: str, location: str | None, value: Any) -> None:
    """Set ``field`` (at ``location``) of ``record`` to the JSON ``value`` (file write sides use this)."""
    match Field(field):
        case Field.PRICE:
            record.price = json_money(value)
        case Field.SALE_PRICE:
            record.sale_price = json_money(value)
            record.sale_start = _moment(value.get("start")) if value else None
            record.sale_end = _moment(value.get("end")) if value else None
        case Field.STOCK:
            stock = dict(record.stock or {})
            stock[location or "default"] = int(value or 0)
            record.stock = stock
        case Field.AVAILABILITY:
            record.availability = Availability(value) if value else None
        case Field.ATTRIBUTES:
            record.attributes = value
        case other:
            setattr(record, other.value, value)


def utc_naive(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A moment as the tables store it: naive values are in ``zone``; UTC without offset."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC).replace(tzinfo=None)


def money(amount: Decimal | None, currency: str | None) -> str | None:
    """``11.99 EUR``: at least the currency's minor unit of places, no trailing zeros beyond."""
    if amount is None:
        return None
    # The text depends on the value and its sign only (-0 shows as -0.00); prices repeat.
    return _money(amount, amount.is_signed(), currency)


@lru_cache(maxsize=1 << 16)
def _money(amount: Decimal, signed: bool, currency: str | None) -> str:
    places = minor_units(currency) if currency else 2
    value = amount.normalize()
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent > -places:
        value = amount.quantize(Decimal(1).scaleb(-places))
    text = f"{value:f}"
    return f"{text} {currency}" if currency else text
