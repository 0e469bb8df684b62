"""The write side the file connectors share: apply changes to a parsed file, keep its style,
replace it atomically.

Two parts, from the inside out (how a single value is spelled is :mod:`.styles`):

* :class:`RowWriter` — what a change means for a row's cells: which columns a field maps to,
  the Shopify compare-at pair, a sale's dates, a stock location's column.
* :class:`Editor` — applies a batch to a :class:`Document` (the CSV or JSON file in memory),
  checks that every changed row reads back with the new value (and undoes the row's edit when
  not), and answers one :class:`~omnisync.models.WriteResult` per change.

A value is written in the style of the cell it replaces, else of the column's other cells,
else of the options.

:func:`replace_file` then writes the document: a backup, a temporary file in the same folder,
flush, fsync, ``os.replace``. The original is untouched unless the rename happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from omnisync.errors import ChangeRejected, ConnectorError, Problem, TransientError
from omnisync.markup import text_html
from omnisync.models import Availability, Change, Field, Money, Op, Record, WriteResult
from omnisync.normalize import (
    clean_text,
    minor_units,
    normalize_gtin,
    parse_datetime,
    parse_int,
    parse_money,
    parse_sale_window,
)
from omnisync.sdk.mapping import DEFAULT_LOCATION, FieldMapping, ParseOptions, RowMapper
from omnisync.sdk.values import field_value, json_money, json_to_record, sale_json, same

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

if TYPE_CHECKING:
    from .source import SourceText

__all__ = ["MISSING", "Document", "Editor", "RowWriter", "replace_file"]


# ------------------------------------------------------------------------------ documents


@dataclass
class Touched:
    """What a batch did to one row."""

    op: Op
    sku: str
    keys: list[str] = field(default_factory=list)


class Cells(Protocol):
    """One row of a document, column by column (a JSON object by dotted path)."""

    #: JSON: values keep their JSON type (numbers stay numbers); CSV: every cell is text.
    typed: bool

    def get(self, column: str) -> Any:
        """The raw value, or :data:`MISSING` when the row has no such column."""

    def set(self, column: str, value: Any) -> None:
        """Store a raw value; ``None`` blanks the cell."""

    def inherited(self, column: str) -> Any:
        """The value a blank cell takes from its group's first row (CSV ``group_by``), else None."""


class Document(ABC):
    """A file parsed for editing. Rows are addressed by ``ref`` (an int that stays valid while
    rows are added and removed); unchanged rows are written back exactly as they were read."""

    def __init__(self, source: SourceText, mapper: RowMapper, label: str) -> None:
        self.source = source
        self.mapper = mapper
        #: The path as configured, for messages.
        self.label = label
        #: Rows changed, created or deleted so far, in order.
        self.touched: dict[int, Touched] = {}
        self._samples: dict[str, Any] = {}

    def touch(self, ref: int, change: Change) -> None:
        entry = self.touched.setdefault(ref, Touched(change.op, change.sku))
        if change.op is not Op.UPDATE:
            entry.op = change.op  # created then updated stays a create
        entry.keys.append(change.key)

    @abstractmethod
    def refs(self, sku: str) -> list[int]:
        """The rows holding ``sku`` (more than one when the file lists it twice)."""

    @abstractmethod
    def row_record(self, ref: int) -> tuple[Record | None, list[Problem]]:
        """The row as the connector reads it, or ``None`` and the problems that stop it."""

    @abstractmethod
    def cells(self, ref: int) -> Cells: ...

    @abstractmethod
    def append(self, sku: str) -> int:
        """A new empty row for ``sku`` at the end of the records."""

    def created(self, ref: int) -> None:  # noqa: B027 - most formats need no finishing
        """Called once a new row is filled (JSON reorders the keys like its neighbours)."""

    @abstractmethod
    def discard(self, ref: int) -> None:
        """Forget a row :meth:`append` made (its create failed)."""

    @abstractmethod
    def delete(self, ref: int) -> None:
        """Remove the row; :class:`ChangeRejected` when the file's layout does not allow it."""

    @abstractmethod
    def snapshot(self, ref: int) -> Any: ...

    @abstractmethod
    def restore(self, ref: int, snapshot: Any) -> None: ...

    @abstractmethod
    def where(self, ref: int) -> str:
        """``path:line`` of the row, for messages."""

    @abstractmethod
    def payload(self, ref: int) -> Any:
        """The row as it would be written (CSV: column -> text; JSON: the object)."""

    @abstractmethod
    def render(self) -> str:
        """The whole file as text, with every edit applied."""

    @abstractmethod
    def column_values(self, column: str) -> Any:
        """The original rows' values of ``column``, in file order (for :meth:`sample`)."""

    def sample(self, column: str) -> Any:
        """The first non-blank value of ``column`` in the file as read: how the file writes it."""
        if column not in self._samples:
            self._samples[column] = next(
                (value for value in self.column_values(column) if not blank(value)), None
            )
        return self._samples[column]

    def encode(self) -> bytes:
        return self.source.encode(self.render())


