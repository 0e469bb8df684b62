"""Medusa's API objects and records: variants to records, changes to request bodies (the outbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from omnisync.errors import ChangeRejected
from omnisync.models import Money
from omnisync.normalize import clean_text, normalize_gtin
from omnisync.sdk.values import json_money


@dataclass
class _Outbox:
    """The requests one batch of changes turns into, and which changes ride on each item."""

    #: product id → variant id → update payload.
    variants: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: product id → update payload.
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (inventory item id, location id) → [quantity, level exists].
    levels: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    #: item key → indexes of the changes it carries.
    owners: dict[tuple[str, ...], list[int]] = field(default_factory=dict)

    def own(self, key: tuple[str, ...], index: int) -> None:
        self.owners.setdefault(key, []).append(index)

    def requests(self) -> list[dict[str, Any]]:
        """The batch requests, as ``--dry-run`` shows them."""
        shown: list[dict[str, Any]] = []
        for product, updates in self.variants.items():
            shown.append(
                {
                    "method": "POST",
                    "path": f"/admin/products/{product}/variants/batch",
                    "body": {"update": [{"id": vid, **body} for vid, body in updates.items()]},
                }
            )
        if self.products:
            shown.append(
                {
                    "method": "POST",
                    "path": "/admin/products/batch",
                    "body": {"update": [{"id": p, **b} for p, b in self.products.items()]},
                }
            )
        if self.levels:
            shown.append(
                {
                    "method": "POST",
                    "path": "/admin/inventory-items/location-levels/batch",
                    "body": _levels_body(self.levels),
                }
            )
        return shown


def _levels_body(levels: dict[tuple[str, str], list[Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"create": [], "update": []}
    for (item, location), (quantity, exists) in levels.items():
        entry = {"inventory_item_id": item, "location_id": location, "stocked_quantity": quantity}
        body["update" if exists else "create"].append(entry)
    return {k: v for k, v in body.items() if v}


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _gtin(value: Any) -> str | None:
    text = clean_text(value) if isinstance(value, str | int) else None
    if text is None:
        return None
    try:
        return normalize_gtin(text)
    except ValueError:
        return text  # shown as it is; the check reports it as differing


def _gtin_out(value: Any) -> Any:
    """A GTIN as shops write it: EAN-13 without the GS1 padding to 14 digits."""
    text = str(value) if value is not None else None
    if text and len(text) == 14 and text.isdigit() and text.startswith("0"):
        return text[1:]
    return text


def _plain(price: dict[str, Any]) -> bool:
    """A price without rules (region, customer group) or quantity tiers: the list price."""
    return not price.get("rules") and price.get("min_quantity") in (None, 0, 1)


def _price(variant: dict[str, Any], currency: str) -> Money | None:
    for price in variant.get("prices") or []:
        if str(price.get("currency_code", "")).upper() == currency and _plain(price):
            amount = _number(price.get("amount"))
            if amount is not None:
                return Money(amount, currency)
    return None


def _price_set(variant: dict[str, Any]) -> list[dict[str, Any]]:
    """The variant's whole price set as an update sends it back (ids keep rows in place)."""
    prices = []
    for price in variant.get("prices") or []:
        entry: dict[str, Any] = {
            "id": price["id"],
            "currency_code": price["currency_code"],
            "amount": _amount_out(_number(price.get("amount")) or Decimal(0)),
        }
        for key in ("min_quantity", "max_quantity"):
            if price.get(key) is not None:
                entry[key] = price[key]
        if price.get("rules"):
            entry["rules"] = price["rules"]
        prices.append(entry)
    return prices


def _with_price(prices: list[dict[str, Any]], money: Money) -> list[dict[str, Any]]:
    updated = [dict(p) for p in prices]
    for entry in updated:
        if str(entry["currency_code"]).upper() == money.currency and _plain(entry):
            entry["amount"] = _amount_out(money.amount)
            return updated
    updated.append({"currency_code": money.currency.lower(), "amount": _amount_out(money.amount)})
    return updated


def _amount_out(amount: Decimal) -> int | float:
    """A JSON number for Medusa (it refuses strings); exact for any price with <= 15 digits."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _money(value: Any) -> Money:
    money = json_money(value)
    if money is None:
        raise ChangeRejected("no price to set")
    return Money(money.amount, money.currency.upper())


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency', '')}".strip()
    return repr(value)
