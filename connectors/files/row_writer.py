"""What a change means for a row's cells: :class:`RowWriter` writes JSON field values
(:mod:`omnisync.sdk.values`) into the columns a mapping names — the Shopify compare-at pair, a
sale's dates, a stock location's column, money with or without its currency.

A value is written in the style of the cell it replaces, else of the column's other cells,
else of the options (how a single value is spelled is :mod:`.styles`).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from omnisync.errors import ChangeRejected
from omnisync.markup import text_html
from omnisync.models import Availability, Field, Money, Record
from omnisync.normalize import (
    clean_text,
    minor_units,
    normalize_gtin,
    parse_datetime,
    parse_int,
    parse_money,
    parse_sale_window,
)
from omnisync.sdk.mapping import DEFAULT_LOCATION, FieldMapping, ParseOptions
from omnisync.sdk.values import json_money, sale_json

from .document import Cells, Document
from .styles import (
    DEFAULT_DATE,
    DEFAULT_WINDOW,
    MISSING,
    AmountStyle,
    DateStyle,
    availability_text,
    blank,
    format_amount,
    gtin_text,
    minute,
    parse_moment,
    recode,
)


class RowWriter:
    """Writes JSON field values (:mod:`omnisync.sdk.values`) into a row's columns, per a mapping."""

    def __init__(
        self, mapping: FieldMapping, parse: ParseOptions, zone: tzinfo | None, document: Document
    ) -> None:
        self.mapping = mapping
        self.parse = parse
        self.zone = zone
        self.document = document

    # -- which columns -----------------------------------------------------------------------

    def column(self, field: Field, location: str | None = None) -> str:
        """The column ``field`` (at ``location``) is written to; :class:`ChangeRejected` if none."""
        m = self.mapping
        if field is Field.STOCK:
            return self._stock_column(location)
        if field is Field.SALE_PRICE:
            column = (
                m.sale_price or m.compare_at_price or m.sale_window or m.sale_start or m.sale_end
            )
        elif field is Field.ATTRIBUTES:
            column = m.attributes if isinstance(m.attributes, str) else "attributes"
            if m.attributes is None:
                column = None
        else:
            column = getattr(m, field.value)
        if not column:
            raise ChangeRejected(
                f"{field.value} is not mapped to a column (options.mapping.{field.value})"
            )
        return column

    def _stock_column(self, location: str | None) -> str:
        spec = self.mapping.stock
        if spec is None:
            raise ChangeRejected("stock is not mapped to a column (options.mapping.stock)")
        if isinstance(spec, str):
            return spec
        if location is None:
            if len(spec) == 1:
                return next(iter(spec.values()))
            raise ChangeRejected(
                "channel has several stock locations; map them with expect.stock.locations"
            )
        if location not in spec:
            mapped = ", ".join(spec)
            raise ChangeRejected(
                f"no stock column for location {location!r} (mapped locations: {mapped})"
            )
        return spec[location]

    def comparable(self, field: str, value: Any) -> Any:
        """``value`` without the parts this mapping cannot hold (sale dates without a column)."""
        if field != Field.SALE_PRICE or not isinstance(value, dict):
            return value
        m = self.mapping
        value = dict(value)
        if not (m.sale_window or m.sale_start):
            value["start"] = None
        if not (m.sale_window or m.sale_end):
            value["end"] = None
        return value

    # -- updates -----------------------------------------------------------------------------

    def update(
        self, cells: Cells, record: Record | None, field: Field, location: str | None, value: Any
    ) -> None:
        """Set ``field`` (at ``location``) of the row to the JSON ``value``."""
        column = self.column(field, location)
        if field is Field.DESCRIPTION and value is not None:
            value = self._description(str(value))
        match field:
            case Field.PRICE:
                self._price(cells, record, json_money(value))
            case Field.SALE_PRICE:
                self._sale(cells, record, value)
            case Field.STOCK:
                self._stock(cells, column, location, value)
            case Field.AVAILABILITY:
                self._put(
                    cells,
                    column,
                    None
                    if value is None
                    else self._availability(cells, column, Availability(value)),
                )
            case Field.GTIN:
                self._gtin(cells, column, value)
            case Field.ATTRIBUTES:
                self._attributes(cells, value)
            case _:
                text = None if value is None else str(value)
                inherited = cells.inherited(column)
                if (
                    text is not None
                    and not blank(inherited)
                    and clean_text(inherited) == clean_text(text)
                ):
                    text = None  # the row inherits it from its group's first row: leave it blank
                self._put(cells, column, text)

    # -- creates -----------------------------------------------------------------------------

    def create(self, cells: Cells, record: Record) -> None:
        """Fill a new row with every mapped field of ``record``."""
        m = self.mapping
        self._put(cells, m.sku, record.sku)
        for name in ("title", "description", "brand"):
            column = getattr(m, name)
            value = getattr(record, name)
            if column and value is not None:
                self._put(
                    cells, column, self._description(value) if name == "description" else value
                )
        if m.gtin and record.gtin:
            self._gtin(cells, m.gtin, record.gtin)
        if m.attributes and record.attributes:
            self._attributes(cells, record.attributes)
        if m.price and record.price:
            self._price(cells, None, record.price)
        if record.sale_price and (m.sale_price or m.compare_at_price):
            self._sale(cells, record, _sale_value(record))
        if m.vat_rate and record.vat_rate is not None:
            self._put(cells, m.vat_rate, self._rate(cells, m.vat_rate, record.vat_rate))
        if m.stock and record.stock:
            for location, quantity in record.stock.items():
                at = None if location == DEFAULT_LOCATION else location
                self._stock(cells, self._stock_column(at), at, quantity)
        if m.availability and record.availability:
            self._put(
                cells,
                m.availability,
                self._availability(cells, m.availability, record.availability),
            )
        for name, column in m.ids.items():
            if record.ids.get(name):
                self._put(cells, column, record.ids[name])

    # -- fields ------------------------------------------------------------------------------

    def _price(self, cells: Cells, record: Record | None, money: Money | None) -> None:
        m = self.mapping
        assert m.price is not None
        if money is not None:
            self._currency(cells, money.currency)
        if m.compare_at_price:
            if record is None and not blank(cells.get(m.compare_at_price)):
                raise ChangeRejected(
                    "the row's current prices cannot be read, so the compare-at pair cannot be set"
                )
            sale = record.sale_price if record else None
            if money is not None and sale is not None and sale.amount < money.amount:
                # On sale: the price column shows the sale price, compare-at the regular one.
                self._money(cells, m.price, sale)
                self._money(cells, m.compare_at_price, money)
            else:
                self._money(cells, m.price, money)
                self._money(cells, m.compare_at_price, None)
            return
        self._money(cells, m.price, money)

    def _sale(self, cells: Cells, record: Record | None, value: Any) -> None:
        m = self.mapping
        sale = json_money(value)
        if sale is not None:
            self._currency(cells, sale.currency)
        if m.compare_at_price:
            assert m.price is not None
            regular = record.price if record else None
            if record is None:
                raise ChangeRejected(
                    "the row's current prices cannot be read, so the compare-at pair cannot be set"
                )
            if sale is None:
                self._money(cells, m.price, regular)
                self._money(cells, m.compare_at_price, None)
            elif regular is None:
                raise ChangeRejected(
                    f"there is no regular price to show the sale price {sale} against"
                )
            elif sale.amount >= regular.amount:
                raise ChangeRejected(
                    f"the sale price {sale} is not below the regular price {regular}; "
                    f"column {m.compare_at_price!r} can only show a lower sale price"
                )
            else:
                self._money(cells, m.price, sale)
                self._money(cells, m.compare_at_price, regular)
        elif m.sale_price:
            self._money(cells, m.sale_price, sale)
        start = parse_moment(value.get("start")) if value else None
        end = parse_moment(value.get("end")) if value else None
        if m.sale_window:
            self._window(cells, m.sale_window, start, end)
        if m.sale_start:
            self._moment(cells, m.sale_start, start, end=False)
        if m.sale_end:
            self._moment(cells, m.sale_end, end, end=True)

    def _implicit_currency(self, cells: Cells) -> str | None:
        """The currency an amount without its own code is in: the row's currency column, else
        options.currency."""
        if self.mapping.currency:
            raw = cells.get(self.mapping.currency)
            if not blank(raw):
                return str(raw).strip().upper()
        return self.parse.currency

    def _currency(self, cells: Cells, currency: str) -> None:
        column = self.mapping.currency
        if not column:
            return
        # Also fill a blank cell of a column the file fills (a new row of an ERP export).
        filled = blank(cells.get(column)) and self.document.sample(column) is not None
        if filled or self._implicit_currency(cells) != currency:
            self._put(cells, column, currency)

    def _template(self, cells: Cells, column: str, *siblings: str | None) -> Any:
        """What a new value of ``column`` should look like: the cell, else the column's first
        value in the file, else a sibling column's."""
        old = cells.get(column)
        if not blank(old):
            return old
        for name in (column, *siblings):
            if name:
                sample = self.document.sample(name)
                if sample is not None:
                    return sample
        return None

    def _read_money(self, raw: Any, implicit: str | None) -> Money | None:
        if blank(raw):
            return None
        if isinstance(raw, dict):
            amount = raw.get("amount", raw.get("value"))
            code = raw.get("currency", raw.get("currency_code", raw.get("currencyCode")))
            raw, implicit = amount, (str(code).upper() if code else implicit)
        try:
            return parse_money(
                raw,
                decimal=self.parse.decimal,
                thousands=self.parse.thousands,
                default_currency=implicit,
            )
        except ValueError:
            return None

    def _money(self, cells: Cells, column: str, money: Money | None) -> None:
        old = cells.get(column)
        implicit = self._implicit_currency(cells)
        if money is None:
            if not blank(old):
                self._put(cells, column, None)
            return
        current = self._read_money(old, implicit)
        if current is not None and (current.amount, current.currency) == (
            money.amount,
            money.currency,
        ):
            return  # already says so: keep the cell as written
        template = self._template(cells, column, self.mapping.price, self.mapping.compare_at_price)
        places = minor_units(money.currency)
        if cells.typed and isinstance(template, dict):
            key = "value" if "value" in template and "amount" not in template else "amount"
            amount = template.get(key)
            new = dict(old) if isinstance(old, dict) else {}
            new[key] = _typed_amount(money.amount, places, amount)
            for code_key in ("currency", "currency_code", "currencyCode"):
                if code_key in template:
                    new[code_key] = money.currency
                    break
            else:
                if implicit != money.currency:
                    new["currency"] = money.currency
            self._put(cells, column, new)
            return
        if cells.typed and not isinstance(template, str):
            if implicit != money.currency:
                raise ChangeRejected(
                    f"column {column!r} holds plain numbers in {implicit or 'no currency'}; "
                    f"an amount in {money.currency} cannot be written there"
                )
            self._put(cells, column, _typed_amount(money.amount, places, template))
            return
        style = AmountStyle.of(template) if isinstance(template, str) else None
        decimal = (
            self.parse.decimal if self.parse.decimal != "auto" else (style and style.decimal) or "."
        )
        thousands = (
            self.parse.thousands if self.parse.thousands else (style.thousands if style else None)
        )
        number = format_amount(
            money.amount, places, decimal, None if thousands == decimal else thousands
        )
        prefix, suffix = (style.prefix, style.suffix) if style else ("", "")
        if style is not None and style.marked:
            prefix, suffix = recode(prefix, money.currency), recode(suffix, money.currency)
        elif implicit != money.currency:
            suffix = f" {money.currency}"
        self._put(cells, column, prefix + number + suffix)

    def _moment(self, cells: Cells, column: str, moment: datetime | None, *, end: bool) -> None:
        old = cells.get(column)
        if moment is None:
            if not blank(old):
                self._put(cells, column, None)
            return
        if not blank(old):
            try:
                current = parse_datetime(str(old), self.parse.date_format, end_of_day=end)
            except ValueError:
                current = None
            if minute(current, self.zone) == minute(moment, self.zone):
                return
        self._put(
            cells,
            column,
            self._date_style(cells, column).format(moment, self.zone, end=end, column=column),
        )

    def _date_style(self, cells: Cells, column: str) -> DateStyle:
        if self.parse.date_format:
            return DateStyle(self.parse.date_format)
        m = self.mapping
        template = self._template(cells, column, m.sale_start, m.sale_end)
        return (DateStyle.of(template) if isinstance(template, str) else None) or DEFAULT_DATE

    def _window(
        self, cells: Cells, column: str, start: datetime | None, end: datetime | None
    ) -> None:
        old = cells.get(column)
        if start is None and end is None:
            if not blank(old):
                self._put(cells, column, None)
            return
        if not blank(old):
            try:
                current = parse_sale_window(str(old))
            except ValueError:
                current = (None, None)
            if [minute(c, self.zone) for c in current] == [
                minute(start, self.zone),
                minute(end, self.zone),
            ]:
                return
        template = self._template(cells, column)
        sides = (
            str(template).split("/") if isinstance(template, str) and "/" in template else ["", ""]
        )
        first = DateStyle.of(sides[0]) or DateStyle.of(sides[1]) or DEFAULT_WINDOW
        last = DateStyle.of(sides[1]) or first
        text = (first.format(start, self.zone, end=False, column=column) if start else "") + "/"
        text += last.format(end, self.zone, end=True, column=column) if end else ""
        self._put(cells, column, text)

    def _stock(self, cells: Cells, column: str, location: str | None, value: Any) -> None:
        old = cells.get(column)
        quantity = None if value is None else int(value)
        if isinstance(old, dict) or (
            cells.typed and isinstance(self.document.sample(column), dict)
        ):
            # JSON: {"berlin": 5, "hamburg": 0} in one key
            levels = dict(old) if isinstance(old, dict) else {}
            if location is None:
                if len(levels) > 1:
                    raise ChangeRejected(
                        "channel has several stock locations; map them with expect.stock.locations"
                    )
                location = next(iter(levels), DEFAULT_LOCATION)
            template = levels.get(location, next(iter(levels.values()), None))
            if quantity is None:
                levels.pop(location, None)
            else:
                levels[location] = quantity if not isinstance(template, str) else str(quantity)
            self._put(cells, column, levels)
            return
        if location not in (None, DEFAULT_LOCATION) and isinstance(self.mapping.stock, str):
            raise ChangeRejected(
                f"no stock column for location {location!r} (stock has one column, {column!r})"
            )
        if quantity is None:
            if not blank(old):
                self._put(cells, column, None)
            return
        if not blank(old):
            try:
                if (
                    parse_int(
                        old if not isinstance(old, str) else old.strip(),
                        self.parse.thousands or ("." if self.parse.decimal == "," else None),
                    )
                    == quantity
                ):
                    return
            except ValueError:
                pass
        template = self._template(cells, column)
        if cells.typed and not isinstance(template, str):
            self._put(cells, column, quantity)
            return
        grouping = None
        if isinstance(template, str) and (style := AmountStyle.of(template)) is not None:
            grouping = style.thousands
        self._put(cells, column, format_amount(Decimal(quantity), 0, ".", grouping))

    def _availability(self, cells: Cells, column: str, value: Availability) -> str:
        template = self._template(cells, column)
        return availability_text(value, template if isinstance(template, str) else None)

    def _gtin(self, cells: Cells, column: str, value: Any) -> None:
        if value is None:
            self._put(cells, column, None)
            return
        old = cells.get(column)
        if not blank(old):
            with contextlib.suppress(ValueError):
                if normalize_gtin(
                    old if isinstance(old, int | str) else str(old)
                ) == normalize_gtin(str(value)):
                    return
        template = self._template(cells, column)
        text = gtin_text(normalize_gtin(str(value)) or str(value), old)
        self._put(cells, column, int(text) if cells.typed and isinstance(template, int) else text)

    def _attributes(self, cells: Cells, value: Any) -> None:
        spec = self.mapping.attributes
        assert spec is not None
        values = dict(value or {})
        if isinstance(spec, str):
            template = self._template(cells, spec)
            if not values:
                self._put(cells, spec, None)
            elif cells.typed and not isinstance(template, str):
                self._put(cells, spec, values)
            else:
                self._put(cells, spec, json.dumps(values, ensure_ascii=False))
            return
        unknown = sorted(set(values) - set(spec))
        if unknown:
            raise ChangeRejected(
                f"attribute {unknown[0]!r} has no column (mapped: {', '.join(spec)})"
            )
        for name, column in spec.items():
            item = values.get(name)
            text = (
                None
                if item is None
                else item
                if isinstance(item, str)
                else json.dumps(item, ensure_ascii=False)
            )
            old = cells.get(column)
            if (blank(old) and text is None) or (not blank(old) and clean_text(str(old)) == text):
                continue
            self._put(cells, column, text)

    def _rate(self, cells: Cells, column: str, rate: Decimal) -> Any:
        template = self._template(cells, column)
        if cells.typed and not isinstance(template, str):
            return rate
        style = AmountStyle.of(template) if isinstance(template, str) else None
        decimal = (
            self.parse.decimal if self.parse.decimal != "auto" else (style and style.decimal) or "."
        )
        number = format_amount(rate, 0, decimal)
        return (style.prefix if style else "") + number + (style.suffix if style else "")

    def _description(self, text: str) -> str:
        """A description as the file writes it: HTML where ``description_format: html``."""
        return text_html(text) if self.parse.description_format == "html" else text

    def _put(self, cells: Cells, column: str, value: Any) -> None:
        if cells.get(column) is MISSING and not cells.typed:
            raise ChangeRejected(f"the file has no column {column!r}")
        cells.set(column, value)


def _typed_amount(amount: Decimal, places: int, template: Any) -> Any:
    """A JSON amount: a number (written exactly) unless the file writes amounts as strings."""
    text = format_amount(amount, places)
    return text if isinstance(template, str) else Decimal(text)


def _sale_value(record: Record) -> dict[str, Any] | None:
    return sale_json(record.sale_price, record.sale_start, record.sale_end)
