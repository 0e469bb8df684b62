"""The catalogue diff: keyed by SKU, vectorised in DuckDB, exact in DECIMAL.

Expectations (:mod:`omnisync.expect`) are evaluated as SQL over the canonical table (loaded by
:mod:`omnisync.load`), joined to the channel's table on SKU, and only the rows that differ
come back to Python to become :class:`~omnisync.models.Finding` objects. The canonical side
is loaded once and compared with every channel; each channel's tables are dropped after its
diff.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from omnisync import expect
from omnisync.config import ChannelConfig
from omnisync.expect import PriceBasis, SaleMode, TextRule
from omnisync.load import CANONICAL, Engine, Side
from omnisync.models import Field, Finding, Kind, Money
from omnisync.sdk.values import money, money_json, sale_json

log = logging.getLogger(__name__)

#: Finding order within one SKU.
FIELD_ORDER = {f.value: i for i, f in enumerate(Field)}


def _mj(amount: Decimal | None, currency: str | None) -> dict[str, str] | None:
    return money_json(Money(amount, currency)) if amount is not None and currency else None


def _sj(
    amount: Decimal | None, currency: str | None, start: datetime | None, end: datetime | None
) -> dict[str, Any] | None:
    if amount is None or not currency:
        return None
    return sale_json(Money(amount, currency), start, end)


def _stamp(value: datetime | None, zone: ZoneInfo) -> str:
    """A stored (naive UTC) moment shown in the configured zone: ``2026-11-01 00:00 CET``."""
    if value is None:
        return "…"
    local = value.replace(tzinfo=UTC).astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


@dataclass(frozen=True)
class ChannelComparison:
    """What one channel's diff compares: two loaded sides and the rules between them."""

    #: The channel's name in the config.
    name: str
    canonical: Side
    channel: Side
    config: ChannelConfig
    #: Whether canonical prices are net or gross (``canonical.prices``).
    canonical_basis: PriceBasis
    #: The moment sale windows are evaluated at.
    evaluated_at: datetime


class DiffEngine(Engine):
    """The engine that also compares: a loaded channel against the loaded canonical side."""

    def diff(self, comparison: ChannelComparison) -> tuple[list[Finding], list[str]]:
        """Compare one loaded channel with the canonical side; return findings and compared
        fields."""
        return _ChannelDiff(self, comparison).run()


def compared_fields(
    canonical: frozenset[Field], channel: frozenset[Field], config: ChannelConfig
) -> list[Field]:
    """Fields compared for a channel: both sides carry them (availability derives from stock)."""
    derivable = set(canonical)
    if Field.STOCK in canonical:
        derivable.add(Field.AVAILABILITY)
    if Field.PRICE in canonical:
        derivable.add(Field.SALE_PRICE)
    fields = [f for f in Field if f in channel and f in derivable]
    if config.expect.price.sale not in (SaleMode.SEPARATE, SaleMode.SCHEDULED):
        fields = [f for f in fields if f is not Field.SALE_PRICE]
    if config.expect.check is not None:
        wanted = set(config.expect.check)
        fields = [f for f in fields if f in wanted]
    return fields


def uncompared_notes(
    canonical: frozenset[Field], channel: frozenset[Field], config: ChannelConfig
) -> list[str]:
    """What the channel carries that is not checked because canonical cannot say what it
    should be (never what ``expect.check`` leaves out on purpose): one line, said once."""
    compared = set(compared_fields(canonical, channel, config))
    wanted = set(config.expect.check) if config.expect.check is not None else set(Field)
    left = [f for f in Field if f in channel and f in wanted and f not in compared]
    if config.expect.price.sale not in (SaleMode.SEPARATE, SaleMode.SCHEDULED):
        left = [f for f in left if f is not Field.SALE_PRICE]
    reasons = {
        Field.AVAILABILITY: "canonical carries neither stock nor availability",
        Field.SALE_PRICE: "canonical carries no price",
    }
    plain = [f.value for f in left if f not in reasons]
    notes = []
    if plain:
        them = "it" if len(plain) == 1 else "them"
        notes.append(f"not checked: {', '.join(plain)} (canonical does not carry {them})")
    notes += [f"not checked: {f.value} ({reasons[f]})" for f in left if f in reasons]
    return notes


#: Text fields a table may hold uncomposed (see TableTarget): composed (NFC) wherever the
#: engine measures or shows them. SKUs and ids are always stored composed: they are keys.
COMPOSED_LATER = frozenset({"title", "description", "brand"})


def _nfc(value: str | None) -> str | None:
    return None if value is None else unicodedata.normalize("NFC", value)


def _composed(name: str) -> str:
    """SQL of canonical field ``name`` in NFC (only text that can change is normalised)."""
    column = f"c.{name}"
    if name not in COMPOSED_LATER:
        return column
    return (
        f"(CASE WHEN strlen({column}) <> length({column}) "
        f"AND regexp_matches({column}, '[\\x{{300}}-\\x{{10FFFF}}]') "
        f"THEN nfc_normalize({column}) ELSE {column} END)"
    )


def _expected_text(field: str, rule: TextRule) -> str:
    """The expected text SQL; a template or a length cut measures composed text."""
    if rule.template is None and rule.max_length is None:
        return f"c.{field}"
    return expect.text_sql(field, rule, _composed)


def _norm_text(expr: str) -> str:
    return f"nullif(trim(regexp_replace(nfc_normalize({expr}), '\\s+', ' ', 'g')), '')"


