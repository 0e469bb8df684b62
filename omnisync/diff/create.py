"""Creations: the whole expected record of each missing SKU, for pushes that create."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from omnisync import expect
from omnisync.diff.sql import (
    _expected_text,
    _mj,
    _nfc,
    _sj,
)
from omnisync.diff.stock import (
    _Stock,
)
from omnisync.expect import SaleMode
from omnisync.models import Field


class _Create(_Stock):
    """Creations: the whole expected record of each missing SKU, for pushes that create."""

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
            FROM _canon_src c JOIN _missing m ON m.sku = c.sku
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
        if Field.STOCK in carried:
            # A record whose canonical stock is blank (unknown) is created without stock.
            known = f"SELECT sku, NULL::VARCHAR AS ids FROM _missing WHERE sku IN (SELECT sku FROM {c}_stock)"
            sql = self._stock_cte(c, a, known, few=True) + (
                "SELECT e.sku, e.loc, e.expected FROM e"
            )
            for sku, loc, qty in con.execute(sql).fetchall():
                self.missing[sku].after.setdefault("stock", {})[loc or "default"] = qty
        if Field.AVAILABILITY in carried:
            self._created_availability(c)

    def _created_availability(self, c: str) -> None:
        """The availability of each missing SKU as the comparison expects it: derived from
        the stock the channel draws on, or canonical's own where its stock is blank; none
        where both are unknown."""
        rules = self.config.expect.stock
        derived = expect.availability_sql(expect.stock_sql("t.qty", rules), rules)
        stated = "c.availability" if Field.AVAILABILITY in self.canonical.fields else "NULL"
        if Field.STOCK not in self.canonical.fields:
            derived = stated
        sql = (
            f"SELECT m.sku, CASE WHEN t.qty IS NOT NULL THEN {derived} ELSE {stated} END "
            f"FROM _missing m JOIN {c}_items c ON c.sku = m.sku "
            f"LEFT JOIN ({self._stock_total_sql(c)}) t ON t.sku = m.sku"
        )
        for sku, availability in self.con.execute(sql).fetchall():
            if availability is not None:
                self.missing[sku].after["availability"] = availability
