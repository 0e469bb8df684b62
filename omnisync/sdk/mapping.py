"""From a tabular source's rows to :class:`~omnisync.models.Record`: the column mapping.

Every tabular connector (CSV/TSV, JSON, JSON Lines, later SQL) reads rows as dicts of raw
values and hands them to one :class:`RowMapper`, so that a price column means the same
everywhere::

    mapping:                      # record field -> column (a dotted path in JSON objects)
      sku: Artikelnummer
      title: Bezeichnung
      price: Preis                # "19,99", "19.99 EUR", "€19,99" or a JSON number
      stock: {berlin: Lager Berlin, hamburg: Lager Hamburg}
    decimal: ","                  # ParseOptions, flat in the connector's options
    currency: EUR

Bad values do not stop the read: each becomes a located :class:`~omnisync.errors.Problem`
(``shop.csv:12: column 'Preis' (SKU A-1): '12,3,4' is not a number``) and the connector
raises one :class:`~omnisync.errors.InputError` with all of them at the end.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Protocol

from pydantic import ConfigDict, StringConstraints, field_validator, model_validator
from pydantic import Field as PydanticField

from omnisync.errors import InputError, Problem
from omnisync.markup import DescriptionFormat, html_text
from omnisync.models import Field, Money, QualityNote, Record
from omnisync.normalize import (
    DecimalSeparator,
    MangledValue,
    check_amount,
    check_quantity,
    clean_text,
    normalize_gtin,
    parse_availability,
    parse_datetime,
    parse_decimal,
    parse_int,
    parse_money,
    parse_sale_window,
)
from omnisync.sdk.connector import ConnectorOptions

#: A column name, or a dotted path (``offer.price``) into nested JSON objects.
Column = Annotated[str, StringConstraints(min_length=1)]

#: Where a source without locations keeps its stock.
DEFAULT_LOCATION = "default"


def mapping_json_schema(schema: dict[str, Any], cls: type) -> None:
    """JSON Schema of options with a ``mapping:`` (``omnisync schema``): its ``sku`` is
    required there, not in :class:`FieldMapping`'s own schema, so that options whose mapping
    may be partial (a csv ``preset:`` supplies the rest) can say so."""
    if "mapping" in schema.get("properties", {}):
        schema.setdefault("allOf", []).append({"properties": {"mapping": {"required": ["sku"]}}})


def _sku_optional(schema: dict[str, Any], cls: type) -> None:
    schema.pop("required", None)  # see mapping_json_schema


class ParseOptions(ConnectorOptions):
    """How a source writes numbers, money and dates; embedded flat in connector options."""

    model_config = ConfigDict(json_schema_extra=mapping_json_schema)

    #: Decimal separator: ``"."``, ``","`` or ``"auto"`` (decided per value, ambiguous
    #: values such as ``1,299`` are rejected).
    decimal: DecimalSeparator = "auto"
    #: Thousands separator, when the source uses one (``"."`` in ``1.299,00``).
    thousands: str | None = None
    #: ISO 4217 code for amounts that carry no currency of their own.
    currency: str | None = None
    #: strptime format for dates that are neither ISO 8601 nor ``24.12.2026``.
    date_format: str | None = None
    #: ``html``: descriptions are HTML (shop exports), compared as the text they show and
    #: written as HTML (:mod:`omnisync.markup`); the shop presets set it.
    description_format: DescriptionFormat = "text"

    @field_validator("thousands")
    @classmethod
    def _one_separator(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value.isalnum()):
            raise ValueError("must be one separator character such as '.', ',' or ' '")
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not (len(value) == 3 and value.isascii() and value.isalpha()):
            raise ValueError(f"{value!r} is not a currency code (3 letters, e.g. EUR)")
        return value.upper()

    @model_validator(mode="after")
    def _distinct_separators(self) -> ParseOptions:
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError("thousands and decimal must be different separators")
        return self


class FieldMapping(ConnectorOptions):
    """Record field -> source column. Only ``sku`` is required; unmapped fields are not
    compared for this source."""

    model_config = ConfigDict(json_schema_extra=_sku_optional)

    sku: Column
    title: Column | None = None
    description: Column | None = None
    gtin: Column | None = None
    brand: Column | None = None
    #: ``{attribute: column}``, or one column holding a JSON object.
    attributes: dict[str, Column] | Column | None = None
    price: Column | None = None
    sale_price: Column | None = None
    #: Other price lists canonical holds, ``{list name: column}`` (a marketplace's or the B2B
    #: price): a channel names one with ``expect.price.source``. Read as ``price`` is.
    price_lists: dict[str, Column] | None = None
    #: Shopify/Shopware model: when compare-at > price, the regular price is the compare-at
    #: price and the record is on sale at ``price``.
    compare_at_price: Column | None = None
    sale_start: Column | None = None
    sale_end: Column | None = None
    #: Google's ``start/end`` range in one column (``sale_price_effective_date``).
    sale_window: Column | None = None
    #: A column with each row's currency code, for amounts that carry none.
    currency: Column | None = None
    #: VAT rate in percent (``19``, ``19 %``, ``7,0``).
    vat_rate: Column | None = None
    availability: Column | None = None
    #: One column (location ``default``) or ``{location: column}``.
    stock: dict[str, Column] | Column | None = None
    #: The product a row is a variant of (the parent's SKU, a handle, a model number).
    parent: Column | None = None
    #: The channel's own identifiers: ``{id name: column}``.
    ids: dict[str, Column] = PydanticField(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> FieldMapping:
        if self.sale_price and self.compare_at_price:
            raise ValueError(
                "map either sale_price or compare_at_price (the Shopify model), not both"
            )
        if self.compare_at_price and not self.price:
            raise ValueError("compare_at_price needs price: the sale price is in that column")
        if self.sale_window and (self.sale_start or self.sale_end):
            raise ValueError("map either sale_window or sale_start/sale_end, not both")
        for name in ("attributes", "stock", "price_lists"):
            value = getattr(self, name)
            if isinstance(value, dict) and not value:
                raise ValueError(f"{name}: name at least one column, or leave it out")
        return self

    def columns(self) -> list[tuple[str, str]]:
        """``(key, column)`` for every mapped column: ``("stock.berlin", "Lager Berlin")``."""
        pairs: list[tuple[str, str]] = []
        for key, value in self:
            if isinstance(value, dict):
                pairs.extend((f"{key}.{name}", column) for name, column in value.items())
            elif value is not None:
                pairs.append((key, value))
        return pairs


class ProblemSink(Protocol):
    """Where :meth:`RowMapper.to_record` reports problems: a list or a :class:`ProblemCollector`."""

    def append(self, problem: Problem, /) -> None: ...


class ProblemCollector:
    """Keeps the first ``limit`` problems and counts the rest, so that a file with a million
    bad rows yields a readable error rather than a million lines."""

    def __init__(self, limit: int = 50) -> None:
        self.limit = limit
        self.problems: list[Problem] = []
        self.total = 0

    def append(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < self.limit:
            self.problems.append(problem)

    def add(self, where: str, message: str) -> None:
        self.append(Problem(where, message))

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    def error(self, *, where: str = "", hint: str = "") -> InputError:
        """One :class:`InputError` with the kept problems and a final ``... and N more``."""
        kept = list(self.problems)
        if self.total > len(kept):
            kept.append(Problem("", f"... and {self.total - len(kept)} more"))
        error = InputError(kept, where=where, hint=hint)
        if self.total != len(kept):
            # InputError counts its list; the "... and N more" line is not a problem itself.
            error.message = f"{self.total} {InputError.headline}"
            error.args = (error.message,)
        return error

    def raise_if_any(self, *, where: str = "", hint: str = "") -> None:
        if self:
            raise self.error(where=where, hint=hint)


def missing_columns_error(
    missing: Iterable[str], available: Iterable[str], *, where: str, mapping: FieldMapping | None
) -> InputError:
    """An :class:`InputError` naming each missing column, the mapping key that wants it and
    the closest existing column; the hint lists the columns that do exist."""
    names = [name for name in available if name]
    lowered = {name.casefold(): name for name in names}
    keys: dict[str, list[str]] = {}
    for key, column in mapping.columns() if mapping else []:
        keys.setdefault(column, []).append(key)
    problems = []
    for column in missing:
        used_by = ", ".join(f"mapping.{key}" for key in keys.get(column, [])) or "options"
        message = f"no column {column!r} (wanted by {used_by})"
        close = lowered.get(column.casefold()) or next(
            iter(difflib.get_close_matches(column, names, n=1, cutoff=0.6)), None
        )
        if close:
            message += f"; did you mean {close!r}?"
        problems.append(Problem(where, message))
    shown = ", ".join(repr(name) for name in names[:60])
    more = f" and {len(names) - 60} more" if len(names) > 60 else ""
    return InputError(problems, where="", hint=f"the columns present are {shown}{more}")


_MISSING = object()

#: How helpers report one bad value: ``bad(column, reason)``.
_Report = Callable[[str, object], None]


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    """The value of ``column`` in ``row``: an exact key first (CSV headers contain dots,
    ``Preis inkl. MwSt``), then a dotted path through nested objects. Absent: ``_MISSING``."""
    if column in row:
        return row[column]
    if "." not in column:
        return _MISSING
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _blank(value: Any) -> bool:
    return value is None or value is _MISSING or (isinstance(value, str) and not value.strip())


class RowMapper:
    """Turns raw rows (dicts of strings or JSON values) into Records, per a mapping."""

    def __init__(self, mapping: FieldMapping, parse: ParseOptions, source: str = "") -> None:
        self.mapping = mapping
        self.parse = parse
        #: The source's name, for messages.
        self.source = source
        # A German file writes 1.234 for a thousand items; stock is whole, so that is safe.
        self._int_thousands = parse.thousands or ("." if parse.decimal == "," else None)
        self._unseen = set(self.required_columns())
        self._html = parse.description_format == "html"
        #: When set, rows of other SKUs (and rows without one) are passed over unread: a
        #: targeted read (``watch``) maps the few rows it wants, not the whole file.
        self.only: frozenset[str] | None = None

    def fields(self) -> frozenset[Field]:
        """The comparable fields this mapping provides."""
        m = self.mapping
        provided = {
            Field.TITLE: m.title,
            Field.DESCRIPTION: m.description,
            Field.GTIN: m.gtin,
            Field.BRAND: m.brand,
            Field.ATTRIBUTES: m.attributes,
            Field.PRICE: m.price or m.price_lists,
            Field.SALE_PRICE: m.sale_price
            or m.compare_at_price
            or m.sale_window
            or m.sale_start
            or m.sale_end,
            Field.STOCK: m.stock,
            Field.AVAILABILITY: m.availability,
        }
        return frozenset(field for field, column in provided.items() if column)

    def required_columns(self) -> list[str]:
        """Every column the mapping reads, once each, in mapping order."""
        return list(dict.fromkeys(column for _, column in self.mapping.columns()))

    def missing_columns(self, header: Iterable[str]) -> list[str]:
        """Mapped columns absent from a file's header."""
        present = set(header)
        return [column for column in self.required_columns() if column not in present]

    def unseen_columns(self) -> list[str]:
        """Mapped columns that no row passed to :meth:`to_record` so far contained — how a
        typo shows in sources without a header (JSON), where any single row may lack a key."""
        return [column for column in self.required_columns() if column in self._unseen]

    def to_record(
        self,
        row: Mapping[str, Any],
        origin: str,
        problems: ProblemSink,
        notes: list[QualityNote] | None = None,
    ) -> Record | None:
        """The row as a Record, or ``None`` after reporting each bad value to ``problems``.

        With ``notes``, a row without a SKU and a value another program mangled
        (:class:`~omnisync.normalize.MangledValue`) are noted there instead of being problems:
        the row is skipped (no SKU) or read without that value, and the check reports it."""
        m = self.mapping
        if self._unseen:
            self._unseen = {column for column in self._unseen if _lookup(row, column) is _MISSING}
        try:
            sku = clean_text(self._get(row, m.sku))
        except ValueError as exc:
            problems.append(Problem(origin, f"column {m.sku!r}: SKU: {exc}"))
            return None
        if self.only is not None and sku not in self.only:
            return None
        if sku is None:
            if notes is not None:
                notes.append(QualityNote(origin, "", "sku", None, self._no_sku(row)))
                return None
            problems.append(Problem(origin, f"column {m.sku!r}: the SKU is blank"))
            return None

        found: list[Problem] = []
        record = Record(sku=sku, origin=origin)

        def bad(column: str, reason: object) -> None:
            found.append(Problem(origin, f"column {column!r} (SKU {sku}): {reason}"))

        for name, column in (
            ("title", m.title),
            ("description", m.description),
            ("brand", m.brand),
            ("parent", m.parent),
        ):
            if column:
                try:
                    text = clean_text(self._get(row, column))
                    if text is not None and name == "description" and self._html:
                        text = clean_text(html_text(text))
                    setattr(record, name, text)
                except ValueError as exc:
                    bad(column, exc)
        if m.gtin:
            raw_gtin = self._get(row, m.gtin)
            try:
                record.gtin = normalize_gtin(self._scalar(raw_gtin))
            except MangledValue as exc:
                if notes is None:
                    bad(m.gtin, exc)
                else:
                    message = f"column {m.gtin!r}: {exc}; not compared"
                    notes.append(QualityNote(origin, sku, "gtin", str(raw_gtin).strip(), message))
            except ValueError as exc:
                bad(m.gtin, exc)
        if m.attributes:
            try:
                record.attributes = self._attributes(row, m.attributes)
            except ValueError as exc:
                bad(m.attributes if isinstance(m.attributes, str) else "attributes", exc)
        self._prices(row, record, bad)
        self._sale_dates(row, record, bad)
        if m.vat_rate:
            try:
                record.vat_rate = self._vat_rate(self._get(row, m.vat_rate))
            except ValueError as exc:
                bad(m.vat_rate, exc)
        if m.stock:
            record.stock = self._stock(row, m.stock, bad)
        if m.availability:
            raw = self._get(row, m.availability)
            try:
                record.availability = None if raw is None else parse_availability(str(raw))
            except ValueError as exc:
                bad(m.availability, exc)
        for name, column in m.ids.items():
            try:
                value = clean_text(self._get(row, column))
            except ValueError as exc:
                bad(column, exc)
                continue
            if value is not None:
                record.ids[name] = value

        if found:
            for problem in found:
                problems.append(problem)
            return None
        return record

    # -- helpers ---------------------------------------------------------------------------

    def _no_sku(self, row: Mapping[str, Any]) -> str:
        """The note for a row without a SKU, naming its title so that a person can find it."""
        title = None
        if self.mapping.title:
            try:
                title = clean_text(self._get(row, self.mapping.title))
            except ValueError:
                title = None
        named = f" ({title!r})" if title else ""
        return (
            f"column {self.mapping.sku!r} is blank: the row{named} has no SKU, "
            "so it is linked to nothing and was skipped"
        )

    @staticmethod
    def _get(row: Mapping[str, Any], column: str) -> Any:
        """The raw value, ``None`` when absent or blank."""
        value = _lookup(row, column)
        return None if _blank(value) else value

    @staticmethod
    def _scalar(value: Any) -> Any:
        if isinstance(value, dict | list | bool):
            raise ValueError(f"expected a single value, got {type(value).__name__}")
        return value

    def _money(self, raw: Any, row_currency: str | None) -> Money | None:
        if raw is None:
            return None
        # A currency the value must be in: the row's currency column, or the code inside a
        # JSON amount object. options.currency is only a default for values without one.
        binding = row_currency
        if isinstance(raw, dict):
            # JSON APIs nest money: {"amount": "15.00", "currency": "EUR"} (Google: "value").
            amount = raw.get("amount", raw.get("value"))
            code = raw.get("currency", raw.get("currency_code", raw.get("currencyCode")))
            if _blank(amount):
                raise ValueError("an amount object needs 'amount' (or 'value')")
            if not _blank(code):
                code = _currency_code(code)
                if binding and code != binding:
                    raise ValueError(f"is in {code}, the currency column says {binding}")
                binding = code
            raw = amount
        money = parse_money(
            self._scalar(raw),
            decimal=self.parse.decimal,
            thousands=self.parse.thousands,
            default_currency=binding or self.parse.currency,
        )
        if binding and money.currency != binding:
            raise ValueError(f"{raw!r} is in {money.currency}, the currency column says {binding}")
        check_amount(money.amount)
        return money

    def _prices(self, row: Mapping[str, Any], record: Record, bad: _Report) -> None:
        m = self.mapping
        if not (m.price or m.sale_price or m.price_lists):
            return
        row_currency: str | None = None
        if m.currency:
            raw = self._get(row, m.currency)
            if raw is not None:
                try:
                    row_currency = _currency_code(raw)
                except ValueError as exc:
                    bad(m.currency, exc)
                    return
        if m.price or m.sale_price:
            self._regular_and_sale(row, record, bad, row_currency)
        if m.price_lists:
            lists: dict[str, Money] = {}
            for name, column in m.price_lists.items():
                try:
                    amount = self._money(self._get(row, column), row_currency)
                except ValueError as exc:
                    bad(column, exc)
                    continue
                if amount is not None:
                    lists[name] = amount
            record.price_lists = lists or None

    def _regular_and_sale(
        self, row: Mapping[str, Any], record: Record, bad: _Report, row_currency: str | None
    ) -> None:
        m = self.mapping
        price: Money | None = None
        if m.price:
            try:
                price = self._money(self._get(row, m.price), row_currency)
            except ValueError as exc:
                bad(m.price, exc)
                return
        if m.compare_at_price:
            try:
                compare = self._money(self._get(row, m.compare_at_price), row_currency)
            except ValueError as exc:
                bad(m.compare_at_price, exc)
                return
            if compare is not None and price is not None:
                if compare.currency != price.currency:
                    bad(
                        m.compare_at_price,
                        f"is in {compare.currency}, the price in {price.currency}",
                    )
                    return
                if compare.amount > price.amount:
                    record.price, record.sale_price = compare, price
                    return
            record.price = price
            return
        record.price = price
        if m.sale_price:
            try:
                record.sale_price = self._money(self._get(row, m.sale_price), row_currency)
            except ValueError as exc:
                bad(m.sale_price, exc)

    def _sale_dates(self, row: Mapping[str, Any], record: Record, bad: _Report) -> None:
        m = self.mapping
        fmt = self.parse.date_format
        if m.sale_window:
            raw = self._get(row, m.sale_window)
            if raw is not None:
                try:
                    record.sale_start, record.sale_end = parse_sale_window(str(self._scalar(raw)))
                except ValueError as exc:
                    bad(m.sale_window, exc)
            return
        for column, end in ((m.sale_start, False), (m.sale_end, True)):
            if not column:
                continue
            raw = self._get(row, column)
            if raw is None:
                continue
            try:
                moment = parse_datetime(str(self._scalar(raw)), fmt, end_of_day=end)
            except ValueError as exc:
                bad(column, exc)
                continue
            if end:
                record.sale_end = moment
            else:
                record.sale_start = moment

    def _vat_rate(self, raw: Any) -> Decimal | None:
        if raw is None:
            return None
        value = self._scalar(raw)
        if isinstance(value, str):
            value = value.strip().removesuffix("%").strip()
        rate = parse_decimal(value, self.parse.decimal, self.parse.thousands)
        if not Decimal(0) <= rate <= Decimal(100):
            raise ValueError(f"VAT rate {rate} is not a percentage between 0 and 100")
        return rate

    def _stock(
        self, row: Mapping[str, Any], spec: dict[str, str] | str, bad: _Report
    ) -> dict[str, int] | None:
        if isinstance(spec, str):
            raw = self._get(row, spec)
            if isinstance(raw, dict):  # JSON: {"berlin": 5, "hamburg": 0} in one key
                columns = {str(location): (spec, value) for location, value in raw.items()}
            else:
                columns = {DEFAULT_LOCATION: (spec, raw)}
        else:
            columns = {
                location: (column, self._get(row, column)) for location, column in spec.items()
            }
        stock: dict[str, int] = {}
        for location, (column, raw) in columns.items():
            if _blank(raw):
                continue  # the source does not track stock for this location
            try:
                stock[location] = check_quantity(parse_int(self._scalar(raw), self._int_thousands))
            except ValueError as exc:
                bad(column, exc)
        return stock or None

    def _attributes(
        self, row: Mapping[str, Any], spec: dict[str, str] | str
    ) -> dict[str, Any] | None:
        if isinstance(spec, str):
            raw = self._get(row, spec)
            if raw is None:
                return None
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw, parse_float=Decimal)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"is not a JSON object ({exc.msg})") from None
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object of attribute: value")
            pairs = list(raw.items())
        else:
            pairs = [(name, self._get(row, column)) for name, column in spec.items()]
        attributes = {str(name): _attribute_value(value) for name, value in pairs}
        cleaned = {name: value for name, value in attributes.items() if value is not None}
        return cleaned or None


def _currency_code(value: Any) -> str:
    code = str(value).strip()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError(f"{code!r} is not a currency code (3 letters, e.g. EUR)")
    return code.upper()


def _attribute_value(value: Any) -> Any:
    """Attribute values compare as text (``42`` from JSON equals ``"42"`` from CSV)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        items = [_attribute_value(item) for item in value]
        return [item for item in items if item is not None] or None
    if isinstance(value, dict):
        inner = {str(k): _attribute_value(v) for k, v in value.items()}
        return {k: v for k, v in inner.items() if v is not None} or None
    return clean_text(value)
