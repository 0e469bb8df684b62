"""The columnar twin of :mod:`omnisync.sdk.mapping`: raw text columns to the engine's tables in SQL.

A connector that can put its source into DuckDB as columns of text (the CSV connector lets
``read_csv`` parse the file) hands them to a :class:`ColumnarMapper`, which writes the diff
engine's items and stock tables (:class:`~omnisync.sdk.connector.TableTarget`) with SQL
expressions meaning exactly what :class:`~omnisync.sdk.mapping.RowMapper` and
:mod:`omnisync.normalize` mean. Exactness is by construction, in two layers:

1. SQL reads the forms it can be sure of: text without carriage returns or whitespace at
   its ends passes as it is (other text is trimmed of exactly Python's whitespace; SKUs and
   ids are composed to NFC here, titles, descriptions and brands by the engine where it shows
   or measures them); numbers written ``1299.00``, ``1.299,00`` or ``19,99 EUR`` as the
   ``decimal``/``thousands`` options read them, to DECIMAL (never a float); GTINs of 8 to 14
   digits; whole stock numbers; ASCII availability words.
2. Every other value (a currency symbol, an ambiguous ``1,299``, a date, a GTIN with spaces)
   is handed to the very RowMapper the row path uses, once per distinct value, and written
   back. A value RowMapper rejects makes :meth:`ColumnarMapper.load` return False: the
   connector's ``read()`` then runs and reports every problem with its file:line, as always.

Mappings it cannot express (``attributes``, ``compare_at_price``, ``price_lists``) are named by
:meth:`ColumnarMapper.unsupported`; their sources take the row path.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from omnisync.errors import Problem
from omnisync.expect import sql_str
from omnisync.models import Record
from omnisync.normalize import AVAILABILITY_WORDS
from omnisync.sdk.connector import TableTarget
from omnisync.sdk.mapping import DEFAULT_LOCATION, RowMapper
from omnisync.sdk.values import utc_naive

log = logging.getLogger(__name__)

#: Python's whitespace (what ``str.strip()`` removes: every ``str.isspace()`` character), in
#: code point order; spelled out because computing it costs a third of a second per start.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_WHITESPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"


def blank_sql(x: str) -> str:
    """SQL: ``x`` is blank as the row path sees it (``not value.strip()``)."""
    return f"({x} IS NULL OR regexp_full_match({x}, {sql_str(_WHITESPACE_CLASS + '*')}))"


def visible_start_sql(x: str) -> str:
    """SQL, cheap: ``x`` begins with a character from U+0021 to U+0084, none of which is
    whitespace (so ``x`` is not blank and has nothing to strip at its start). DuckDB compares
    text by its UTF-8 bytes, which order as the code points do; ``chr(133)`` is U+0085."""
    return f"({x} >= '!' AND {x} < chr(133))"


def _strip_sql(x: str) -> str:
    # trim(x, characters) costs microseconds a value in DuckDB; RE2 anchored at one end
    # looks at that end only. RE2's $ is the end of the text, as \z.
    start, end = sql_str("^" + _WHITESPACE_CLASS + "+"), sql_str(_WHITESPACE_CLASS + "+$")
    return f"regexp_replace(regexp_replace({x}, {start}, ''), {end}, '')"


def _ends_with_space_sql(x: str) -> str:
    return f"regexp_matches({x}, {sql_str(_WHITESPACE_CLASS + '$')})"


def strip_sql(x: str) -> str:
    """SQL: ``x.strip()``, Python's whitespace removed at both ends (NULL stays NULL)."""
    return (
        f"(CASE WHEN {visible_start_sql(x)} AND NOT {_ends_with_space_sql(x)} THEN {x} "
        f"ELSE {_strip_sql(x)} END)"
    )


def filled_sql(x: str) -> str:
    """SQL: ``NOT blank_sql(x)``, with the cheap check for nearly every cell first."""
    return f"(CASE WHEN {visible_start_sql(x)} THEN true ELSE NOT {blank_sql(x)} END)"


