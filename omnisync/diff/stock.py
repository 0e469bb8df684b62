"""Stock per location: expected quantities against the channel's, with buffers and allocation."""

from __future__ import annotations

import json

from omnisync import expect
from omnisync.diff.items import (
    _Items,
)


class _Stock(_Items):
    """Stock per location: expected quantities against the channel's, with buffers and allocation."""

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
