"""The write side of the sql connector: configured statements and their bound parameters.

Values reach the database only as bound parameters (``:price_cents``), never formatted into
the SQL text. The parameters a ``write.<field>`` statement may use:

* ``:sku``, ``:field`` (``price``), ``:location`` (the stock location of the change, or NULL),
  ``:value`` (the new value: Decimal for prices, int for stock, text otherwise) and
  ``:before`` (the value the plan replaces, same form), for every field;
* ``price``: ``:price`` (Decimal, major units: ``19.99``), ``:price_cents`` (int, the
  currency's minor unit: ``1999``; for JPY yen), ``:currency`` (``EUR``);
* ``sale_price``: ``:sale_price``, ``:sale_price_cents`` (NULL when the sale is removed),
  ``:currency``, ``:sale_start``, ``:sale_end`` (UTC; time-zone aware on PostgreSQL, naive
  UTC on MySQL/MariaDB and SQLite, which have no zone type);
* ``stock``: ``:quantity`` (int);
* ``title``, ``description``, ``gtin``, ``brand``, ``availability``: the field's name as text;
  ``attributes``: ``:attributes``, a JSON object as text;
* every id of the record (``mapping.ids``), by its name: ``:article_id``.

``create`` and ``delete`` statements get the whole record: ``:sku``, ``:title``,
``:description``, ``:gtin``, ``:brand``, ``:attributes``, ``:availability``, ``:price``,
``:price_cents``, ``:currency``, ``:sale_price``, ``:sale_price_cents``, ``:sale_start``,
``:sale_end``, ``:vat_rate`` and ``:quantity`` (the total over locations), NULL where the
record has no value, plus its ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from omnisync.errors import ChangeRejected
from omnisync.models import Change, Field, Money, Op, Record
from omnisync.normalize import minor_units
from omnisync.sdk.values import json_money, json_to_record

CREATE = "create"
DELETE = "delete"
#: Keys of ``options.write``: a field, or a whole-record operation.
WRITE_KEYS = (*(f.value for f in Field), CREATE, DELETE)

_COMMON = frozenset({"sku", "field", "location", "value", "before"})
_FIELD_PARAMS: dict[str, frozenset[str]] = {
    Field.PRICE: frozenset({"price", "price_cents", "currency"}),
    Field.SALE_PRICE: frozenset(
        {"sale_price", "sale_price_cents", "currency", "sale_start", "sale_end"}
    ),
    Field.STOCK: frozenset({"quantity"}),
    Field.AVAILABILITY: frozenset({"availability"}),
    Field.TITLE: frozenset({"title"}),
    Field.DESCRIPTION: frozenset({"description"}),
    Field.GTIN: frozenset({"gtin"}),
    Field.BRAND: frozenset({"brand"}),
    Field.ATTRIBUTES: frozenset({"attributes"}),
}
_RECORD_PARAMS = frozenset(
    {
        "sku",
        "title",
        "description",
        "gtin",
        "brand",
        "attributes",
        "availability",
        "price",
        "price_cents",
        "currency",
        "sale_price",
        "sale_price_cents",
        "sale_start",
        "sale_end",
        "vat_rate",
        "quantity",
    }
)
#: Every documented parameter name; an id may not take one of these names.
RESERVED = _COMMON | _RECORD_PARAMS


def parameters_for(key: str) -> frozenset[str]:
    """The documented parameters a ``write.<key>`` statement may bind (ids come on top)."""
    if key in (CREATE, DELETE):
        return _RECORD_PARAMS
    return _COMMON | _FIELD_PARAMS[key]


def bind_names(statement: str) -> list[str]:
    """The ``:name`` parameters of a statement, as SQLAlchemy's ``text()`` reads them."""
    return list(sa.text(statement).compile().params)


class _Lazy:
    """A parameter whose computation can fail: an error only if a statement binds it."""

    def __init__(self, error: str) -> None:
        self.error = error


def _cents(money: Money | None) -> Any:
    if money is None:
        return None
    scaled = money.amount.scaleb(minor_units(money.currency))
    if scaled != scaled.to_integral_value():
        return _Lazy(
            f"{money.amount} {money.currency} has more decimals than the {money.currency} "
            "minor unit; cannot bind it as whole minor units"
        )
    return int(scaled)


def _moment(value: datetime | None, aware: bool) -> datetime | None:
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # MySQL and SQLite have no time zone type; they store the UTC wall time.
    return moment if aware else moment.replace(tzinfo=None)