def sql_name(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def text_sql(x: str, *, compose: bool = True) -> str:
    """:func:`omnisync.normalize.clean_text` of ``x``: NFC, CR LF and CR as LF, stripped of
    Python's whitespace, blank as NULL. Text that needs none of it (nearly all) is kept as it
    is after cheap checks; the rest takes the full expression.

    ``compose=False`` leaves out NFC, which the engine applies itself wherever it compares,
    measures or shows text (:class:`~omnisync.sdk.connector.TableTarget`); on long descriptions
    the check alone costs more than parsing the file.
    """
    # Text that surely needs none of it, tested cheaply (DuckDB evaluates the terms of a
    # CASE condition in turn, each on the rows still in question).
    sure = [
        visible_start_sql(x),
        f"NOT contains({x}, chr(13))",
        f"NOT {_ends_with_space_sql(x)}",
    ]
    if compose:
        sure.append(f"strlen({x}) = length({x})")  # ASCII
    unsure = [
        f"contains({x}, chr(13))",
        # Anchored patterns: RE2 looks at one end of the text only.
        f"regexp_matches({x}, {sql_str('^' + _WHITESPACE_CLASS)})",
        _ends_with_space_sql(x),
    ]
    inner = x
    if compose:
        # Everything NFC can change is at U+0300 or above; ASCII text skips the scan.
        unsure.append(
            f"(strlen({x}) <> length({x}) AND regexp_matches({x}, '[\\x{{300}}-\\x{{10FFFF}}]'))"
        )
        # nfc_normalize stops at a NUL character: hide NULs in a noncharacter meanwhile.
        inner = (
            f"(CASE WHEN NOT contains({x}, chr(0)) THEN nfc_normalize({x}) "
            f"WHEN NOT contains({x}, chr(65535)) THEN replace(nfc_normalize("
            f"replace({x}, chr(0), chr(65535))), chr(65535), chr(0)) END)"
        )
    lines = f"replace(replace({inner}, chr(13) || chr(10), chr(10)), chr(13), chr(10))"
    full = f"nullif({_strip_sql(lines)}, '')"
    return (
        f"(CASE WHEN {' AND '.join(sure)} THEN {x} "
        f"WHEN {' OR '.join(unsure)} THEN {full} ELSE nullif({x}, '') END)"
    )


@dataclass(frozen=True)
class NumberForms:
    """The written numbers SQL reads itself under one ``decimal``/``thousands`` setting: an
    RE2 pattern (no capturing groups) and how a match becomes a ``.``-decimal text."""

    pattern: str
    grouping: str | None = None
    point: str | None = None

    def value_sql(self, x: str) -> str:
        if self.grouping is not None:
            x = f"replace({x}, {sql_str(self.grouping)}, '')"
        if self.point not in (None, "."):
            x = f"replace({x}, {sql_str(self.point)}, '.')"
        return x


def number_forms(
    decimal: str,
    thousands: str | None,
    *,
    digits: int,
    places: int,
    signed: bool = True,
    grouped: bool = True,
) -> NumberForms:
    """Written numbers :func:`omnisync.normalize.parse_decimal` surely reads as SQL does,
    with at most ``digits`` integer digits and ``places`` decimals (what the column holds).
    ``grouped=False``: only the forms without thousands separators (cheaper to convert)."""
    sign = "-?" if signed else ""
    if decimal == "auto":
        # parse_decimal's fast path: one mark, not the thousands one, not three decimals.
        marks = "".join(re.escape(m) for m in ".," if m != thousands)
        fraction = "[0-9]{1,2}" + (f"|[0-9]{{4,{places}}}" if places >= 4 else "")
        return NumberForms(f"{sign}[0-9]{{1,{digits}}}(?:[{marks}](?:{fraction}))?", None, ",")
    fraction = f"(?:{re.escape(decimal)}[0-9]{{1,{places}}})?"
    if not grouped:
        return NumberForms(f"{sign}[0-9]{{1,{digits}}}{fraction}", None, decimal)
    group = thousands or ("." if decimal == "," else ",")
    if group == "-":
        sign = ""  # removing the separators would remove the sign too
    groups = (digits - 1) // 3
    grouping = f"|[0-9]{{1,3}}(?:{re.escape(group)}[0-9]{{3}}){{1,{groups}}}" if groups else ""
    return NumberForms(f"{sign}(?:[0-9]{{1,{digits}}}{grouping}){fraction}", group, decimal)


def whole_forms(thousands: str | None) -> NumberForms:
    """Whole numbers :func:`omnisync.normalize.parse_int` surely reads as SQL does (BIGINT)."""
    if thousands is None:
        return NumberForms("-?[0-9]{1,18}")
    sign = "" if thousands == "-" else "-?"  # removing the separators would remove the sign
    return NumberForms(
        f"{sign}(?:[0-9]{{1,18}}|[0-9]{{1,3}}(?:{re.escape(thousands)}[0-9]{{3}}){{1,5}})",
        thousands,
    )


def digits_sql(x: str, most: int) -> str:
    """SQL, cheap: ``x`` is 1 to ``most`` ASCII digits."""
    return f"(strlen({x}) BETWEEN 1 AND {most} AND {x} NOT GLOB '*[!0-9]*')"


def _full(x: str, pattern: str) -> str:
    return f"regexp_full_match({x}, {sql_str(pattern)})"


_AVAILABILITY_WORDS = {
    spelling: value.value
    for key, value in AVAILABILITY_WORDS.items()
    for spelling in {key, key.replace(" ", "_"), key.replace(" ", "-")}
}


@dataclass
class _Group:
    """Values SQL may not be sure of, resolved in Python per distinct raw value(s)."""

    name: str
    #: Source columns whose raw text the resolution needs.
    columns: list[str]
    #: SQL: the row's values are sure (or blank).
    sure: str
    #: Item (or ``_q_``) columns it writes: name -> (SQL type, value from a Record).
    outputs: dict[str, tuple[str, Callable[[Record], Any]]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"_u_{self.name}"


@dataclass
class _Plan:
    """The stage query: intermediate values in three layers (each may use the ones
    before), then the columns."""

    first: dict[str, str] = field(default_factory=dict)
    second: dict[str, str] = field(default_factory=dict)
    third: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    groups: list[_Group] = field(default_factory=list)
    #: Stock locations, in the order of their ``_q_<i>`` columns.
    locations: list[str] = field(default_factory=list)
    #: The item columns the table stores (the others are NULL for this source).
    stored: set[str] = field(default_factory=set)


class ColumnarMapper:
    """Writes a source's items and stock tables from raw text columns, as RowMapper would."""

    def __init__(self, mapper: RowMapper, timezone: str) -> None:
        self.mapper = mapper
        self.mapping = mapper.mapping
        self.parse = mapper.parse
        self.zone = ZoneInfo(timezone)

    @staticmethod
    def unsupported(mapper: RowMapper) -> str | None:
        """Why this mapping takes the row path, or None when SQL can express it."""
        m = mapper.mapping
        if m.attributes:
            return "mapping.attributes (compared as the JSON text Python writes)"
        if m.compare_at_price:
            return "mapping.compare_at_price"
        if m.price_lists:
            return "mapping.price_lists"
        if m.parent:
            return "mapping.parent"
        return None

    # -- the SQL ------------------------------------------------------------------------

    def _plan(self, raw: Callable[[str], str]) -> _Plan:
        """The stage query for this mapping, field by field; ``raw(column)`` is the SQL of a
        source column's text."""
        plan = _Plan()
        plan.columns.update(ord="NULL", origin="NULL", attributes="NULL")
        self._plan_texts(plan, raw)
        self._plan_gtin(plan, raw)
        self._plan_money(plan, raw)
        self._plan_vat(plan, raw)
        self._plan_availability(plan, raw)
        self._plan_dates(plan)
        self._plan_stock(plan, raw)
        self._plan_ids(plan, raw)
        return plan

    def _plan_texts(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        m = self.mapping
        plan.columns["sku"] = text_sql(raw(m.sku))
        for name in ("title", "description", "brand"):
            column = getattr(m, name)
            plan.columns[name] = text_sql(raw(column), compose=False) if column else "NULL"
        if m.description and self.parse.description_format == "html":
            # Text without markup is its own text; HTML goes through RowMapper's parser.
            x = raw(m.description)
            plan.second["_s_html"] = f"NOT (contains({x}, '<') OR contains({x}, '&'))"
            plan.columns["description"] = (
                f"(CASE WHEN _s_html THEN {plan.columns['description']} END)"
            )
            self._group(
                plan,
                "html",
                [m.description],
                "_s_html",
                description=("VARCHAR", _get("description")),
            )

    def _plan_gtin(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        m = self.mapping
        if not m.gtin:
            return
        x = raw(m.gtin)
        plan.second["_s_gtin"] = f"(strlen({x}) BETWEEN 8 AND 14 AND {x} NOT GLOB '*[!0-9]*')"
        # zfill(14); lpad counts characters, the usual 13 digits need no count.
        plan.columns["gtin"] = (
            f"(CASE WHEN NOT _s_gtin THEN NULL WHEN strlen({x}) = 13 THEN '0' || {x} "
            f"WHEN strlen({x}) = 14 THEN {x} ELSE lpad({x}, 14, '0') END)"
        )
        self._group(plan, "gtin", [m.gtin], "_s_gtin", gtin=("VARCHAR", _get("gtin")))

    def _plan_vat(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        m = self.mapping
        if not m.vat_rate:
            return
        x = raw(m.vat_rate)
        forms = number_forms(
            self.parse.decimal, self.parse.thousands, digits=3, places=4, signed=False
        )
        rate = f"CAST({forms.value_sql(x)} AS DECIMAL(9,4))"
        plan.second["_s_vat"] = f"({_full(x, forms.pattern)} AND {rate} <= 100)"
        plan.columns["vat_rate"] = f"(CASE WHEN _s_vat THEN {rate} END)"
        self._group(
            plan, "vat", [m.vat_rate], "_s_vat", vat_rate=("DECIMAL(9,4)", _get("vat_rate"))
        )

    def _plan_availability(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        m = self.mapping
        if not m.availability:
            return
        x = raw(m.availability)
        cases = " ".join(
            f"WHEN {sql_str(word)} THEN {sql_str(value)}"
            for word, value in sorted(_AVAILABILITY_WORDS.items())
        )
        plan.second["_w_availability"] = (
            f"(CASE WHEN {x} NOT GLOB '*[!A-Za-z_ -]*' THEN (CASE lower({x}) {cases} END) END)"
        )
        plan.columns["availability"] = "_w_availability"
        self._group(
            plan,
            "availability",
            [m.availability],
            "_w_availability IS NOT NULL",
            availability=("VARCHAR", _availability),
        )

    def _plan_dates(self, plan: _Plan) -> None:
        # Dates always take the Python parser: few distinct values, and its zone rules.
        m = self.mapping
        if m.sale_window:
            self._group(
                plan,
                "sale_window",
                [m.sale_window],
                "false",
                sale_start=("TIMESTAMP", self._moment("sale_start")),
                sale_end=("TIMESTAMP", self._moment("sale_end")),
            )
        for name in ("sale_start", "sale_end"):
            column = getattr(m, name)
            if column:
                self._group(
                    plan, name, [column], "false", **{name: ("TIMESTAMP", self._moment(name))}
                )

    def _plan_stock(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        stock = self.mapping.stock
        locations = {DEFAULT_LOCATION: stock} if isinstance(stock, str) else dict(stock or {})
        forms = whole_forms(self.mapper._int_thousands)
        for index, (location, column) in enumerate(locations.items()):
            x, sure = raw(column), f"_s_q_{index}"
            # Plain digits (nearly all) skip the regular expression.
            plan.second[sure] = (
                f"(CASE WHEN {digits_sql(x, 18)} THEN true ELSE {_full(x, forms.pattern)} END)"
            )
            plan.columns[f"_q_{index}"] = (
                f"(CASE WHEN {sure} THEN CAST({forms.value_sql(x)} AS BIGINT) END)"
            )
            plan.locations.append(location)
            self._group(
                plan, f"q_{index}", [column], sure, **{f"_q_{index}": ("BIGINT", _stock(location))}
            )

    def _plan_ids(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        ids = self.mapping.ids
        if not ids:
            return
        for index, column in enumerate(ids.values()):
            plan.second[f"_id_{index}"] = text_sql(raw(column))
        parts = ", ".join(
            f"CASE WHEN _id_{index} IS NOT NULL THEN "
            f"{sql_str(json.dumps(name, ensure_ascii=False) + ': ')} || "
            f"CAST(to_json(_id_{index}) AS VARCHAR) END"
            for index, name in sorted(enumerate(ids), key=lambda pair: pair[1])
        )
        plan.columns["ids"] = f"nullif('{{' || concat_ws(', ', {parts}) || '}}', '{{}}')"

    def _group(
        self,
        plan: _Plan,
        name: str,
        columns: list[str],
        sure: str,
        **outputs: tuple[str, Callable[[Record], Any]],
    ) -> None:
        plan.groups.append(_Group(name, columns, sure, outputs))

    def _plan_money(self, plan: _Plan, raw: Callable[[str], str]) -> None:
        m, parse = self.mapping, self.parse
        amounts = [(n, c) for n, c in (("price", m.price), ("sale_price", m.sale_price)) if c]
        if not amounts:
            return
        forms = number_forms(parse.decimal, parse.thousands, digits=12, places=6)
        plain = number_forms(parse.decimal, parse.thousands, digits=12, places=6, grouped=False)
        pattern = (
            f"^(?:([A-Za-z]{{3}}) *({forms.pattern})|({forms.pattern})(?: *([A-Za-z]{{3}}))?)$"
        )
        conditions = []
        if m.currency:
            cur = raw(m.currency)
            conditions.append(f"({cur} IS NULL OR {_full(cur, '[A-Za-z]{3}')})")
            binding = f"upper({cur})"
        else:
            binding = "NULL"
        default = sql_str(parse.currency) if parse.currency else "NULL"
        outputs: dict[str, tuple[str, Callable[[Record], Any]]] = {}
        for name, column in amounts:
            x = raw(column)
            parts, code = f"_m_{name}", f"_c_{name}"
            # A plain number (nearly every amount) is its own number, without a code: it
            # skips the extraction (the dearest expression here), and its parts stay NULL.
            plan.first[parts] = (
                f"(CASE WHEN NOT {_full(x, plain.pattern)} THEN "
                f"regexp_extract({x}, {sql_str(pattern)}, ['c1', 'n1', 'n2', 'c2']) END)"
            )
            number = f"coalesce(nullif({parts}.n1, ''), nullif({parts}.n2, ''))"
            plan.second[code] = f"upper(coalesce(nullif({parts}.c1, ''), nullif({parts}.c2, '')))"
            plan.second[f"_n_{name}"] = (
                f"CAST((CASE WHEN {parts} IS NULL THEN {plain.value_sql(x)} "
                f"ELSE {forms.value_sql(number)} END) AS DECIMAL(18,6))"
            )
            currency = f"coalesce({code}, {binding}, {default})"
            conditions.append(
                f"({x} IS NULL OR (_n_{name} IS NOT NULL AND {currency} IS NOT NULL "
                f"AND ({code} IS NULL OR {binding} IS NULL OR {code} = {binding})))"
            )
            money = "currency" if name == "price" else "sale_currency"
            plan.columns[name] = f"(CASE WHEN _s_money AND {x} IS NOT NULL THEN _n_{name} END)"
            plan.columns[money] = f"(CASE WHEN _s_money AND {x} IS NOT NULL THEN {currency} END)"
            outputs[name] = ("DECIMAL(18,6)", _amount(name))
            outputs[money] = ("VARCHAR", _currency(name))
        # The currency column binds every amount of the row: sure or resolved as a whole.
        plan.third["_s_money"] = " AND ".join(conditions)
        columns = [c for c in (m.currency, *(c for _, c in amounts)) if c]
        self._group(plan, "money", columns, "_s_money", **outputs)

    def _moment(self, name: str) -> Callable[[Record], Any]:
        return lambda record: utc_naive(getattr(record, name), self.zone)

    # -- loading ------------------------------------------------------------------------

    def load(self, target: TableTarget, source: str, columns: Mapping[str, str]) -> bool:
        """Create ``target``'s tables from ``source`` (SQL yielding the record rows, each
        mapped column as text under the identifier ``columns[name]``). False, with nothing
        created, when a value does not parse or a row has no SKU: the row path reports it."""
        con = target.con
        plan = self._plan(lambda column: columns[column])
        for group in plan.groups:
            key = (
                columns[group.columns[0]]
                if len(group.columns) == 1
                else "CAST(to_json(["
                + ", ".join(columns[c] for c in group.columns)
                + "]) AS VARCHAR)"
            )
            plan.columns[group.key] = (
                f"(CASE WHEN NOT coalesce({group.sure}, false) THEN {key} END)"
            )
        # Only the columns the source carries are stored; the view adds the rest (_finish).
        plan.stored = {n for n, sql in plan.columns.items() if sql != "NULL"}.union(
            *(g.outputs for g in plan.groups)
        )
        select = [
            f"CAST({plan.columns.get(name, 'NULL')} AS {sql_type}) AS {name}"
            for name, sql_type in target.item_columns.items()
            if name in plan.stored
        ]
        select += [f"{sql} AS {name}" for name, sql in plan.columns.items() if name.startswith("_")]
        query = f"SELECT * FROM ({source})"
        for layer in (plan.first, plan.second, plan.third):
            if layer:
                lets = ", ".join(f"{sql} AS {name}" for name, sql in layer.items())
                query = f"SELECT *, {lets} FROM ({query})"
        items = target.stored
        try:
            con.execute(f"CREATE TABLE {items} AS SELECT {', '.join(select)} FROM ({query})")
            counted = ", ".join(
                ["count(*) FILTER (WHERE sku IS NULL)", *(f"count({g.key})" for g in plan.groups)]
            )
            counts = con.execute(f"SELECT {counted} FROM {items}").fetchall()[0]
            assert counts is not None
            if counts[0]:
                log.debug("%s: a row has no SKU; the row path reports it", self.mapper.source)
                self._discard(target)
                return False
            for group, unsure in zip(plan.groups, counts[1:], strict=True):
                if unsure and not self._resolve(target, group):
                    self._discard(target)
                    return False
            self._finish(target, plan)
        except BaseException:
            self._discard(target)
            raise
        return True

    def _resolve(self, target: TableTarget, group: _Group) -> bool:
        """Parse the group's distinct unsure values with RowMapper and write them back."""
        con = target.con
        keys = [
            row[0]
            for row in con.execute(
                f"SELECT DISTINCT {group.key} FROM {target.stored} WHERE {group.key} IS NOT NULL"
            ).fetchall()
        ]
        problems: list[Problem] = []
        values: dict[str, list[Any]] = {name: [] for name in group.outputs}
        for key in keys:
            raws = [key] if len(group.columns) == 1 else json.loads(key)
            row = {c: v for c, v in zip(group.columns, raws, strict=True) if v is not None}
            row[self.mapping.sku] = "-"
            record = self.mapper.to_record(row, "", problems)
            if record is None or problems:
                log.debug("%s: %s; the row path reports it", self.mapper.source, problems[:1])
                return False
            for name, (_, get) in group.outputs.items():
                values[name].append(get(record))
        resolved = pa.table(
            {
                "key": pa.array(keys, pa.string()),
                **{name: _arrow(values[name], t) for name, (t, _) in group.outputs.items()},
            }
        )
        view = f"_resolved_{group.name}"
        con.register(view, resolved)
        try:
            assignments = ", ".join(f"{name} = r.{name}" for name in group.outputs)
            con.execute(
                f"UPDATE {target.stored} SET {assignments} FROM {view} r "
                f"WHERE {target.stored}.{group.key} = r.key"
            )
        finally:
            con.unregister(view)
        return True

    def _finish(self, target: TableTarget, plan: _Plan) -> None:
        """The stock table from the ``_q_`` columns; then the helper columns go, and the
        items view adds the columns the source does not carry."""
        con, items = target.con, target.stored
        parts = [
            f"SELECT sku, {sql_str(location)} AS location, _q_{index} AS qty "
            f"FROM {items} WHERE _q_{index} IS NOT NULL"
            for index, location in enumerate(plan.locations)
        ]
        casts = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, t in target.stock_columns.items())
        if parts:
            con.execute(
                f"CREATE TABLE {target.stock} AS SELECT {casts} FROM ({' UNION ALL '.join(parts)})"
            )
        else:
            types = ", ".join(f"{n} {t}" for n, t in target.stock_columns.items())
            con.execute(f"CREATE TABLE {target.stock} ({types})")
        for name in [n for n in plan.columns if n.startswith("_")]:
            con.execute(f"ALTER TABLE {items} DROP COLUMN {name}")
        columns = ", ".join(
            name if name in plan.stored else f"CAST(NULL AS {sql_type}) AS {name}"
            for name, sql_type in target.item_columns.items()
        )
        con.execute(f"CREATE VIEW {target.items} AS SELECT {columns} FROM {items}")

    @staticmethod
    def _discard(target: TableTarget) -> None:
        target.con.execute(f"DROP VIEW IF EXISTS {target.items}")
        target.con.execute(f"DROP TABLE IF EXISTS {target.stored}")
        target.con.execute(f"DROP TABLE IF EXISTS {target.stock}")


def _get(name: str) -> Callable[[Record], Any]:
    return lambda record: getattr(record, name)


def _availability(record: Record) -> str | None:
    return record.availability.value if record.availability else None


def _amount(name: str) -> Callable[[Record], Decimal | None]:
    def get(record: Record) -> Decimal | None:
        money = getattr(record, name)
        return money.amount if money else None

    return get


def _currency(name: str) -> Callable[[Record], str | None]:
    def get(record: Record) -> str | None:
        money = getattr(record, name)
        return money.currency if money else None

    return get


def _stock(location: str) -> Callable[[Record], int | None]:
    return lambda record: (record.stock or {}).get(location)


def _arrow(values: list[Any], sql_type: str) -> pa.Array:
    if sql_type.startswith("DECIMAL"):
        precision, scale = (int(p) for p in sql_type[8:-1].split(","))
        return decimals(values, scale, pa.decimal128(precision, scale))
    arrow_type = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "TIMESTAMP": pa.timestamp("us")}
    return pa.array(values, arrow_type[sql_type])


def decimals(values: list[Decimal | None], scale: int, type_: pa.DataType) -> pa.Array:
    """An Arrow decimal array of ``values`` (rounded half-even beyond ``scale`` places)."""
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowInvalid, InvalidOperation):
        # More decimal places than the engine keeps: round half-even at 10^-scale (sub-cent).
        q = Decimal(1).scaleb(-scale)
        return pa.array([None if v is None else v.quantize(q) for v in values], type=type_)
