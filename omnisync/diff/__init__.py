"""The catalogue diff: keyed by SKU, vectorised in DuckDB, exact in DECIMAL.

Expectations (:mod:`omnisync.expect`) are evaluated as SQL over the canonical table (loaded by
:mod:`omnisync.load`), joined to the channel's table on SKU, and only the rows that differ
come back to Python to become :class:`~omnisync.models.Finding` objects. The canonical side
is loaded once and compared with every channel; each channel's tables are dropped after its
diff.
"""

from __future__ import annotations

from datetime import UTC, datetime

from omnisync import expect
from omnisync.diff.base import ChannelComparison, compared_fields, uncompared_notes
from omnisync.diff.create import _Create
from omnisync.diff.identity import _Identity
from omnisync.diff.sql import COMPOSED_LATER, FIELD_ORDER, explain_nested
from omnisync.durations import format_duration
from omnisync.errors import ConfigError, Problem
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


class _ChannelDiff(_Identity, _Create):
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
        # A SKU the channel lists twice is not compared, on either side; nor one it changed
        # within `expect.lag`.
        excluded = ["SELECT sku FROM _dups"] if self.channel.duplicates else []
        if self._held_back(a):
            excluded.append("SELECT sku FROM _recent")
        unique = f" WHERE sku NOT IN ({' UNION '.join(excluded)})" if excluded else ""
        con.execute("DROP VIEW IF EXISTS _chan")
        con.execute(f"CREATE TEMP VIEW _chan AS SELECT * FROM {a}_items{unique}")
        self._canonical_prices(c)
        con.execute("DROP VIEW IF EXISTS _canon")
        con.execute(f"CREATE TEMP VIEW _canon AS SELECT * FROM _canon_src{unique}")
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
            self._identity(c, a)
        finally:
            for view in ("_chan", "_canon", "_canon_src"):
                con.execute(f"DROP VIEW IF EXISTS {view}")
            for temp in (
                "_dups",
                "_recent",
                "_factors",
                "_locmap",
                "_missing",
                "_prices",
                "_cand",
                "_canon_listed",
            ):
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

    def _canonical_prices(self, c: str) -> None:
        """``_canon_src``: canonical's records with the price (and sale price) of the price
        lists the channel takes them from (``expect.price.source``, ``sale_source``)."""
        con = self.con
        rules = self.config.expect.price
        regular, sale = rules.price_list, rules.sale_list
        con.execute("DROP VIEW IF EXISTS _canon_src")
        if regular is None and sale == "sale_price":
            con.execute(f"CREATE TEMP VIEW _canon_src AS SELECT * FROM {c}_items")
            return
        known = self.engine.price_lists(c)
        for key, name in (("source", regular), ("sale_source", sale)):
            if name is not None and name != "sale_price" and name not in known:
                holds = f"it holds: {', '.join(known)}" if known else "it holds none"
                raise ConfigError(
                    [
                        Problem(
                            f"channels.{self.name}.expect.price.{key}",
                            f"{name!r} is not a price list canonical holds ({holds})",
                        )
                    ],
                    hint="name a list canonical maps under mapping.price_lists "
                    "(`price_lists: {b2b: Price B2B}`), or leave the key out",
                )
        replaced, joins = [], []
        if regular is not None:
            replaced += ["l.price AS price", "coalesce(l.currency, i.currency) AS currency"]
            joins.append(
                f" LEFT JOIN {c}_lists l ON l.sku = i.sku AND l.list = {expect.sql_str(regular)}"
            )
        if sale is None:
            replaced += [
                "CAST(NULL AS DECIMAL(18,6)) AS sale_price",
                "CAST(NULL AS VARCHAR) AS sale_currency",
            ]
        elif sale != "sale_price":
            replaced += ["s.price AS sale_price", "s.currency AS sale_currency"]
            joins.append(
                f" LEFT JOIN {c}_lists s ON s.sku = i.sku AND s.list = {expect.sql_str(sale)}"
            )
        # Made once per channel: the diff reads canonical several times.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _canon_listed AS SELECT i.* REPLACE "
            f"({', '.join(replaced)}) FROM {c}_items i{''.join(joins)}"
        )
        con.execute("CREATE TEMP VIEW _canon_src AS SELECT * FROM _canon_listed")

    def _held_back(self, a: str) -> bool:
        """With ``expect.lag``: the SKUs the channel changed within it, in ``_recent``;
        whether there are any. Says what it held back (or why it could not) in the notes."""
        lag = self.config.expect.lag
        if not lag:
            return False
        reported = self.engine.modified_count(a)
        if not reported:
            self.notes.append(
                f"expect.lag {format_duration(lag)} not applied: the {self.config.connector} "
                "connector reports no modification times for this channel"
            )
            return False
        # In-flight edits are a matter of the wall clock, not of `--at` (a moment sale
        # windows are evaluated at, maybe a week ahead).
        since = datetime.now(UTC).replace(tzinfo=None) - lag
        self.con.execute("DROP TABLE IF EXISTS _recent")
        self.con.execute(
            f"CREATE TEMP TABLE _recent AS SELECT DISTINCT sku FROM {a}_modified "
            f"WHERE modified_at > {expect.sql_ts(since)}"
        )
        row = self.con.execute("SELECT count(*) FROM _recent").fetchall()[0]
        held = int(row[0]) if row else 0
        if held:
            first = self.con.execute("SELECT sku FROM _recent ORDER BY sku LIMIT 5").fetchall()
            skus = [r[0] for r in first]
            more = f" and {held - len(skus)} more" if held > len(skus) else ""
            self.notes.append(
                f"not compared: {held} SKU{'s' if held != 1 else ''} the channel changed in the "
                f"last {format_duration(lag)} (expect.lag): {', '.join(skus)}{more}"
            )
        return bool(held)


class DiffEngine(Engine):
    """The engine that also compares: a loaded channel against the loaded canonical side."""

    def diff(self, comparison: ChannelComparison) -> tuple[list[Finding], list[str]]:
        """Compare one loaded channel with the canonical side; return findings and compared
        fields."""
        return _ChannelDiff(self, comparison).run()
