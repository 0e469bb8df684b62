"""Vendure's API objects and records: variant prices, changes to mutation inputs (the outbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnisync.models import Money
from omnisync.normalize import minor_units


@dataclass
class _Outbox:
    """The inputs of one batch's two mutations and which changes ride on each input."""

    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[tuple[str, ...], list[int]] = field(default_factory=dict)

    def variant(self, variant_id: str, index: int) -> dict[str, Any]:
        self.owners.setdefault(("variant", variant_id), []).append(index)
        return self.variants.setdefault(variant_id, {"id": variant_id})

    def product(self, product_id: str, index: int) -> dict[str, Any]:
        self.owners.setdefault(("product", product_id), []).append(index)
        return self.products.setdefault(product_id, {"id": product_id})

    def requests(self) -> list[Any]:
        """The mutations, as ``--dry-run`` shows them."""
        shown: list[Any] = []
        if self.variants:
            shown.append({"updateProductVariants": list(self.variants.values())})
        if self.products:
            shown.append({"updateProducts": list(self.products.values())})
        return shown


def _price(variant: dict[str, Any], currency: str) -> Money | None:
    for price in variant.get("prices") or []:
        if str(price.get("currencyCode")) == currency and price.get("price") is not None:
            minor = Decimal(int(price["price"]))
            return Money(minor.scaleb(-minor_units(currency)), currency)
    return None