def _norm_gtin(expr: str) -> str:
    return f"lpad({expr}, 14, '0')"


def _text_differs(expected: str, actual: str) -> str:
    """Whether two texts differ once normalised; equal texts skip the (costly) normalising,
    which only ever makes equal texts equal."""
    return (
        f"(CASE WHEN {expected} IS NOT DISTINCT FROM {actual} THEN false "
        f"ELSE {_norm_text(expected)} IS DISTINCT FROM {_norm_text(actual)} END)"
    )


#: Fields whose blank canonical value is unknown (a blank sale price means "no sale").
_BLANKABLE = (
    Field.TITLE,
    Field.DESCRIPTION,
    Field.GTIN,
    Field.BRAND,
    Field.ATTRIBUTES,
    Field.PRICE,
)


class _ChannelDiff:
    def __init__(self, engine: DiffEngine, comparison: ChannelComparison) -> None:
        self.engine = engine
        self.con = engine.con
        self.name = comparison.name
        self.canonical = canonical = comparison.canonical
        self.channel = channel = comparison.channel
        self.config = config = comparison.config
        self.basis = comparison.canonical_basis
        self.now = comparison.evaluated_at.astimezone(UTC).replace(tzinfo=None)
        self.fields = compared_fields(canonical.fields, channel.fields, config)
        self.findings: list[Finding] = []
        #: Missing SKUs, whose findings get the whole expected record (for creates).
        self.missing: dict[str, Finding] = {}
        self._stock_rule: str | None = None
        self._price_rules: dict[Decimal | None, str] = {}
        #: The fields compared per row (stock has its own findings): field, flag column, name.
        self._compared = [(f, f"d_{f.value}", f.value) for f in self.fields if f is not Field.STOCK]

    def run(self) -> tuple[list[Finding], list[str]]:
        con = self.con
        c, a = self.canonical.table, self.channel.table
        con.execute("DROP TABLE IF EXISTS _dups")
        con.execute(
            f"CREATE TEMP TABLE _dups AS SELECT sku, count(*) AS n, list(origin ORDER BY ord) AS origins "
            f"FROM {a}_items GROUP BY sku HAVING count(*) > 1"
            if self.channel.duplicates
            else "CREATE TEMP TABLE _dups (sku VARCHAR, n BIGINT, origins VARCHAR[])"
        )
        # A SKU the channel lists twice is not compared, on either side.
        unique = " WHERE sku NOT IN (SELECT sku FROM _dups)" if self.channel.duplicates else ""
        con.execute("DROP VIEW IF EXISTS _chan")
        con.execute(f"CREATE TEMP VIEW _chan AS SELECT * FROM {a}_items{unique}")
        con.execute("DROP VIEW IF EXISTS _canon")
        con.execute(f"CREATE TEMP VIEW _canon AS SELECT * FROM {c}_items{unique}")
        for sku, n, origins in con.execute("SELECT sku, n, origins FROM _dups").fetchall():
            self.findings.append(
                Finding(
                    channel=self.name,
                    kind=Kind.DUPLICATE,
                    sku=sku,
                    detail=f"listed {n} times ({', '.join(o for o in origins[:5] if o)}); not compared",
                )
            )
        try:
            folded = Field.STOCK in self.fields and self._stock_per_sku(c, a)
            price = self._items(c, a, folded)
            if Field.STOCK in self.fields and not folded:
                self._stock(c, a)
            self._creations(c, a, price)
            self._quality(c, a)
        finally:
            for view in ("_chan", "_canon"):
                con.execute(f"DROP VIEW IF EXISTS {view}")
            for temp in ("_dups", "_factors", "_locmap", "_missing", "_prices", "_cand"):
                con.execute(f"DROP TABLE IF EXISTS {temp}")
        self.findings.sort(
            key=lambda f: (
                f.sku,
                f.kind != Kind.DUPLICATE,
                FIELD_ORDER.get(f.field or "", -1),
                f.location or "",
            )
        )
        return self.findings, [f.value for f in self.fields]

    # ---------------------------------------------------------------- data quality

    def _quality(self, c: str, a: str) -> None:
        """Data-quality findings: what the connectors noted (rows without a SKU, mangled
        values), whose fields then never count as differences, and canonical's blank values."""
        compared = {f.value for f in self.fields} | {"sku"}
        noted: set[tuple[str, str]] = set()
        for source, side in ((CANONICAL, self.canonical), (self.name, self.channel)):
            for note in side.notes:
                if note.field not in compared:
                    continue
                noted.add((note.sku, note.field))
                value = note.value
                self.findings.append(
                    self._quality_finding(
                        source,
                        note.origin,
                        note.sku,
                        note.field,
                        note.message,
                        canonical=value if source == CANONICAL else None,
                        actual=None if source == CANONICAL else value,
                    )
                )
        if noted:
            self.findings = [
                f
                for f in self.findings
                if f.kind is not Kind.CHANGED or (f.sku, f.field or "") not in noted
            ]
        self._blanks(c, a, noted)

    def _blanks(self, c: str, a: str, noted: set[tuple[str, str]]) -> None:
        """A blank canonical value means "unknown", never "empty": each one that would have
        changed the channel is reported with its row (the comparison already left it out).
        Where the channel is blank too, nothing would have changed and nothing is said."""
        chan_has = "(a.sku IS NULL OR a.{0} IS NOT NULL)"
        checks = [
            (f.value, f"(c.{f.value} IS NULL AND {chan_has.format(f.value)})")
            for f in _BLANKABLE
            if f in self.fields
        ]
        stock_used = Field.STOCK in self.fields or Field.AVAILABILITY in self.fields
        if stock_used and Field.STOCK in self.canonical.fields:
            checks.append(
                (
                    "stock",
                    f"(c.sku NOT IN (SELECT sku FROM {c}_stock) AND (a.sku IS NULL"
                    f" OR a.sku IN (SELECT sku FROM {a}_stock)))",
                )
            )
        if not checks:
            return
        listed = self.config.expect.assortment == "listed"
        join = " JOIN _chan a ON a.sku = c.sku" if listed else " LEFT JOIN _chan a ON a.sku = c.sku"
        sql = (
            f"SELECT c.sku, c.origin, {', '.join(sql for _, sql in checks)} FROM _canon c{join} "
            f"WHERE {' OR '.join(sql for _, sql in checks)} ORDER BY c.ord"
        )
        for sku, origin, *blank in self.con.execute(sql).fetchall():
            for (name, _), unknown in zip(checks, blank, strict=True):
                if not unknown or (sku, name) in noted:
                    continue
                if name == "stock":
                    message = (
                        "stock is blank in canonical (no quantity at any location): unknown, so "
                        "stock and availability are not compared and never written"
                    )
                else:
                    message = (
                        f"{name} is blank in canonical: unknown, so it is not compared and never "
                        "written (a blank canonical value means unknown, not empty)"
                    )
                self.findings.append(
                    self._quality_finding(
                        CANONICAL, origin or self.canonical.where, sku, name, message
                    )
                )

    def _quality_finding(
        self,
        source: str,
        origin: str,
        sku: str,
        field: str,
        message: str,
        canonical: str | None = None,
        actual: str | None = None,
    ) -> Finding:
        return Finding(
            self.name,
            Kind.DATA_QUALITY,
            sku,
            field=field,
            canonical=canonical,
            actual=actual,
            detail=message,
            source=source,
            origin=origin,
        )

    # ---------------------------------------------------------------- items

    def _stock_total_sql(self, c: str) -> str:
        """Per-SKU canonical total over the locations this channel draws from."""
        locations = self.config.expect.stock.locations
        where = ""
        if locations:
            sources = sorted({s for group in locations.values() for s in group})
            where = " WHERE location IN (" + ", ".join(expect.sql_str(s) for s in sources) + ")"
        return f"SELECT sku, sum(qty) AS qty FROM {c}_stock{where} GROUP BY sku"

    def _stock_per_sku(self, c: str, a: str) -> bool:
        """Whether stock compares as one quantity per SKU (no location mapping, at most one
        location on either side): then it is one more column of the items comparison instead
        of a join of its own."""
        return (
            not self.config.expect.stock.locations
            and self.engine.locations(c) <= 1
            and self.engine.locations(a) <= 1
        )

    def _items(self, c: str, a: str, stock: bool) -> expect.PriceExpectation:
        """Compare the item fields (and, with ``stock``, the per-SKU stock) in two steps.

        1. *Screen*: the FULL JOIN of every canonical SKU with every channel SKU keeps only
           narrow columns (keys, 64-bit hashes of long texts, amounts), so that its hash table
           stays small (the wide rows would spill to disk under the memory limit). It yields the
           candidates (``_cand``): SKUs on one side only, or with a field that may differ.
        2. *Explain*: only the candidates' whole rows are read, the exact (normalising) text
           comparison decides, and every differing field becomes a finding.

        Equal hashes are taken as equal texts (a 64-bit collision between a canonical text and
        its channel copy: ~1 in 10^19 per changed text); different hashes are always confirmed.
        """
        con = self.con
        rules = self.config.expect
        tol_price = expect.sql_dec(rules.tolerance.price, "DECIMAL(18,6)")
        vat_rates = self.engine.distinct(c, "vat_rate")
        currencies = self.engine.distinct(c, "currency")
        price = expect.compile_price(rules.price, self.basis, vat_rates, currencies, self.now)
        con.execute("DROP TABLE IF EXISTS _factors")
        con.execute(f"CREATE TEMP TABLE _factors (vat DECIMAL(9,4), factor {expect.FACTOR_TYPE})")
        con.executemany(
            "INSERT INTO _factors VALUES (?, ?)", [(v, f) for v, f in price.factor_rows]
        )
        default_vat = expect.sql_dec(rules.price.vat, "DECIMAL(9,4)")
        # The creations (few rows) compute their prices directly; the comparison looks them up.
        direct = price
        price, prices_join = self._expected_prices(price, vat_rates, currencies, default_vat)

        # What the channel should show is derived once per canonical row (CTE x, before the
        # join); the join's filter then only compares columns.
        pre: dict[str, str] = {"_vat": f"coalesce(c.vat_rate, {default_vat})"}
        select = [
            "k.sku AS sku",
            "k.in_c AS in_c",
            "k.in_a AS in_a",
            "CASE WHEN NOT k.in_a THEN c.title END AS missing_title",
            "CASE WHEN NOT k.in_c THEN a.title END AS extra_title",
            "a.ids AS a_ids",
        ]
        #: Step 1's columns of ``_cand``: ``s_<field>`` is true where the field may differ.
        screens: list[str] = []
        #: Step 2's exact verdicts (``d_<field>``) of the fields whose screen is a hash.
        confirmed: list[str] = []
        #: The channel's text hashes, computed before the join like the canonical ones in ``pre``
        #: (the join then carries 8 bytes per text, not the text).
        hashed: list[str] = []
        fields = set(self.fields)

        def add(
            field: Field,
            columns: list[str],
            flag: str,
            texts: tuple[str, str] | None = None,
            known: str | None = None,
        ) -> None:
            """``flag``: SQL that is true where ``field`` differs. ``texts``: the SQL of the
            expected text (over the canonical row) and of the channel's column: screened by
            hash in step 1, confirmed by ``flag`` in step 2. ``known``: SQL over the
            canonical row, false where its value is blank, i.e. unknown: never a difference
            (:meth:`_blanks` reports it)."""
            name = field.value
            only = f"{known} AND " if known else ""
            # A field's values only travel to Python for the rows where it may differ.
            for column in columns:
                sql, alias = column.rsplit(" AS ", 1)
                select.append(f"CASE WHEN k.s_{name} THEN {sql} END AS {alias}")
            if texts is None:
                screens.append(f"({only}({flag})) AS s_{name}")
                select.append(f"k.s_{name} AS d_{name}")
                return
            expected, actual = texts
            pre[f"_h_{name}"] = f"hash({expected})"
            hashed.append(f"hash({actual}) AS _h_{name}")
            screens.append(f"({only}c._h_{name} <> a._h_{name}) AS s_{name}")
            select.append(f"(CASE WHEN k.s_{name} THEN {flag} ELSE false END) AS d_{name}")
            confirmed.append(f"d_{name}")

        for field in (Field.TITLE, Field.DESCRIPTION):
            if field in fields:
                rule = rules.title if field is Field.TITLE else rules.description
                exp = source = _expected_text(field.value, rule)
                if exp != f"c.{field.value}":
                    pre[f"_e_{field.value}"] = exp
                    exp = f"c._e_{field.value}"
                add(
                    field,
                    [
                        f"c.{field.value} AS c_{field.value}",
                        f"{exp} AS e_{field.value}",
                        f"a.{field.value} AS x_{field.value}",
                    ],
                    _text_differs(exp, f"a.{field.value}"),
                    (source, f"a.{field.value}"),
                    f"c.{field.value} IS NOT NULL",
                )
        if Field.BRAND in fields:
            add(
                Field.BRAND,
                ["c.brand AS c_brand", "c.brand AS e_brand", "a.brand AS x_brand"],
                _text_differs("c.brand", "a.brand"),
                ("c.brand", "a.brand"),
                "c.brand IS NOT NULL",
            )
        if Field.GTIN in fields:
            add(
                Field.GTIN,
                ["c.gtin AS c_gtin", "c.gtin AS e_gtin", "a.gtin AS x_gtin"],
                # Equal as stored (nearly all) skips the padding.
                "CASE WHEN c.gtin IS NOT DISTINCT FROM a.gtin THEN false ELSE "
                f"{_norm_gtin('c.gtin')} IS DISTINCT FROM {_norm_gtin('a.gtin')} END",
                known="c.gtin IS NOT NULL",
            )
        if Field.ATTRIBUTES in fields:
            add(
                Field.ATTRIBUTES,
                [
                    "c.attributes AS c_attributes",
                    "c.attributes AS e_attributes",
                    "a.attributes AS x_attributes",
                ],
                "c.attributes IS DISTINCT FROM a.attributes",
                ("c.attributes", "a.attributes"),
                "c.attributes IS NOT NULL",
            )
        price_expr = price.effective if rules.price.sale is SaleMode.EFFECTIVE else price.regular
        if Field.PRICE in fields or Field.SALE_PRICE in fields:
            pre["_e_currency"] = price.currency
        if Field.PRICE in fields:
            pre["_e_price"] = price_expr
            pre["_sale_active"] = price.sale_active
            add(
                Field.PRICE,
                [
                    "c.price AS c_price",
                    "c.currency AS c_currency",
                    "c._e_price AS e_price",
                    "c._e_currency AS e_currency",
                    "a.price AS x_price",
                    "a.currency AS x_currency",
                    "c._sale_active AS sale_active",
                    "c.sale_price AS c_sale_price",
                ],
                self._money_flag("c._e_price", "c._e_currency", "a.price", "a.currency", tol_price),
                known="c.price IS NOT NULL",
            )
        if Field.SALE_PRICE in fields:
            scheduled = rules.price.sale is SaleMode.SCHEDULED
            pre["_e_sale"] = price.scheduled if scheduled else price.sale
            sale_flag = self._money_flag(
                "c._e_sale", "c._e_currency", "a.sale_price", "a.sale_currency", tol_price
            )
            if scheduled:
                # Windows compare to the minute: a date-only end and 23:59 mean the same day.
                sale_flag = (
                    f"({sale_flag}) OR (c.sale_price IS NOT NULL AND ("
                    "date_trunc('minute', c.sale_start) IS DISTINCT FROM date_trunc('minute', a.sale_start) OR "
                    "date_trunc('minute', c.sale_end) IS DISTINCT FROM date_trunc('minute', a.sale_end)))"
                )
            add(
                Field.SALE_PRICE,
                [
                    "c.sale_price AS c_sale",
                    "c.sale_start AS c_sale_start",
                    "c.sale_end AS c_sale_end",
                    "c._e_sale AS e_sale",
                    "c._e_currency AS e_sale_currency",
                    "a.sale_price AS x_sale",
                    "a.sale_currency AS x_sale_currency",
                    "a.sale_start AS x_sale_start",
                    "a.sale_end AS x_sale_end",
                ],
                sale_flag,
            )
        priced = [f"k.s_{f.value}" for f in (Field.PRICE, Field.SALE_PRICE) if f in fields]
        if priced:
            select.append(f"CASE WHEN {' OR '.join(priced)} THEN c._vat END AS vat")
        joins = ""
        if Field.AVAILABILITY in fields:
            stock_rules = rules.stock
            expected_qty = expect.stock_sql("coalesce(t.qty, 0)", stock_rules)
            derived = expect.availability_sql(expected_qty, stock_rules)
            pre["_c_availability"] = "coalesce(t.qty, 0)"
            pre["_e_availability"] = derived
            stock_known = None
            has_stock = Field.STOCK in self.canonical.fields
            if Field.AVAILABILITY in self.canonical.fields:
                # Canonical states availability (a feed, a shop export without quantities):
                # compared as a value where its stock is blank or absent, never as stock 0.
                stocked = "t.qty IS NOT NULL" if has_stock else "FALSE"
                pre["_c_availability"] = (
                    f"CASE WHEN {stocked} THEN CAST(t.qty AS VARCHAR) ELSE c.availability END"
                )
                pre["_e_availability"] = (
                    f"CASE WHEN {stocked} THEN {derived} ELSE c.availability END"
                )
                pre["_stock_known"] = f"({stocked}) OR c.availability IS NOT NULL"
                stock_known = "c._stock_known"
            elif has_stock:
                # Availability derives from stock: unknown where canonical's stock is blank.
                pre["_stock_known"] = "t.qty IS NOT NULL"
                stock_known = "c._stock_known"
            add(
                Field.AVAILABILITY,
                [
                    "c._c_availability AS c_availability",
                    "c._e_availability AS e_availability",
                    "a.availability AS x_availability",
                ],
                "c._e_availability IS DISTINCT FROM a.availability",
                known=stock_known,
            )
            joins = f" LEFT JOIN ({self._stock_total_sql(c)}) t ON t.sku = c.sku"
        joins += (
            prices_join + f" LEFT JOIN _factors f ON f.vat = coalesce(c.vat_rate, {default_vat})"
        )
        derived = ", ".join(f"{sql} AS {name}" for name, sql in pre.items())

        # Step 1: the screen. Stock per SKU rides along as two integers.
        canon_stock = chan_stock = ""
        kept: list[str] = []
        if stock:
            expected_stock = expect.stock_sql("coalesce(c._c_qty, 0)", rules.stock)
            canon_stock = (
                f", cs.qty AS _c_qty FROM _canon c LEFT JOIN {c}_stock cs ON cs.sku = c.sku"
            )
            chan_stock = f", xs.qty AS _x_qty FROM _chan a LEFT JOIN {a}_stock xs ON xs.sku = a.sku"
            # A canonical SKU without any stock row has a blank (unknown) stock: not compared.
            screens.append(
                "(c._c_qty IS NOT NULL AND a.sku IS NOT NULL AND "
                f"abs(coalesce(a._x_qty, 0) - {expected_stock}) > {int(rules.tolerance.stock)}) AS s_stock"
            )
            kept = ["c._c_qty AS c_qty", "a._x_qty AS x_qty", f"{expected_stock} AS e_qty"]
            select.extend(["k.s_stock AS d_stock", "k.c_qty", "k.x_qty", "k.e_qty"])
        canon_from = canon_stock or " FROM _canon c"
        chan_from = "".join(f", {h}" for h in hashed) + (chan_stock or " FROM _chan a")
        screened = [screen.rsplit(" AS ", 1)[1] for screen in screens]
        con.execute("DROP TABLE IF EXISTS _cand")
        con.execute(
            f"CREATE TEMP TABLE _cand AS SELECT * FROM ("
            f"WITH x AS (SELECT c.*, {derived}{canon_from}{joins}), "
            f"y AS (SELECT a.*{chan_from}) "
            "SELECT coalesce(c.sku, a.sku) AS sku, c.sku IS NOT NULL AS in_c, a.sku IS NOT NULL AS in_a"
            + "".join(f", {column}" for column in screens + kept)
            + " FROM x c FULL OUTER JOIN y a ON a.sku = c.sku) "
            f"WHERE NOT (in_c AND in_a){''.join(f' OR {name}' for name in screened)}"
        )

        # Step 2: the candidates' whole rows; texts whose hashes differ are compared exactly.
        sql = (
            f"WITH x AS (SELECT c.*, {derived} FROM "
            f"(SELECT * FROM _canon WHERE sku IN (SELECT sku FROM _cand)) c{joins}), "
            "y AS (SELECT * FROM _chan WHERE sku IN (SELECT sku FROM _cand)) "
            f"SELECT {', '.join(select)} FROM _cand k "
            "LEFT JOIN x c ON c.sku = k.sku LEFT JOIN y a ON a.sku = k.sku"
        )
        if confirmed:  # a hash difference may turn out to be none: keep the rows that differ
            flags = "".join(f" OR d_{name[2:]}" for name in screened)
            sql = f"SELECT * FROM ({sql}) WHERE NOT (in_c AND in_a){flags}"
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        rule_price = price.describe
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                break
            for values in chunk:
                row = dict(zip(names, values, strict=True))
                self._row_findings(row, rule_price)
        return direct

    def _expected_prices(
        self,
        price: expect.PriceExpectation,
        vat_rates: list[Any],
        currencies: list[Any],
        default_vat: str,
    ) -> tuple[expect.PriceExpectation, str]:
        """The price rule with its amounts looked up in ``_prices``, computed once per distinct
        (amount, VAT, currency): the exact arithmetic runs in 128-bit decimals, and a catalogue
        repeats its prices. Also the joins that bring the amounts to the canonical rows."""
        if Field.PRICE not in self.fields and Field.SALE_PRICE not in self.fields:
            return price, ""
        con = self.con
        vat = f"coalesce(vat_rate, {default_vat})"
        columns = ["price"]
        row = con.execute("SELECT count(sale_price) > 0 FROM _canon").fetchone()
        if row and row[0]:
            columns.append("sale_price")
        amounts = " UNION ".join(
            f"SELECT DISTINCT {column} AS amount, {vat} AS vat, currency FROM _canon "
            f"WHERE {column} IS NOT NULL"
            for column in columns
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _prices AS SELECT c.amount, c.vat, c.currency, "
            f"{price.amount_sql} AS expected FROM ({amounts}) c "
            "LEFT JOIN _factors f ON f.vat = c.vat"
        )
        joins = "".join(
            f" LEFT JOIN _prices {alias} ON {alias}.amount = c.{column} "
            f"AND {alias}.vat = coalesce(c.vat_rate, {default_vat}) "
            f"AND {alias}.currency IS NOT DISTINCT FROM c.currency"
            for alias, column in (("_pp", "price"), ("_ps", "sale_price"))
            if column in columns
        )
        looked_up = expect.compile_price(
            self.config.expect.price,
            self.basis,
            vat_rates,
            currencies,
            self.now,
            amounts={"price": "_pp.expected", "sale_price": "_ps.expected"}
            if "sale_price" in columns
            else {"price": "_pp.expected", "sale_price": "CAST(NULL AS DECIMAL(18,6))"},
        )
        return looked_up, joins

    @staticmethod
    def _money_flag(
        expected: str, currency: str, actual: str, actual_currency: str, tol: str
    ) -> str:
        return (
            f"NOT ({expected} IS NULL AND {actual} IS NULL) AND ({expected} IS NULL OR {actual} IS NULL "
            f"OR abs({actual} - {expected}) > {tol} "
            f"OR ({actual_currency} IS NOT NULL AND {actual_currency} <> {currency}))"
        )

    def _price_rule(self, template: str, vat: Decimal | None) -> str:
        """The price rule's text for a VAT rate (a catalogue has few: formatted once each)."""
        text = self._price_rules.get(vat)
        if text is None:
            text = template.format(vat=expect.percent(vat) if vat is not None else "0%")
            self._price_rules[vat] = text
        return text

    def _row_findings(self, row: dict[str, Any], rule_price: str) -> None:
        sku = row["sku"]
        ids = json.loads(row["a_ids"]) if row["a_ids"] else {}
        if not row["in_a"]:
            if self.config.expect.assortment == "listed":
                return
            missing = Finding(
                self.name,
                Kind.MISSING,
                sku,
                canonical=_nfc(row["missing_title"]),
                detail="in canonical, not in channel",
            )
            self.findings.append(missing)
            self.missing[sku] = missing
            return
        if not row["in_c"]:
            self.findings.append(
                Finding(
                    self.name,
                    Kind.EXTRA,
                    sku,
                    actual=_nfc(row["extra_title"]),
                    detail="in channel, not in canonical",
                    ids=ids,
                    before={"sku": sku, "ids": ids},
                )
            )
            return
        rules = self.config.expect
        for field, flag, name in self._compared:
            if not row[flag]:
                continue
            f = Finding(self.name, Kind.CHANGED, sku, field=name, ids=ids)
            if field is Field.PRICE:
                f.canonical = money(row["c_price"], row["c_currency"])
                f.expected = money(row["e_price"], row["e_currency"])
                f.actual = money(row["x_price"], row["x_currency"] or row["e_currency"])
                f.rule = self._price_rule(rule_price, row["vat"])
                if rules.price.sale is SaleMode.EFFECTIVE and row["sale_active"]:
                    f.rule += f"; sale {money(row['c_sale_price'], row['c_currency'])} active"
                f.before = _mj(row["x_price"], row["x_currency"] or row["e_currency"])
                f.after = _mj(row["e_price"], row["e_currency"])
                if row["x_price"] is not None and row["e_price"] is not None:
                    delta = row["x_price"] - row["e_price"]
                    f.detail = f"differs by {'+' if delta > 0 else ''}{money(delta, None)}"
            elif field is Field.SALE_PRICE:
                f.canonical = money(row["c_sale"], row["c_currency"])
                f.expected = money(row["e_sale"], row["e_sale_currency"])
                f.actual = money(row["x_sale"], row["x_sale_currency"] or row["e_sale_currency"])
                zone = self.engine.zone
                window = f"{_stamp(row['c_sale_start'], zone)} → {_stamp(row['c_sale_end'], zone)}"
                scheduled = rules.price.sale is SaleMode.SCHEDULED
                currency = row["e_sale_currency"]
                f.before = _sj(
                    row["x_sale"],
                    row["x_sale_currency"] or currency,
                    row["x_sale_start"] if scheduled else None,
                    row["x_sale_end"] if scheduled else None,
                )
                f.after = _sj(
                    row["e_sale"],
                    currency,
                    row["c_sale_start"] if scheduled else None,
                    row["c_sale_end"] if scheduled else None,
                )
                if scheduled:
                    if f.expected is not None:
                        f.expected += f" ({window})"
                    if f.actual is not None or row["x_sale_start"] or row["x_sale_end"]:
                        f.actual = f"{f.actual or '—'} ({_stamp(row['x_sale_start'], zone)} → {_stamp(row['x_sale_end'], zone)})"
                if row["c_sale"] is None:
                    f.rule = "no sale in canonical"
                elif row["e_sale"] is None and rules.price.sale is not SaleMode.SCHEDULED:
                    f.rule = f"sale window {window} not active"
                else:
                    f.rule = self._price_rule(rule_price, row["vat"]) + f"; sale window {window}"
            elif field is Field.AVAILABILITY:
                f.canonical = f"stock {row['c_availability']}"
                f.expected = row["e_availability"]
                f.actual = row["x_availability"]
                f.before, f.after = f.actual, f.expected
                f.rule = (
                    expect.describe_stock(rules.stock)
                    + "; "
                    + expect.describe_availability(rules.stock)
                )
            elif field is Field.ATTRIBUTES:
                f.canonical, f.expected, f.actual = (
                    row["c_attributes"],
                    row["e_attributes"],
                    row["x_attributes"],
                )
                f.detail = explain_nested(row["c_attributes"], row["x_attributes"])
                f.before = json.loads(row["x_attributes"]) if row["x_attributes"] else None
                f.after = json.loads(row["c_attributes"]) if row["c_attributes"] else None
            else:
                f.canonical = row[f"c_{field.value}"]
                f.expected = row[f"e_{field.value}"]
                f.actual = row[f"x_{field.value}"]
                if field.value in COMPOSED_LATER:
                    f.canonical, f.expected, f.actual = (
                        _nfc(f.canonical),
                        _nfc(f.expected),
                        _nfc(f.actual),
                    )
                f.before, f.after = f.actual, f.expected
                if field in (Field.TITLE, Field.DESCRIPTION):
                    rule = rules.title if field is Field.TITLE else rules.description
                    f.rule = expect.describe_text(field.value, rule)
            self.findings.append(f)
        if row.get("d_stock"):
            self._stock_finding(sku, ids, None, row["c_qty"] or 0, row["e_qty"], row["x_qty"])

    # ---------------------------------------------------------------- stock

    def _stock_cte(self, c: str, a: str, skus: str, few: bool = False) -> str:
        """SQL CTEs ending in ``e``: expected stock per (sku, channel location) for ``skus``
        (a query of ``sku, ids``), and ``xs``: the channel's stock per (sku, location).
        ``few``: ``skus`` is a small part of the catalogue; sum only their stock."""
        rules = self.config.expect.stock
        locations = rules.locations
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE _locmap (loc VARCHAR, src VARCHAR)")
        if locations:
            con.executemany(
                "INSERT INTO _locmap VALUES (?, ?)",
                [(loc, src) for loc, sources in locations.items() for src in sources],
            )
            chan_loc = "s.location"
            chan_where = " WHERE s.location IN (SELECT loc FROM _locmap)"
            locs = "SELECT DISTINCT loc FROM _locmap"
            can_join = f"FROM {c}_stock s JOIN _locmap m ON m.src = s.location"
        else:
            chan_loc = "NULL::VARCHAR"
            chan_where = ""
            locs = "SELECT NULL::VARCHAR AS loc"
            can_join = f"FROM {c}_stock s CROSS JOIN (SELECT NULL::VARCHAR AS loc) m"
        expected = expect.stock_sql("coalesce(cs.qty, 0)", rules)
        only = " WHERE s.sku IN (SELECT sku FROM both_)" if few else ""
        # A stock table has one row per (SKU, location) of each record, and the SKUs compared
        # are listed once on each side: a sum is only needed where several locations become
        # one (a mapping that merges sources, or no mapping and several locations). Summing a
        # million single rows costs as much as a join.
        merged = any(len(sources) > 1 for sources in (locations or {}).values())
        summed = {
            side: merged or (not locations and self.engine.locations(side) > 1) for side in (c, a)
        }

        def per_location(side: str, loc: str, source: str) -> str:
            if summed[side]:
                return f"SELECT s.sku, {loc} AS loc, sum(s.qty) AS qty {source} GROUP BY ALL"
            return f"SELECT s.sku, {loc} AS loc, s.qty {source}"

        cs = per_location(c, "m.loc", f"{can_join}{only}")
        xs = per_location(a, chan_loc, f"FROM {a}_stock s{chan_where}")
        return f"""
            WITH both_ AS ({skus}),
            cs AS ({cs}),
            xs AS ({xs}),
            e AS (
                SELECT b.sku, b.ids, l.loc, coalesce(cs.qty, 0) AS canonical, {expected} AS expected
                FROM both_ b CROSS JOIN ({locs}) l
                LEFT JOIN cs ON cs.sku = b.sku AND cs.loc IS NOT DISTINCT FROM l.loc
            )
        """

    def _stock(self, c: str, a: str) -> None:
        tol = self.config.expect.tolerance.stock
        # Only SKUs whose canonical stock is known (a blank stock has no row; see _blanks).
        both = (
            f"SELECT c.sku, a.ids FROM {c}_items c JOIN _chan a ON a.sku = c.sku "
            f"WHERE c.sku IN (SELECT sku FROM {c}_stock)"
        )
        sql = (
            self._stock_cte(c, a, both)
            + f"""
            SELECT e.sku, e.ids, e.loc, e.canonical, e.expected, xs.qty
            FROM e LEFT JOIN xs ON xs.sku = e.sku AND xs.loc IS NOT DISTINCT FROM e.loc
            WHERE abs(coalesce(xs.qty, 0) - e.expected) > {int(tol)}
        """
        )
        cursor = self.con.execute(sql)
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                break
            for sku, ids, loc, canonical, expected_qty, actual in chunk:
                self._stock_finding(
                    sku, json.loads(ids) if ids else {}, loc, canonical, expected_qty, actual
                )

    def _stock_finding(
        self,
        sku: str,
        ids: dict[str, Any],
        location: str | None,
        canonical: int,
        expected: int,
        actual: int | None,
    ) -> None:
        if self._stock_rule is None:
            self._stock_rule = expect.describe_stock(self.config.expect.stock)
        self.findings.append(
            Finding(
                self.name,
                Kind.CHANGED,
                sku,
                field=Field.STOCK.value,
                location=location,
                canonical=str(canonical),
                expected=str(expected),
                actual=None if actual is None else str(actual),
                before=actual,
                after=expected,
                rule=self._stock_rule,
                ids=ids,
                detail=None if actual is not None else "no stock level in channel",
            )
        )

    # ---------------------------------------------------------------- creates

    def _creations(self, c: str, a: str, price: expect.PriceExpectation) -> None:
        """Give every missing finding the whole record the channel should get (for creates):
        every field the channel carries, derived by the same rules as the comparison."""
        if not self.missing:
            return
        con = self.con
        missing = pa.table({"sku": pa.array(list(self.missing), pa.string())})
        con.register("_missing_skus", missing)
        con.execute("CREATE OR REPLACE TEMP TABLE _missing AS SELECT sku FROM _missing_skus")
        con.unregister("_missing_skus")
        rules = self.config.expect
        carried = self.channel.fields
        default_vat = expect.sql_dec(rules.price.vat, "DECIMAL(9,4)")
        sale = price.scheduled if rules.price.sale is SaleMode.SCHEDULED else price.sale
        price_expr = price.effective if rules.price.sale is SaleMode.EFFECTIVE else price.regular
        sql = f"""
            SELECT c.sku, {_expected_text("title", rules.title)} AS title,
                {_expected_text("description", rules.description)} AS description,
                c.gtin, c.brand, c.attributes, {price_expr} AS price, {price.currency} AS currency,
                {sale} AS sale, c.sale_start, c.sale_end
            FROM {c}_items c JOIN _missing m ON m.sku = c.sku
            LEFT JOIN _factors f ON f.vat = coalesce(c.vat_rate, {default_vat})
        """
        scheduled = rules.price.sale is SaleMode.SCHEDULED
        for row in con.execute(sql).fetchall():
            (
                sku,
                title,
                description,
                gtin,
                brand,
                attributes,
                amount,
                currency,
                sale_amount,
                start,
                end,
            ) = row
            record: dict[str, Any] = {"sku": sku}
            for name, value in (
                ("title", _nfc(title)),
                ("description", _nfc(description)),
                ("gtin", gtin),
                ("brand", _nfc(brand)),
            ):
                if Field(name) in carried and value is not None:
                    record[name] = value
            if Field.ATTRIBUTES in carried and attributes:
                record["attributes"] = json.loads(attributes)
            if Field.PRICE in carried and amount is not None:
                record["price"] = _mj(amount, currency)
            if Field.SALE_PRICE in carried and sale_amount is not None:
                record["sale_price"] = _sj(
                    sale_amount, currency, start if scheduled else None, end if scheduled else None
                )
            self.missing[sku].after = record
        if Field.STOCK in carried or Field.AVAILABILITY in carried:
            # A record whose canonical stock is blank (unknown) is created without stock.
            known = f"SELECT sku, NULL::VARCHAR AS ids FROM _missing WHERE sku IN (SELECT sku FROM {c}_stock)"
            sql = self._stock_cte(c, a, known, few=True) + (
                "SELECT e.sku, e.loc, e.expected FROM e"
            )
            for sku, loc, qty in con.execute(sql).fetchall():
                record = self.missing[sku].after
                if Field.STOCK in carried:
                    record.setdefault("stock", {})[loc or "default"] = qty
                if Field.AVAILABILITY in carried:
                    total = sum(record.get("stock", {}).values()) if Field.STOCK in carried else qty
                    floor = rules.stock.availability.in_stock_min
                    record["availability"] = (
                        "in_stock" if total >= floor else rules.stock.availability.otherwise
                    )


def explain_nested(canonical: str | None, actual: str | None) -> str:
    """A short human explanation of how two nested values (JSON objects) differ."""
    from deepdiff import DeepDiff

    left = json.loads(canonical) if canonical else {}
    right = json.loads(actual) if actual else {}
    diff = DeepDiff(left, right, ignore_order=True, verbose_level=2)
    parts = []
    for key, label in (
        ("values_changed", "changed"),
        ("dictionary_item_added", "only in channel"),
        ("dictionary_item_removed", "missing in channel"),
        ("type_changes", "type changed"),
        ("iterable_item_added", "only in channel"),
        ("iterable_item_removed", "missing in channel"),
    ):
        entries = diff.get(key)
        if not entries:
            continue
        items = entries.items() if isinstance(entries, dict) else ((e, None) for e in entries)
        for path, change in items:
            name = str(path).removeprefix("root")
            if isinstance(change, dict) and "old_value" in change:
                parts.append(f"{name}: {change['old_value']!r} → {change['new_value']!r}")
            else:
                parts.append(f"{name} {label}")
    return "; ".join(parts) or "differs"
