"""Identity findings: which SKU is which product. A barcode (GTIN) names one product, so the
same GTIN on two canonical SKUs, or on one SKU in canonical and another in the channel, says
that the SKUs do not line up — before a push creates the product a second time."""

from __future__ import annotations

from omnisync.diff.base import _DiffBase
from omnisync.diff.sql import _norm_gtin
from omnisync.models import Field, Finding, Kind

#: SKUs named in one finding's detail before "and N more".
SHOWN = 10


def _listed(skus: list[str]) -> str:
    more = f" and {len(skus) - SHOWN} more" if len(skus) > SHOWN else ""
    return ", ".join(skus[:SHOWN]) + more


class _Identity(_DiffBase):
    """Identity findings from the GTINs and the parents both sides carry."""

    def _parents(self, c: str, a: str) -> None:
        """A SKU both sides list as a variant of different products: the variant was moved,
        or the SKU names another product in the channel (a size of the wrong shirt)."""
        if not (self.engine.parented(c) and self.engine.parented(a)):
            return
        rows = self.con.execute(
            f"SELECT k.sku, cp.parent, ap.parent FROM _canon k JOIN _chan x ON x.sku = k.sku "
            f"JOIN {c}_parents cp ON cp.sku = k.sku JOIN {a}_parents ap ON ap.sku = k.sku "
            "WHERE cp.parent IS DISTINCT FROM ap.parent ORDER BY k.ord"
        ).fetchall()
        for sku, expected, actual in rows:
            self.findings.append(
                Finding(
                    self.name,
                    Kind.IDENTITY,
                    sku,
                    field="parent",
                    expected=expected,
                    actual=actual,
                    detail=(
                        f"a variant of {expected} in canonical, of {actual} in the channel: the "
                        "SKU names another product there, or the variant was moved; fix the one "
                        "that is wrong"
                    ),
                )
            )

    def _identity(self, c: str, a: str) -> None:
        self._parents(c, a)
        if Field.GTIN not in self.canonical.fields:
            return
        known = "gtin IS NOT NULL AND ltrim(gtin, '0') <> ''"
        rows = self.con.execute(
            f"SELECT {_norm_gtin('gtin')} AS g, list(sku ORDER BY ord) FROM {c}_items "
            f"WHERE {known} GROUP BY g HAVING count(*) > 1 ORDER BY min(ord)"
        ).fetchall()
        for gtin, skus in rows:
            self.findings.append(
                Finding(
                    self.name,
                    Kind.IDENTITY,
                    skus[0],
                    field=Field.GTIN.value,
                    canonical=gtin.lstrip("0").rjust(13, "0"),
                    detail=(
                        f"the same GTIN is on {len(skus)} canonical SKUs: {_listed(skus)} — one "
                        "product under several SKUs, or a barcode copied by mistake; fix it in "
                        "canonical"
                    ),
                    source="canonical",
                )
            )
        if Field.GTIN not in self.channel.fields:
            return
        # A canonical SKU the channel lacks whose GTIN the channel lists under a SKU canonical
        # lacks: a missing and an extra finding that are one product (a SKU mistyped or
        # renamed on one side). Creating the one and deleting the other would relist it.
        pairs = self.con.execute(
            "WITH m AS (SELECT sku, gtin, " + _norm_gtin("gtin") + " AS g FROM _canon "
            f"WHERE {known} AND sku NOT IN (SELECT sku FROM _chan)), "
            "x AS (SELECT sku, gtin, ids, " + _norm_gtin("gtin") + " AS g FROM _chan "
            f"WHERE {known} AND sku NOT IN (SELECT sku FROM _canon)) "
            "SELECT m.sku, x.sku, m.gtin, x.ids FROM m JOIN x ON x.g = m.g ORDER BY m.sku, x.sku"
        ).fetchall()
        for canonical_sku, channel_sku, gtin, _ids in pairs:
            self.findings.append(
                Finding(
                    self.name,
                    Kind.IDENTITY,
                    canonical_sku,
                    field="sku",
                    canonical=gtin,
                    expected=canonical_sku,
                    actual=channel_sku,
                    detail=(
                        f"the channel lists this GTIN under SKU {channel_sku}: probably the same "
                        f"product under another SKU; {canonical_sku} is not created and "
                        f"{channel_sku} not deleted until the SKUs agree"
                    ),
                )
            )