# ------------------------------------------------------------------------------ row writer


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


# ------------------------------------------------------------------------------ editor


@dataclass
class _Outcome:
    change: Change
    ok: bool = True
    error: str | None = None
    refs: list[int] = field(default_factory=list)


class Editor:
    """Applies changes to a :class:`Document`, one result per change."""

    def __init__(self, document: Document, parse: ParseOptions, zone: tzinfo | None) -> None:
        self.document = document
        self.zone = zone
        self.writer = RowWriter(document.mapper.mapping, parse, zone, document)
        self._outcomes: list[_Outcome] = []

    def apply(self, changes: Sequence[Change]) -> list[WriteResult]:
        outcomes = [_Outcome(change) for change in changes]
        for index in _order(changes):
            self._attempt(outcomes[index])
        # A product's first row can go once its other variants have gone (Shopify groups):
        # deletes refused for that reason get a second chance after the rest of the batch.
        for outcome in outcomes:
            if not outcome.ok and outcome.change.op is Op.DELETE:
                self._attempt(outcome)
        self._outcomes = outcomes
        return [WriteResult(o.change.key, o.ok, o.error) for o in outcomes]

    def _attempt(self, outcome: _Outcome) -> None:
        try:
            outcome.refs = self._apply(outcome.change)
        except ChangeRejected as exc:
            outcome.ok, outcome.error = False, str(exc)
        else:
            outcome.ok, outcome.error = True, None

    def rows(self) -> list[dict[str, Any]]:
        """Per row the changes touched, its payload as the file would hold it."""
        document = self.document
        return [
            {
                "op": touched.op.value,
                "sku": touched.sku,
                "where": document.where(ref),
                "changes": list(touched.keys),
                "row": document.payload(ref),
            }
            for ref, touched in document.touched.items()
        ]

    def _apply(self, change: Change) -> list[int]:
        document = self.document
        if change.op is Op.CREATE:
            return [self._create(change)]
        refs = document.refs(change.sku)
        if not refs:
            raise ChangeRejected(
                f"SKU {change.sku} not found in {document.label} "
                "(it may have been removed since the plan was made)"
            )
        if change.op is Op.DELETE:
            for ref in refs:
                document.delete(ref)
                document.touch(ref, change)
            return refs
        if not change.field:
            raise ChangeRejected("an update names no field")
        try:
            field = Field(change.field)
        except ValueError:
            raise ChangeRejected(f"unknown field {change.field!r}") from None
        writer = self.writer
        writer.column(field, change.location)  # unmapped field or location: fail before anything
        wanted = writer.comparable(field, change.after)
        for ref in refs:
            record, _ = document.row_record(ref)
            if record is not None and same(
                field, writer.comparable(field, field_value(record, field, change.location)), wanted
            ):
                continue  # already so: leave the row as written
            snapshot = document.snapshot(ref)
            try:
                writer.update(document.cells(ref), record, field, change.location, change.after)
                self._verify(ref, field, change.location, change.after)
            except ChangeRejected:
                document.restore(ref, snapshot)
                raise
            document.touch(ref, change)
        return refs

    def _create(self, change: Change) -> int:
        document = self.document
        existing = document.refs(change.sku)
        if existing:
            raise ChangeRejected(
                f"SKU {change.sku} already exists in {document.where(existing[0])}"
            )
        if not isinstance(change.after, dict):
            raise ChangeRejected("a create needs the whole record in `after`")
        try:
            record = json_to_record({**change.after, "sku": change.sku})
        except (KeyError, TypeError, ValueError) as exc:
            raise ChangeRejected(f"the record to create is malformed ({exc})") from None
        ref = document.append(change.sku)
        try:
            self.writer.create(document.cells(ref), record)
            document.created(ref)
            for field in document.mapper.fields():
                if field is Field.STOCK and record.stock:
                    for location in record.stock:
                        at = None if location == DEFAULT_LOCATION else location
                        self._verify(ref, field, at, record.stock[location])
                elif (value := field_value(record, field)) is not None:
                    self._verify(ref, field, None, value)
        except ChangeRejected:
            document.discard(ref)
            raise
        document.touch(ref, change)
        return ref

    def _verify(self, ref: int, field: Field, location: str | None, wanted: Any) -> None:
        """The row reads back with ``wanted``, or :class:`ChangeRejected` says why not."""
        record, problems = self.document.row_record(ref)
        if record is None:
            reason = problems[0].message if problems else "it cannot be read"
            raise ChangeRejected(f"the row would not read back: {reason}")
        got = field_value(record, field, location)
        writer = self.writer
        if not same(field, writer.comparable(field, got), writer.comparable(field, wanted)):
            column = writer.column(field, location)
            raise ChangeRejected(
                f"column {column!r} cannot hold {_show(wanted)}: it would read back as {_show(got)}"
            )


