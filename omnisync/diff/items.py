"""The items comparison in two steps: a narrow screen of every SKU, then the candidates explained."""

from __future__ import annotations

import json
from typing import Any

from omnisync import expect
from omnisync.diff.rows import (
    _Rows,
)
from omnisync.diff.sql import (
    _expected_text,
    _norm_gtin,
    _Screen,
    _text_differs,
)
from omnisync.expect import SaleMode
from omnisync.models import Field, Finding, Kind


class _Items(_Rows):
    """The items comparison in two steps: a narrow screen of every SKU, then the candidates explained."""

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
        tol_price = rules.tolerance.price
        vat_rates = self.engine.distinct(c, "vat_rate")
        currencies = self.engine.distinct(c, "currency")
        if rules.price.price_list is not None:  # the list's own currencies
            currencies = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT currency FROM _canon_src WHERE currency IS NOT NULL"
                ).fetchall()
            ]
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

        q = _Screen(
            pre={"_vat": f"coalesce(c.vat_rate, {default_vat})"},
            select=[
                "k.sku AS sku",
                "k.in_c AS in_c",
                "k.in_a AS in_a",
                "CASE WHEN NOT k.in_a THEN c.title END AS missing_title",
                "CASE WHEN NOT k.in_c THEN a.title END AS extra_title",
                "a.ids AS a_ids",
            ],
        )
        self._content_fields(q)
        self._price_fields(q, price, tol_price)
        joins = self._availability_field(q, c)
        joins += (
            prices_join + f" LEFT JOIN _factors f ON f.vat = coalesce(c.vat_rate, {default_vat})"
        )
        self._candidates(q, c, a, stock, joins)
        self._explain(q, joins, price.describe)
        if Field.PRICE in self.fields and self.engine.has_prices(a):
            self._location_prices(q, joins, a, tol_price, price.describe)
        return direct

    def _content_fields(self, q: _Screen) -> None:
        """Title, description, brand, GTIN and attributes."""
        rules = self.config.expect
        fields, pre = set(self.fields), q.pre
        for field in (Field.TITLE, Field.DESCRIPTION):
            if field in fields:
                rule = rules.title if field is Field.TITLE else rules.description
                exp = source = _expected_text(field.value, rule)
                if exp != f"c.{field.value}":
                    pre[f"_e_{field.value}"] = exp
                    exp = f"c._e_{field.value}"
                q.add(
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
            q.add(
                Field.BRAND,
                ["c.brand AS c_brand", "c.brand AS e_brand", "a.brand AS x_brand"],
                _text_differs("c.brand", "a.brand"),
                ("c.brand", "a.brand"),
                "c.brand IS NOT NULL",
            )
        if Field.GTIN in fields:
            q.add(
                Field.GTIN,
                ["c.gtin AS c_gtin", "c.gtin AS e_gtin", "a.gtin AS x_gtin"],
                # Equal as stored (nearly all) skips the padding.
                "CASE WHEN c.gtin IS NOT DISTINCT FROM a.gtin THEN false ELSE "
                f"{_norm_gtin('c.gtin')} IS DISTINCT FROM {_norm_gtin('a.gtin')} END",
                known="c.gtin IS NOT NULL",
            )
        if Field.ATTRIBUTES in fields:
            q.add(
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

    def _price_fields(
        self, q: _Screen, price: expect.PriceExpectation, tol_price: expect.MoneyTolerance
    ) -> None:
        """Price and sale price (with its window where sales are scheduled)."""
        rules = self.config.expect
        fields = set(self.fields)
        pre, select = q.pre, q.select
        price_expr = price.effective if rules.price.sale is SaleMode.EFFECTIVE else price.regular
        if Field.PRICE in fields or Field.SALE_PRICE in fields:
            pre["_e_currency"] = price.currency
        if Field.PRICE in fields:
            pre["_e_price"] = price_expr
            pre["_sale_active"] = price.sale_active
            q.add(
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
                "c._e_sale",
                "c._e_currency",
                "a.sale_price",
                "a.sale_currency",
                rules.tolerance.sale,
            )
            if scheduled:
                # Windows compare to the minute: a date-only end and 23:59 mean the same day.
                sale_flag = (
                    f"({sale_flag}) OR (c.sale_price IS NOT NULL AND ("
                    "date_trunc('minute', c.sale_start) IS DISTINCT FROM date_trunc('minute', a.sale_start) OR "
                    "date_trunc('minute', c.sale_end) IS DISTINCT FROM date_trunc('minute', a.sale_end)))"
                )
            q.add(
                Field.SALE_PRICE,
                [
                    "c.sale_price AS c_sale",
                    "c.sale_currency AS c_sale_currency",
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

    def _availability_field(self, q: _Screen, c: str) -> str:
        """Availability, derived from canonical stock or stated by canonical; the join it needs."""
        rules = self.config.expect
        pre = q.pre
        joins = ""
        if Field.AVAILABILITY in self.fields:
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
            q.add(
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
        return joins

    def _candidates(self, q: _Screen, c: str, a: str, stock: bool, joins: str) -> None:
        """Step 1, the screen: every SKU of either side, narrow columns, into ``_cand``."""
        con, rules = self.con, self.config.expect
        derived = ", ".join(f"{sql} AS {name}" for name, sql in q.pre.items())
        screens, select, hashed = q.screens, q.select, q.hashed
        # Stock per SKU rides along as two integers.
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

    def _explain(self, q: _Screen, joins: str, rule_price: str) -> None:
        """Step 2: the candidates' whole rows; each differing field becomes a finding."""
        con = self.con
        derived = ", ".join(f"{sql} AS {name}" for name, sql in q.pre.items())
        select, confirmed = q.select, q.confirmed
        screened = [screen.rsplit(" AS ", 1)[1] for screen in q.screens]
        # Texts whose hashes differ are compared exactly.
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
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                break
            for values in chunk:
                row = dict(zip(names, values, strict=True))
                self._row_findings(row, rule_price)

    def _location_prices(
        self,
        q: _Screen,
        joins: str,
        a: str,
        tol_price: expect.MoneyTolerance,
        rule_price: str,
    ) -> None:
        """The prices the channel shows at its locations (``{a}_prices``: a store's own price)
        against the price it should show: the same expectation as ``price``, one finding per
        (SKU, location) that differs, with the location named."""
        derived = ", ".join(f"{sql} AS {name}" for name, sql in q.pre.items())
        flag = self._money_flag("c._e_price", "c._e_currency", "p.price", "p.currency", tol_price)
        sql = (
            f"WITH x AS (SELECT c.*, {derived} FROM "
            f"(SELECT * FROM _canon WHERE sku IN (SELECT sku FROM {a}_prices)) c{joins}) "
            "SELECT p.sku, p.location, a.ids AS a_ids, c.price AS c_price, "
            "c.currency AS c_currency, c._e_price AS e_price, c._e_currency AS e_currency, "
            "p.price AS x_price, p.currency AS x_currency, c._vat AS vat, "
            "c._sale_active AS sale_active, c.sale_price AS c_sale_price "
            f"FROM {a}_prices p JOIN _chan a ON a.sku = p.sku JOIN x c ON c.sku = p.sku "
            f"WHERE c.price IS NOT NULL AND {flag}"
        )
        cursor = self.con.execute(sql)
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            ids = json.loads(row["a_ids"]) if row["a_ids"] else {}
            finding = Finding(
                self.name,
                Kind.CHANGED,
                row["sku"],
                field=Field.PRICE.value,
                location=row["location"],
                ids=ids,
            )
            self._explain_price(finding, row, rule_price)
            self.findings.append(finding)

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
        row = con.execute("SELECT count(sale_price) > 0 FROM _canon").fetchall()[0]
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
        expected: str,
        currency: str,
        actual: str,
        actual_currency: str,
        tol: expect.MoneyTolerance,
    ) -> str:
        return (
            f"NOT ({expected} IS NULL AND {actual} IS NULL) AND ({expected} IS NULL OR {actual} IS NULL "
            f"OR {expect.beyond_tolerance(actual, expected, tol)} "
            f"OR ({actual_currency} IS NOT NULL AND {actual_currency} <> {currency}))"
        )
