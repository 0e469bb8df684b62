"""Expectation rules: what a channel *should* show, derived from the canonical record.

Each rule is compiled into a SQL expression over the canonical table (alias ``c``) so the whole
catalogue is evaluated in one vectorised pass, with exact DECIMAL arithmetic. Every division
is done here in Python with :class:`~decimal.Decimal` and handed to SQL as a factor, because a
SQL division of decimals yields a binary float. Alongside each expression this module builds
the human description of the rule ("net→gross 19% VAT, +5% markup, round to .99"), which
reports show next to every expected value.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnisync.durations import Duration
from omnisync.models import Field as RecordField
from omnisync.models import Finding, Kind, Severity
from omnisync.normalize import minor_units

# ---------------------------------------------------------------- rule models (the config's)


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Percent = Annotated[Decimal, Field(ge=-100, le=1000)]


class PriceBasis(StrEnum):
    NET = "net"
    GROSS = "gross"


class RoundingMode(StrEnum):
    NONE = "none"  # keep every digit the arithmetic produced
    CENTS = "cents"  # the currency's minor unit (0.01 EUR, 1 JPY)
    STEP = "step"  # a multiple of `step`, e.g. 0.05
    ENDING = "ending"  # a price ending in `ending`, e.g. .99 or .95


class Direction(StrEnum):
    NEAREST = "nearest"
    UP = "up"
    DOWN = "down"


class Rounding(Strict):
    """How a computed price is rounded to what the channel shows."""

    mode: RoundingMode = RoundingMode.CENTS
    step: Decimal | None = Field(default=None, gt=0)
    ending: Decimal | None = Field(default=None, ge=0, lt=1)
    direction: Direction = Direction.NEAREST

    @model_validator(mode="after")
    def _needs(self) -> Rounding:
        if self.mode is RoundingMode.STEP:
            if self.step is None:
                raise ValueError("mode 'step' needs `step` (e.g. 0.05)")
            inverse = Decimal(1) / self.step
            if inverse != inverse.to_integral_value():
                raise ValueError(
                    f"step {self.step} must divide 1 evenly (e.g. 0.01, 0.05, 0.1, 0.25, 1)"
                )
        if self.mode is RoundingMode.ENDING and self.ending is None:
            raise ValueError("mode 'ending' needs `ending` (e.g. 0.99)")
        return self


class SaleMode(StrEnum):
    SEPARATE = "separate"  # channel shows regular `price` plus `sale_price` while a sale runs
    SCHEDULED = "scheduled"  # channel holds regular `price`, `sale_price` and the sale window
    EFFECTIVE = "effective"  # channel's single `price` is what the customer pays now
    IGNORE = "ignore"  # sales are not reflected in this channel


class PriceRules(Strict):
    """How a channel's price derives from the canonical price."""

    #: Whether the channel shows gross (VAT included) or net prices.
    shows: PriceBasis = PriceBasis.GROSS
    #: VAT in percent, used when a canonical record carries no VAT rate of its own.
    vat: Percent = Decimal(0)
    #: Surcharge in percent applied after VAT (negative for a discount).
    markup: Percent = Decimal(0)
    #: Currency the channel shows; defaults to the canonical currency.
    currency: str | None = None
    #: Fixed conversion rate: 1 canonical currency unit = `rate` channel currency units.
    rate: Decimal | None = Field(default=None, gt=0)
    rounding: Rounding = Rounding()
    sale: SaleMode = SaleMode.SEPARATE
    #: The canonical price list the channel's price derives from: a name under canonical's
    #: ``mapping.price_lists`` (a marketplace's or the B2B list); default canonical's ``price``.
    source: str | None = None
    #: The list the channel's sale price derives from: ``sale_price`` (canonical's own sale
    #: price) or a name under ``mapping.price_lists``. Default: ``sale_price`` without
    #: ``source``, none with it (another price list has no sales unless this names them).
    sale_source: str | None = None

    @property
    def price_list(self) -> str | None:
        """The price list of ``source``, or None for canonical's own price."""
        return None if self.source in (None, "price") else self.source

    @property
    def sale_list(self) -> str | None:
        """``sale_price`` (canonical's sale price), a price list's name, or None (no sale)."""
        if self.sale_source is not None:
            return self.sale_source
        return "sale_price" if self.price_list is None else None

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR)")
        return value.upper() if value else value


