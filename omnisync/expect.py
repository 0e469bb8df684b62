"""Expectation rules: what a channel *should* show, derived from the canonical record.

Each rule is compiled into a SQL expression over the canonical table (alias ``c``) so the whole
catalogue is evaluated in one vectorised pass, with exact DECIMAL arithmetic. Every division
is done here in Python with :class:`~decimal.Decimal` and handed to SQL as a factor, because a
SQL division of decimals yields a binary float. Alongside each expression this module builds
the human description of the rule ("net→gross 19% VAT, +5% markup, round to .99"), which
reports show next to every expected value.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from omnisync.config import (
    Direction,
    PriceBasis,
    PriceRules,
    Rounding,
    RoundingMode,
    StockRules,
    TextRule,
)
from omnisync.normalize import minor_units

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
