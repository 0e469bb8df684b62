"""Data-quality findings: blank canonical values, rows without a SKU, mangled values."""

from __future__ import annotations

from omnisync.diff.base import (
    _DiffBase,
)
from omnisync.diff.sql import (
    _BLANKABLE,
)
from omnisync.load import CANONICAL
from omnisync.models import Field, Finding, Kind


class _Quality(_DiffBase):
    """Data-quality findings: blank canonical values, rows without a SKU, mangled values."""

    # ---------------------------------------------------------------- data quality

    def _quality(self, c: str, a: str) -> None:
        """Data-quality findings: what the connectors noted (rows without a SKU, mangled
        values), whose fields then never count as differences, and canonical's blank values."""
        compared = {f.value for f in self.fields} | {"sku"}
        noted: set[tuple[str, str]] = set()
        # A damaged value both sides hold as the same text (a channel fed from the same
        # export): the channel shows what canonical has, so there is nothing to say here.
        raw = {(n.sku, n.field): n.value for n in self.canonical.notes if n.sku}
        same = {
            (n.sku, n.field)
            for n in self.channel.notes
            if n.sku and n.value is not None and raw.get((n.sku, n.field)) == n.value
        }
        for source, side in ((CANONICAL, self.canonical), (self.name, self.channel)):
            for note in side.notes:
                if note.field not in compared:
                    continue
                noted.add((note.sku, note.field))
                if (note.sku, note.field) in same:
                    continue
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
                    of_list = self._price_list_of(name)
                    message = (
                        f"{name}{of_list} is blank in canonical: unknown, so it is not compared "
                        "and never written (a blank canonical value means unknown, not empty)"
                    )
                self.findings.append(
                    self._quality_finding(
                        CANONICAL, origin or self.canonical.where, sku, name, message
                    )
                )

    def _price_list_of(self, name: str) -> str:
        """`` (price list b2b)`` where the channel takes ``name`` from a price list."""
        rules = self.config.expect.price
        listed = {"price": rules.price_list, "sale_price": rules.sale_list}.get(name)
        return f" (price list {listed})" if listed not in (None, "sale_price") else ""

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