class AvailabilityRules(Strict):
    """How an availability-only feed's value derives from the expected stock."""

    #: Expected stock at or above this shows `in_stock`.
    in_stock_min: int = Field(default=1, ge=1)
    #: What a channel shows below that: `out_of_stock`, or `backorder` where backorders are taken.
    otherwise: Literal["out_of_stock", "backorder"] = "out_of_stock"


class StockRules(Strict):
    """How a channel's stock derives from canonical stock."""

    #: Units held back from the channel (per channel location).
    buffer: int = Field(default=0, ge=0)
    #: Share of the stock offered to this channel, in percent (rounded down).
    allocation: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(100)
    #: Cap: never list more than this many units ("max listed").
    max: int | None = Field(default=None, ge=0)
    #: Channel location -> canonical locations summed into it. Omitted: all canonical
    #: locations are summed into one total compared with the channel's total.
    locations: dict[str, list[str]] | None = None
    availability: AvailabilityRules = AvailabilityRules()

    @field_validator("locations")
    @classmethod
    def _non_empty(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is not None:
            if not value:
                raise ValueError("must map at least one channel location (or be omitted)")
            for name, sources in value.items():
                if not sources:
                    raise ValueError(f"location {name!r} must list at least one canonical location")
        return value


class TextRule(Strict):
    """How a channel's text derives from canonical fields."""

    #: Template over canonical fields, e.g. "{brand} {title}". Omitted: the field itself.
    template: str | None = None
    #: Longest text the channel accepts; longer expected text is cut at a word boundary.
    max_length: int | None = Field(default=None, ge=1)

    @field_validator("template")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            template_fields(value)  # raises ValueError naming the unknown placeholder
        return value


def _shorthand_schema(schema: dict[str, Any], cls: type) -> None:
    """The JSON Schema of a tolerance (``omnisync schema``) accepts the shorthands
    :meth:`MoneyTolerance._shorthand` reads, too."""
    block = dict(schema)
    schema.clear()
    schema["anyOf"] = [
        {"type": "number", "minimum": 0},
        {"type": "string", "examples": ["0.01", "0.5%"]},
        {key: value for key, value in block.items() if key not in ("title", "description")},
    ]
    schema.update({key: block[key] for key in ("title", "description") if key in block})


class MoneyTolerance(Strict):
    """How far a money value may be from the expected one and still be equal: an ``amount``
    in the currency, a ``percent`` of the expected amount, or both (the larger applies).

    Written in a config as ``0.01`` (an amount), ``"0.5%"`` (relative) or
    ``{amount: 0.01, percent: 0.5}``."""

    model_config = ConfigDict(json_schema_extra=_shorthand_schema)

    amount: Decimal = Field(default=Decimal(0), ge=0)
    percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError('must be an amount (0.01) or a percentage ("0.5%")')
        if isinstance(value, int | float | Decimal):
            return {"amount": Decimal(str(value))}
        if isinstance(value, str):
            text = value.strip()
            try:
                if text.endswith("%"):
                    return {"percent": Decimal(text[:-1].strip())}
                return {"amount": Decimal(text)}
            except ArithmeticError:
                raise ValueError(
                    f'{value!r} is neither an amount (0.01) nor a percentage ("0.5%")'
                ) from None
        return value

    def __bool__(self) -> bool:
        return bool(self.amount or self.percent)

    def describe(self) -> str:
        parts = [f"±{self.amount.normalize():f}"] if self.amount else []
        if self.percent:
            parts.append(f"±{percent(self.percent)}")
        return " or ".join(parts) if parts else "exact"


class Tolerance(Strict):
    """Differences up to these are not mismatches."""

    price: MoneyTolerance = MoneyTolerance()
    #: Omitted: the price tolerance applies to sale prices too.
    sale_price: MoneyTolerance | None = None
    stock: int = Field(default=0, ge=0)

    @property
    def sale(self) -> MoneyTolerance:
        return self.sale_price if self.sale_price is not None else self.price


def beyond_tolerance(actual: str, expected: str, tolerance: MoneyTolerance) -> str:
    """SQL: whether ``actual`` differs from ``expected`` (both money amounts, non-null) by
    more than ``tolerance``. The relative part is a factor computed here (a SQL division of
    decimals yields a binary float)."""
    difference = f"abs({actual} - {expected})"
    if not tolerance:
        return f"{difference} > 0"
    allowed = sql_dec(tolerance.amount, AMOUNT_TYPE)
    if tolerance.percent:
        share = sql_dec(tolerance.percent / Decimal(100), FACTOR_TYPE)
        allowed = f"greatest({allowed}, abs({expected}) * {share})"
    return f"{difference} > {allowed}"


COMPARABLE = tuple(f.value for f in RecordField)


class Expectations(Strict):
    """What a channel should show, derived from canonical."""

    #: Fields compared at all. Omitted: every field both sides carry.
    check: list[RecordField] | None = None
    price: PriceRules = PriceRules()
    stock: StockRules = StockRules()
    title: TextRule = TextRule()
    description: TextRule = TextRule()
    tolerance: Tolerance = Tolerance()
    #: `full`: every canonical SKU belongs in this channel (absent ones are `missing`);
    #: `listed`: the channel carries a selection (a print catalogue, a marketplace), so only
    #: the SKUs it lists are compared and none is reported missing.
    assortment: Literal["full", "listed"] = "full"
    #: Records the channel changed less than this long ago (by its own modification times,
    #: where the connector reports them; counted from the wall clock, not ``--at``) are not
    #: compared: an edit in flight, or a change the channel still processes.
    lag: Duration | None = None
    #: How much each field's or kind's findings matter: ``info``, ``warn`` or ``fail`` (the
    #: default). A changed field takes its field's severity, else ``changed``'s; other kinds
    #: (``missing``, ``extra``, ``duplicate``, ``data_quality``) their kind's, else their field's.
    severity: dict[str, Severity] = {}

    @field_validator("severity")
    @classmethod
    def _severity_keys(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        known = [*COMPARABLE, *(k.value for k in Kind)]
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(
                f"unknown field or kind {', '.join(map(repr, unknown))} (use {', '.join(known)})"
            )
        return value


def severity_of(finding: Finding, rules: Mapping[str, Severity]) -> Severity:
    """The severity ``rules`` (a channel's ``expect.severity``) give ``finding``."""
    if not rules:
        return Severity.FAIL
    kind, field = finding.kind.value, finding.field or ""
    if finding.kind is Kind.CHANGED:
        found = rules.get(field) or rules.get(kind)
    else:
        found = rules.get(kind) or rules.get(field)
    return found or Severity.FAIL


#: Canonical fields a text template may use.
TEMPLATE_FIELDS = ("sku", "title", "description", "brand", "gtin")

#: Exact factors are rounded to this many places before SQL sees them (1/1.19 does not terminate).
FACTOR_PLACES = 12
FACTOR_TYPE = "DECIMAL(20,12)"
AMOUNT_TYPE = "DECIMAL(18,6)"


def template_fields(template: str) -> list[str]:
    """The placeholders of ``template``; ValueError for unknown ones or format specs."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid template {template!r}: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}} in template (use {', '.join(TEMPLATE_FIELDS)})"
            )
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} cannot have a format spec or conversion")
        names.append(name)
    return names


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_dec(value: Decimal, sql_type: str = FACTOR_TYPE) -> str:
    return f"CAST('{value}' AS {sql_type})"


def sql_ts(value: datetime) -> str:
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S.%f}'"


def percent(value: Decimal) -> str:
    return f"{value.normalize():f}%"


# ---------------------------------------------------------------- price


@dataclass(frozen=True)
class PriceExpectation:
    """Compiled price rule for one channel."""

    #: SQL: the expected regular price, rounded.
    regular: str
    #: SQL: the expected sale price while a sale is active, else NULL.
    sale: str
    #: SQL: the expected sale price whether or not its window is active (scheduled sales).
    scheduled: str
    #: SQL: the expected price the customer pays now.
    effective: str
    #: SQL: the expected currency.
    currency: str
    #: SQL: the factor table join condition; the table is named ``f`` and has ``vat, factor``.
    factor_rows: list[tuple[Decimal, Decimal]]
    #: The rule in words, with ``{vat}`` to be filled per record.
    describe: str
    #: SQL: whether a sale is active.
    sale_active: str
    #: SQL: the expected amount for ``c.amount`` (canonical price or sale price) in currency
    #: ``c.currency`` at factor ``f.factor``: what ``amounts`` of :func:`compile_price` hold.
    amount_sql: str = ""


def price_factor(rules: PriceRules, canonical_basis: PriceBasis, vat: Decimal) -> Decimal:
    """The exact multiplier from a canonical price to the channel's price before rounding."""
    factor = Decimal(1)
    vat_factor = 1 + vat / 100
    if canonical_basis is PriceBasis.NET and rules.shows is PriceBasis.GROSS:
        factor *= vat_factor
    elif canonical_basis is PriceBasis.GROSS and rules.shows is PriceBasis.NET:
        factor /= vat_factor
    factor *= 1 + rules.markup / 100
    if rules.rate is not None:
        factor *= rules.rate
    return factor.quantize(Decimal(1).scaleb(-FACTOR_PLACES), rounding=ROUND_HALF_UP)


def rounding_sql(
    expr: str, rounding: Rounding, currency_sql: str, currencies: Iterable[str]
) -> str:
    """SQL rounding ``expr`` (a DECIMAL) by ``rounding``; ``cents`` honours each currency's minor unit."""
    mode = rounding.mode
    fn = {Direction.NEAREST: "round", Direction.UP: "ceil", Direction.DOWN: "floor"}[
        rounding.direction
    ]
    if mode is RoundingMode.NONE:
        return f"CAST({expr} AS {AMOUNT_TYPE})"
    if mode is RoundingMode.CENTS:
        # Scale to minor units, apply the direction there, scale back: exact in DECIMAL.
        def at(places: int) -> str:
            k = Decimal(10) ** places
            return f"CAST({fn}(({expr}) * {k}) * {Decimal(1).scaleb(-places)} AS {AMOUNT_TYPE})"

        special = {c: minor_units(c) for c in currencies if minor_units(c) != 2}
        if not special:
            return at(2)
        cases = " ".join(f"WHEN {sql_str(c)} THEN {at(p)}" for c, p in sorted(special.items()))
        return f"(CASE {currency_sql} {cases} ELSE {at(2)} END)"
    if mode is RoundingMode.STEP:
        assert rounding.step is not None
        k = (Decimal(1) / rounding.step).to_integral_value()
        return f"CAST({fn}(({expr}) * {k}) * {sql_dec(rounding.step)} AS {AMOUNT_TYPE})"
    assert rounding.ending is not None
    ending = sql_dec(rounding.ending)
    # greatest() skips NULLs in DuckDB, so a missing price must stay missing explicitly.
    rounded = f"greatest({fn}(({expr}) - {ending}) + {ending}, {ending})"
    return f"CAST(CASE WHEN ({expr}) IS NOT NULL THEN {rounded} END AS {AMOUNT_TYPE})"


def describe_rounding(rounding: Rounding) -> str:
    direction = "" if rounding.direction is Direction.NEAREST else f" {rounding.direction.value}"
    match rounding.mode:
        case RoundingMode.NONE:
            return ""
        case RoundingMode.CENTS:
            return f"round{direction} to cents" if direction else ""
        case RoundingMode.STEP:
            return f"round{direction} to {rounding.step}"
        case _:
            ending = f"{rounding.ending:f}".lstrip("0")
            return f"round{direction} to {ending}"


def compile_price(
    rules: PriceRules,
    canonical_basis: PriceBasis,
    vat_rates: Iterable[Decimal],
    currencies: Iterable[str],
    now_utc: datetime,
    amounts: Mapping[str, str] | None = None,
) -> PriceExpectation:
    """Compile the price rule of one channel.

    ``vat_rates`` are the distinct rates canonical records carry (their own or the default);
    ``currencies`` the distinct canonical currencies; ``now_utc`` the evaluation moment.
    ``amounts`` may name, for ``price`` and ``sale_price``, SQL that already holds the
    expected amount (:meth:`PriceExpectation.expected_sql` of it, looked up once per
    distinct amount); by default it is computed per row from ``c`` and the factor table ``f``.
    """
    rates = sorted({*vat_rates, rules.vat})
    factor_rows = [(rate, price_factor(rules, canonical_basis, rate)) for rate in rates]
    currency = sql_str(rules.currency) if rules.currency and rules.rate else "c.currency"
    currency_list = [rules.currency] if rules.currency and rules.rate else list(currencies)
    amounts = amounts or {}
    regular = amounts.get("price") or rounding_sql(
        "c.price * f.factor", rules.rounding, currency, currency_list
    )
    sale_raw = amounts.get("sale_price") or rounding_sql(
        "c.sale_price * f.factor", rules.rounding, currency, currency_list
    )
    now = sql_ts(now_utc)
    active = (
        f"(c.sale_price IS NOT NULL AND (c.sale_start IS NULL OR c.sale_start <= {now})"
        f" AND (c.sale_end IS NULL OR {now} < c.sale_end))"
    )
    sale = f"(CASE WHEN {active} THEN {sale_raw} END)"
    effective = f"(CASE WHEN {active} THEN {sale_raw} ELSE {regular} END)"

    steps = []
    if rules.price_list is not None:
        steps.append(f"price list {rules.price_list}")
    if canonical_basis is not rules.shows:
        steps.append(f"{canonical_basis.value}→{rules.shows.value} {{vat}} VAT")
    if rules.markup:
        steps.append(f"{'+' if rules.markup > 0 else ''}{percent(rules.markup)} markup")
    if rules.rate is not None:
        steps.append(f"×{rules.rate.normalize():f} →{rules.currency}")
    rounded = describe_rounding(rules.rounding)
    if rounded:
        steps.append(rounded)
    return PriceExpectation(
        regular=regular,
        sale=sale,
        scheduled=sale_raw,
        effective=effective,
        currency=currency,
        factor_rows=factor_rows,
        describe=", ".join(steps) or "same as canonical",
        sale_active=active,
        amount_sql=rounding_sql("c.amount * f.factor", rules.rounding, currency, currency_list),
    )


# ---------------------------------------------------------------- stock


def stock_sql(qty: str, rules: StockRules) -> str:
    """SQL applying buffer, allocation, cap and floor to a quantity expression."""
    expr = f"({qty}) - {rules.buffer}" if rules.buffer else f"({qty})"
    if rules.allocation != 100:
        share = sql_dec(rules.allocation / 100, "DECIMAL(9,6)")
        expr = f"CAST(floor(({expr}) * {share}) AS BIGINT)"
    if rules.max is not None:
        expr = f"least({expr}, {rules.max})"
    return f"greatest({expr}, 0)"


def describe_stock(rules: StockRules) -> str:
    steps = []
    if rules.buffer:
        steps.append(f"−{rules.buffer} buffer")
    if rules.allocation != 100:
        steps.append(f"{percent(rules.allocation)} allocated")
    if rules.max is not None:
        steps.append(f"max {rules.max}")
    steps.append("floor 0")
    return ", ".join(steps)


def availability_sql(qty: str, rules: StockRules) -> str:
    rule = rules.availability
    return f"(CASE WHEN ({qty}) >= {rule.in_stock_min} THEN 'in_stock' ELSE {sql_str(rule.otherwise)} END)"


def describe_availability(rules: StockRules) -> str:
    rule = rules.availability
    return f"in_stock from {rule.in_stock_min} expected units, else {rule.otherwise}"


# ---------------------------------------------------------------- text


def text_sql(
    field: str, rule: TextRule, column: Callable[[str], str] = lambda name: f"c.{name}"
) -> str:
    """SQL for a text field: the template (or the field itself), cut to ``max_length`` at a word.
    ``column`` gives the SQL of a canonical field (``c.title`` unless told otherwise)."""
    if rule.template is None:
        expr = column(field)
    else:
        parts = []
        for literal, name, _, _ in string.Formatter().parse(rule.template):
            if literal:
                parts.append(sql_str(literal))
            if name:
                parts.append(f"coalesce({column(name)}, '')")
        joined = " || ".join(parts) or "''"
        expr = f"nullif(trim(regexp_replace({joined}, '\\s+', ' ', 'g')), '')"
    if rule.max_length is not None:
        n = rule.max_length
        # Cut after the last whole word that fits; a single over-long word is cut hard.
        cut = f"rtrim(regexp_replace(left({expr}, {n + 1}), '\\s+\\S*$', ''))"
        expr = (
            f"(CASE WHEN length({expr}) <= {n} THEN {expr} "
            f"WHEN length({cut}) BETWEEN 1 AND {n} THEN {cut} ELSE left({expr}, {n}) END)"
        )
    return expr


def describe_text(field: str, rule: TextRule) -> str:
    steps = []
    if rule.template is not None:
        steps.append(f"template {rule.template!r}")
    if rule.max_length is not None:
        steps.append(f"max {rule.max_length} chars")
    return ", ".join(steps) or f"same as canonical {field}"
