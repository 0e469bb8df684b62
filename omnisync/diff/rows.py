"""Rows to findings: one differing row of step 2 becomes its findings, field by field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from omnisync import expect
from omnisync.diff.quality import (
    _Quality,
)
from omnisync.diff.sql import (
    COMPOSED_LATER,
    _mj,
    _nfc,
    _sj,
    _stamp,
    explain_nested,
)
from omnisync.expect import SaleMode
from omnisync.models import Field, Finding, Kind
from omnisync.sdk.values import money


class _Rows(_Quality):
    """Rows to findings: one differing row of step 2 becomes its findings, field by field."""

    def _row_findings(self, row: dict[str, Any], rule_price: str) -> None:
        sku = row["sku"]
        ids = json.loads(row["a_ids"]) if row["a_ids"] else {}
        if not row["in_a"]:
            self._missing_finding(sku, row)
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
        for field, flag, name in self._compared:
            if not row[flag]:
                continue
            f = Finding(self.name, Kind.CHANGED, sku, field=name, ids=ids)
            if field is Field.PRICE:
                self._explain_price(f, row, rule_price)
            elif field is Field.SALE_PRICE:
                self._explain_sale_price(f, row, rule_price)
            elif field is Field.AVAILABILITY:
                self._explain_availability(f, row)
            elif field is Field.ATTRIBUTES:
                self._explain_attributes(f, row)
            else:
                self._explain_value(f, field, row)
            self.findings.append(f)
        if row.get("d_stock"):
            self._stock_finding(sku, ids, None, row["c_qty"] or 0, row["e_qty"], row["x_qty"])

    def _missing_finding(self, sku: str, row: dict[str, Any]) -> None:
        """A SKU canonical has and the channel lacks (unless the channel lists only some)."""
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

    def _explain_price(self, f: Finding, row: dict[str, Any], rule_price: str) -> None:
        rules = self.config.expect
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

    def _explain_sale_price(self, f: Finding, row: dict[str, Any], rule_price: str) -> None:
        """The sale price, with its window where the channel schedules sales itself."""
        rules = self.config.expect
        f.canonical = money(row["c_sale"], row["c_sale_currency"])
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

    def _explain_availability(self, f: Finding, row: dict[str, Any]) -> None:
        stock = self.config.expect.stock
        f.canonical = f"stock {row['c_availability']}"
        f.expected = row["e_availability"]
        f.actual = row["x_availability"]
        f.before, f.after = f.actual, f.expected
        f.rule = expect.describe_stock(stock) + "; " + expect.describe_availability(stock)

    def _explain_attributes(self, f: Finding, row: dict[str, Any]) -> None:
        f.canonical, f.expected, f.actual = (
            row["c_attributes"],
            row["e_attributes"],
            row["x_attributes"],
        )
        f.detail = explain_nested(row["c_attributes"], row["x_attributes"])
        f.before = json.loads(row["x_attributes"]) if row["x_attributes"] else None
        f.after = json.loads(row["c_attributes"]) if row["c_attributes"] else None

    def _explain_value(self, f: Finding, field: Field, row: dict[str, Any]) -> None:
        """A field compared as its value (title, description, GTIN, ...)."""
        rules = self.config.expect
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

    def _price_rule(self, template: str, vat: Decimal | None) -> str:
        """The price rule's text for a VAT rate (a catalogue has few: formatted once each)."""
        text = self._price_rules.get(vat)
        if text is None:
            text = template.format(vat=expect.percent(vat) if vat is not None else "0%")
            self._price_rules[vat] = text
        return text

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