def _attributes(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _scalar(field: str, value: Any) -> Any:
    """A field's JSON value as one database value (``:value``, ``:before``)."""
    if value is None:
        return None
    if field in (Field.PRICE, Field.SALE_PRICE):
        money = json_money(value)
        return money.amount if money else None
    if field == Field.STOCK:
        return int(value)
    if field == Field.ATTRIBUTES:
        return _attributes(value)
    return str(value)


def _currency(record: Record) -> str | None:
    money = record.price or record.sale_price
    return money.currency if money else None


def record_parameters(record: Record, *, aware: bool) -> dict[str, Any]:
    """Every record parameter of a whole record (create and delete)."""
    return {
        "sku": record.sku,
        "title": record.title,
        "description": record.description,
        "gtin": record.gtin,
        "brand": record.brand,
        "attributes": _attributes(record.attributes),
        "availability": record.availability.value if record.availability else None,
        "price": record.price.amount if record.price else None,
        "price_cents": _cents(record.price),
        "currency": _currency(record),
        "sale_price": record.sale_price.amount if record.sale_price else None,
        "sale_price_cents": _cents(record.sale_price),
        "sale_start": _moment(record.sale_start, aware),
        "sale_end": _moment(record.sale_end, aware),
        "vat_rate": record.vat_rate,
        "quantity": sum(record.stock.values()) if record.stock is not None else None,
    }


def change_parameters(change: Change, *, aware: bool) -> dict[str, Any]:
    """All parameters of a change; a value may be a :class:`_Lazy` error."""
    if change.op in (Op.CREATE, Op.DELETE):
        whole = change.after if change.op is Op.CREATE else change.before
        if not isinstance(whole, Mapping):
            raise ChangeRejected(f"a {change.op.value} change needs the whole record")
        params = record_parameters(json_to_record(dict(whole)), aware=aware)
        params["sku"] = change.sku
        ids = {**dict(whole.get("ids") or {}), **change.ids}
    else:
        if change.field is None:
            raise ChangeRejected("an update change names no field")
        field = Field(change.field)
        params = {
            "sku": change.sku,
            "field": field.value,
            "location": change.location,
            "value": _scalar(field, change.after),
            "before": _scalar(field, change.before),
        }
        params.update(_field_parameters(field, change.after, aware))
        ids = dict(change.ids)
    for name, value in ids.items():
        if name not in RESERVED:
            params[name] = value
    return params


def _field_parameters(field: Field, value: Any, aware: bool) -> dict[str, Any]:
    match field:
        case Field.PRICE:
            money = json_money(value)
            return {
                "price": money.amount if money else None,
                "price_cents": _cents(money),
                "currency": money.currency if money else None,
            }
        case Field.SALE_PRICE:
            money = json_money(value)
            start = datetime.fromisoformat(value["start"]) if value and value.get("start") else None
            end = datetime.fromisoformat(value["end"]) if value and value.get("end") else None
            return {
                "sale_price": money.amount if money else None,
                "sale_price_cents": _cents(money),
                "currency": money.currency if money else None,
                "sale_start": _moment(start, aware),
                "sale_end": _moment(end, aware),
            }
        case Field.STOCK:
            return {"quantity": None if value is None else int(value)}
        case Field.ATTRIBUTES:
            return {"attributes": _attributes(value)}
        case _:
            return {field.value: None if value is None else str(value)}


def bound(params: Mapping[str, Any], names: Iterable[str], sku: str) -> dict[str, Any]:
    """The parameters ``names`` of one statement; :class:`ChangeRejected` when one cannot be
    given (an id the record lacks, an amount finer than the currency's minor unit)."""
    values: dict[str, Any] = {}
    for name in names:
        if name not in params:
            raise ChangeRejected(
                f"the record of SKU {sku} has no id {name!r} (read it with mapping.ids)"
            )
        value = params[name]
        if isinstance(value, _Lazy):
            raise ChangeRejected(value.error)
        values[name] = value
    return values


def for_driver(values: dict[str, Any], backend: str) -> dict[str, Any]:
    """``values`` as the backend's driver takes them. psycopg and PyMySQL bind a Decimal
    exactly; Python's sqlite3 refuses it ("type 'decimal.Decimal' is not supported"), so
    SQLite gets the exact text (``'19.99'``), which a NUMERIC or DECIMAL column converts as
    it would the literal 19.99 — never a binary float made here."""
    if backend != "sqlite":
        return values
    return {k: f"{v:f}" if isinstance(v, Decimal) else v for k, v in values.items()}


def displayable(value: Any) -> Any:
    """A parameter value for ``--dry-run`` output (JSON-friendly, exact)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return value
