"""The catalogue diff: keyed by SKU, vectorised in DuckDB, exact in DECIMAL.

Expectations (:mod:`omnisync.expect`) are evaluated as SQL over the canonical table (loaded by
:mod:`omnisync.load`), joined to the channel's table on SKU, and only the rows that differ
come back to Python to become :class:`~omnisync.models.Finding` objects. The canonical side
is loaded once and compared with every channel; each channel's tables are dropped after its
diff.
"""

from __future__ import annotations

from omnisync import expect
from omnisync.diff.base import ChannelComparison, compared_fields, uncompared_notes
from omnisync.diff.create import _Create
from omnisync.diff.sql import COMPOSED_LATER, FIELD_ORDER, explain_nested
from omnisync.load import Engine
from omnisync.models import Field, Finding, Kind

__all__ = [
    "COMPOSED_LATER",
    "FIELD_ORDER",
    "ChannelComparison",
    "DiffEngine",
    "compared_fields",
    "explain_nested",
    "uncompared_notes",
]


class _ChannelDiff(_Create):
    """One channel against canonical: duplicates, items, stock, creations, data quality.

    Its parts build on each other, one module each: :mod:`.base` (the shared state),
    :mod:`.quality`, :mod:`.rows`, :mod:`.items`, :mod:`.stock` and :mod:`.create`.
    """

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
        severity = self.config.expect.severity
        if severity:
            for finding in self.findings:
                finding.severity = expect.severity_of(finding, severity)
        self.findings.sort(
            key=lambda f: (
                f.sku,
                f.kind != Kind.DUPLICATE,
                FIELD_ORDER.get(f.field or "", -1),
                f.location or "",
            )
        )
        return self.findings, [f.value for f in self.fields]


class DiffEngine(Engine):
    """The engine that also compares: a loaded channel against the loaded canonical side."""

    def diff(self, comparison: ChannelComparison) -> tuple[list[Finding], list[str]]:
        """Compare one loaded channel with the canonical side; return findings and compared
        fields."""
        return _ChannelDiff(self, comparison).run()