def _order(changes: Sequence[Change]) -> list[int]:
    """Application order: a record's sale price after its regular price, whatever the plan's
    order, so that the Shopify compare-at pair is always built from the new regular price."""
    priced = {c.sku for c in changes if c.op is Op.UPDATE and c.field == Field.PRICE}
    late = [
        i
        for i, c in enumerate(changes)
        if c.op is Op.UPDATE and c.field == Field.SALE_PRICE and c.sku in priced
    ]
    later = set(late)
    return [i for i in range(len(changes)) if i not in later] + late


def _show(value: Any) -> str:
    if isinstance(value, dict) and "amount" in value:
        text = f"{value['amount']} {value.get('currency', '')}".strip()
        if value.get("start") or value.get("end"):
            text += f" ({value.get('start') or '…'} to {value.get('end') or '…'})"
        return text
    return "nothing" if value is None else json.dumps(value, ensure_ascii=False, default=str)


# ------------------------------------------------------------------------------ replace


def backup_name(path: Path, moment: datetime | None = None) -> Path:
    """``<name>.<YYYYmmddTHHMMSSffffffZ>.bak`` next to ``path``."""
    stamp = (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return path.with_name(f"{path.name}.{stamp}.bak")


def replace_file(source: SourceText, data: bytes, *, backup: bool, where: str) -> Path | None:
    """Replace the file ``source`` was read from with ``data``, atomically; return the backup.

    :class:`~omnisync.errors.TransientError` when the file changed since it was read (a retry
    re-reads it); :class:`~omnisync.errors.ConnectorError` when it cannot be written. Either
    way the original is left as it was and no temporary file remains.
    """
    target = source.path.resolve()  # a symlink keeps pointing at the rewritten file
    folder = target.parent
    hint = (
        f"check that omnisync may write {target.name} and its folder {folder} "
        "(it writes a temporary file and a backup next to the file)"
    )
    try:
        stat = target.stat()
    except OSError as exc:
        raise ConnectorError(
            f"cannot write {target}: {exc.strerror or exc}", where=where, hint=hint
        ) from exc
    if (stat.st_mtime_ns, stat.st_size) != (source.mtime_ns, source.size):
        raise TransientError(
            f"{target} changed while the write was prepared", where=where, hint="run the push again"
        )
    if not os.access(target, os.W_OK):
        raise ConnectorError(
            f"cannot write {target}: the file is read-only", where=where, hint=hint
        )
    saved: Path | None = None
    temporary: str | None = None
    replaced = False
    try:
        if backup:
            saved = _write_backup(target, source.data)
        descriptor, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{target.name}.", suffix=".tmp"
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(temporary, stat.st_mode & 0o7777)
        os.replace(temporary, target)
        replaced = True
    except OSError as exc:
        raise ConnectorError(
            f"cannot write {target}: {exc.strerror or exc}", where=where, hint=hint
        ) from exc
    finally:
        if not replaced:  # leave the folder as it was
            for leftover in (temporary, saved):
                if leftover is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)
    _sync_folder(folder)
    return saved


def _write_backup(target: Path, data: bytes) -> Path:
    moment = datetime.now(UTC)
    while True:
        path = backup_name(target, moment)
        try:
            with path.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return path
        except FileExistsError:
            moment += timedelta(microseconds=1)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); best effort elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
