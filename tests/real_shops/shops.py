"""The tests' own view of each real server, independent of the connectors under test.

:class:`MedusaShop` and :class:`VendureShop` seed a catalogue through the servers' admin APIs
and read it back directly (``snapshot``), so every step of the loop is verified against what
the server itself says, not against what the connector reports.

The catalogue: ``n`` variants with SKUs ``MED-0001-S``/``MED-0001-M`` (Medusa: two sizes per
product) or ``VEN-0001`` (Vendure: one variant per product); a EUR and a USD price each; stock
at two locations, ``Berlin`` and ``Hamburg``. In Medusa every third variant has no stock level
at Hamburg at all (so a push must create the level).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from tests.real_shops.servers import MEDUSA_ADMIN, VENDURE_ADMIN

LOCATIONS = ("Berlin", "Hamburg")


@dataclass(frozen=True)
class Item:
    """One variant as the server shows it: what a snapshot compares."""

    sku: str
    title: str
    description: str | None
    gtin: str | None
    prices: tuple[tuple[str, Decimal], ...]  # (currency, amount) sorted
    stock: tuple[tuple[str, int], ...]  # (location name, quantity) sorted; no level = 0

    def price(self, currency: str = "EUR") -> Decimal | None:
        return dict(self.prices).get(currency)

    def qty(self, location: str) -> int:
        return dict(self.stock).get(location, 0)


def _price_of(i: int) -> Decimal:
    return (Decimal(10) + Decimal(i) * Decimal("0.37")).quantize(Decimal("0.01"))


def _ean(i: int, size: int) -> str:
    body = f"400{i:08d}{size}"
    total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


# ------------------------------------------------------------------ Medusa


class MedusaShop:
    """A seeded Medusa server, seen through its Admin API with a JWT."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=120)
        email, password = MEDUSA_ADMIN
        self.email, self.password = email, password
        token = self._json("POST", "/auth/user/emailpass", {"email": email, "password": password})
        self.client.headers["Authorization"] = f"Bearer {token['token']}"
        self.api_key = ""
        self.location_ids: dict[str, str] = {}

    def _json(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        response = self.client.request(method, path, json=body, params=params)
        if response.status_code >= 300:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return json.loads(response.content, parse_float=Decimal)

    def close(self) -> None:
        self.client.close()

    def seed(self, products: int) -> None:
        """``products`` products of two variants each, stocked at Berlin (and mostly Hamburg)."""
        store = self._json("GET", "/admin/stores", params={"fields": "id"})["stores"][0]["id"]
        self._json(
            "POST",
            f"/admin/stores/{store}",
            {
                "supported_currencies": [
                    {"currency_code": "eur", "is_default": True},
                    {"currency_code": "usd"},
                ]
            },
        )
        channel = self._json("GET", "/admin/sales-channels", params={"fields": "id"})
        sales_channel = channel["sales_channels"][0]["id"]
        for name in LOCATIONS:
            location = self._json("POST", "/admin/stock-locations", {"name": name})
            self.location_ids[name] = location["stock_location"]["id"]
            self._json(
                "POST",
                f"/admin/stock-locations/{self.location_ids[name]}/sales-channels",
                {"add": [sales_channel]},
            )
        for start in range(1, products + 1, 50):
            creates = [
                self._product(i, sales_channel) for i in range(start, min(start + 50, products + 1))
            ]
            self._json("POST", "/admin/products/batch", {"create": creates}, {"fields": "id"})
        items = self._json(
            "GET", "/admin/inventory-items", params={"limit": 5000, "fields": "id,sku"}
        )["inventory_items"]
        levels = []
        for n, item in enumerate(sorted(items, key=lambda it: it["sku"])):
            levels.append(
                {
                    "inventory_item_id": item["id"],
                    "location_id": self.location_ids["Berlin"],
                    "stocked_quantity": n % 17,
                }
            )
            if n % 3:
                levels.append(
                    {
                        "inventory_item_id": item["id"],
                        "location_id": self.location_ids["Hamburg"],
                        "stocked_quantity": n % 5,
                    }
                )
        for start in range(0, len(levels), 500):
            self._json(
                "POST",
                "/admin/inventory-items/location-levels/batch",
                {"create": levels[start : start + 500]},
            )
        key = self._json("POST", "/admin/api-keys", {"title": "omnisync-tests", "type": "secret"})
        self.api_key = key["api_key"]["token"]

    @staticmethod
    def _product(i: int, sales_channel: str) -> dict[str, Any]:
        return {
            "title": f"Product {i:04d}",
            "description": f"Description of product {i:04d}",
            "status": "published",
            "sales_channels": [{"id": sales_channel}],
            "options": [{"title": "Size", "values": ["S", "M"]}],
            "variants": [
                {
                    "title": f"Product {i:04d} {size}",
                    "sku": f"MED-{i:04d}-{size}",
                    "ean": _ean(i, n),
                    "manage_inventory": True,
                    "options": {"Size": size},
                    "prices": [
                        {"currency_code": "eur", "amount": float(_price_of(i) + n)},
                        {"currency_code": "usd", "amount": float(_price_of(i) + n + 2)},
                    ],
                }
                for n, size in enumerate("SM")
            ],
        }

    def add_product(self, title: str, sku: str, amount: str = "9.99") -> str:
        """One more product with one variant; returns its id (for :meth:`delete_product`)."""
        body = {
            "title": title,
            "status": "published",
            "options": [{"title": "Default", "values": ["Default"]}],
            "variants": [
                {
                    "title": title,
                    "sku": sku,
                    "options": {"Default": "Default"},
                    "prices": [{"currency_code": "eur", "amount": float(amount)}],
                }
            ],
        }
        product: str = self._json("POST", "/admin/products", body, {"fields": "id"})["product"][
            "id"
        ]
        return product

    def delete_product(self, product_id: str) -> None:
        self._json("DELETE", f"/admin/products/{product_id}")

    def basic_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()

    def snapshot(self) -> dict[str, Item]:
        """Every variant as the server shows it, by SKU (as stored, blanks included)."""
        locations = {
            loc["id"]: loc["name"]
            for loc in self._json(
                "GET", "/admin/stock-locations", params={"limit": 100, "fields": "id,name"}
            )["stock_locations"]
        }
        fields = (
            "sku,ean,product.title,product.description,prices.amount,prices.currency_code,"
            "prices.rules,inventory_items.inventory.location_levels.location_id,"
            "inventory_items.inventory.location_levels.stocked_quantity"
        )
        items: dict[str, Item] = {}
        offset = 0
        while True:
            page = self._json(
                "GET",
                "/admin/product-variants",
                params={"limit": 1000, "offset": offset, "order": "sku", "fields": fields},
            )
            for v in page["variants"]:
                stock = dict.fromkeys(locations.values(), 0)
                for inv in v.get("inventory_items") or []:
                    for lv in (inv.get("inventory") or {}).get("location_levels") or []:
                        stock[locations[lv["location_id"]]] += int(lv["stocked_quantity"])
                items[v["sku"]] = Item(
                    sku=v["sku"],
                    title=v["product"]["title"],
                    description=v["product"].get("description"),
                    gtin=v.get("ean"),
                    prices=tuple(
                        sorted(
                            (p["currency_code"].upper(), Decimal(str(p["amount"])))
                            for p in v.get("prices") or []
                        )
                    ),
                    stock=tuple(sorted(stock.items())),
                )
            offset += 1000
            if offset >= page["count"]:
                return items


# ------------------------------------------------------------------ Vendure

_SETUP = [
    'mutation{updateChannel(input:{id:"1",defaultCurrencyCode:EUR,availableCurrencyCodes:[EUR,USD]}){... on Channel{id}}}',
    'mutation{createCountry(input:{code:"DE",enabled:true,translations:[{languageCode:en,name:"Germany"}]}){id}}',
    'mutation{createZone(input:{name:"Europe",memberIds:["1"]}){id}}',
    'mutation{updateChannel(input:{id:"1",defaultTaxZoneId:"1",defaultShippingZoneId:"1"}){... on Channel{id}}}',
    'mutation{createTaxCategory(input:{name:"Standard",isDefault:true}){id}}',
    'mutation{createTaxRate(input:{name:"DE 19",enabled:true,value:19,categoryId:"1",zoneId:"1"}){id}}',
    'mutation{updateStockLocation(input:{id:"1",name:"Berlin"}){id}}',
    'mutation{createStockLocation(input:{name:"Hamburg"}){id}}',
]


class VendureShop:
    """A seeded Vendure server, seen through its Admin GraphQL API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.endpoint = url + "/admin-api"
        self.client = httpx.Client(timeout=120)
        self.username, self.password = VENDURE_ADMIN
        response = self.client.post(
            self.endpoint,
            json={
                "query": "mutation($u:String!,$p:String!){login(username:$u,password:$p)"
                "{... on CurrentUser{id}}}",
                "variables": {"u": self.username, "p": self.password},
            },
        )
        self.client.headers["Authorization"] = f"Bearer {response.headers['vendure-auth-token']}"

    def close(self) -> None:
        self.client.close()

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = self.client.post(
            self.endpoint, json={"query": query, "variables": variables or {}}
        )
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"{query[:80]}: {body['errors']}")
        return body["data"]

    def seed(self, products: int) -> None:
        for mutation in _SETUP:
            self.gql(mutation)
        for start in range(1, products + 1, 100):
            numbers = range(start, min(start + 100, products + 1))
            aliases = " ".join(
                f"p{i}: createProduct(input:{{enabled:true,translations:[{{languageCode:en,"
                f'name:"Product {i:04d}",slug:"product-{i:04d}",'
                f'description:"Description of product {i:04d}"}}]}}){{id}}'
                for i in numbers
            )
            made = self.gql(f"mutation{{{aliases}}}")
            variants = [
                {
                    "productId": made[f"p{i}"]["id"],
                    "sku": f"VEN-{i:04d}",
                    "price": int(_price_of(i) * 100),
                    "translations": [{"languageCode": "en", "name": f"Product {i:04d}"}],
                    "stockLevels": [
                        {"stockLocationId": "1", "stockOnHand": i % 17},
                        {"stockLocationId": "2", "stockOnHand": i % 5},
                    ],
                }
                for i in numbers
            ]
            created = self.gql(
                "mutation($i:[CreateProductVariantInput!]!){createProductVariants(input:$i){id}}",
                {"i": variants},
            )["createProductVariants"]
            usd = [
                {
                    "id": v["id"],
                    "prices": [{"currencyCode": "USD", "price": int(_price_of(i) * 100) + 200}],
                }
                for i, v in zip(numbers, created, strict=True)
            ]
            self.gql(
                "mutation($i:[UpdateProductVariantInput!]!){updateProductVariants(input:$i){id}}",
                {"i": usd},
            )

    def add_product(self, title: str, sku: str, cents: int = 999) -> str:
        slug = title.lower().replace(" ", "-")
        product = self.gql(
            "mutation($n:String!,$s:String!){createProduct(input:{enabled:true,"
            'translations:[{languageCode:en,name:$n,slug:$s,description:""}]}){id}}',
            {"n": title, "s": slug},
        )["createProduct"]["id"]
        self.gql(
            "mutation($i:[CreateProductVariantInput!]!){createProductVariants(input:$i){id}}",
            {
                "i": [
                    {
                        "productId": product,
                        "sku": sku,
                        "price": cents,
                        "translations": [{"languageCode": "en", "name": title}],
                    }
                ]
            },
        )
        return str(product)

    def delete_product(self, product_id: str) -> None:
        self.gql(f'mutation{{deleteProduct(id:"{product_id}"){{result}}}}')

    def snapshot(self) -> dict[str, Item]:
        locations = {
            loc["id"]: loc["name"]
            for loc in self.gql("{stockLocations{items{id name}}}")["stockLocations"]["items"]
        }
        items: dict[str, Item] = {}
        skip = 0
        while True:
            page = self.gql(
                "query($s:Int!){productVariants(options:{take:1000,skip:$s,sort:{sku:ASC}})"
                "{totalItems items{sku product{name description} prices{currencyCode price}"
                " stockLevels{stockLocationId stockOnHand}}}}",
                {"s": skip},
            )["productVariants"]
            for v in page["items"]:
                stock = dict.fromkeys(locations.values(), 0)
                for lv in v["stockLevels"]:
                    stock[locations[lv["stockLocationId"]]] += int(lv["stockOnHand"])
                items[v["sku"]] = Item(
                    sku=v["sku"],
                    title=v["product"]["name"],
                    description=v["product"]["description"] or None,
                    gtin=None,
                    prices=tuple(
                        sorted(
                            (p["currencyCode"], Decimal(p["price"]).scaleb(-2)) for p in v["prices"]
                        )
                    ),
                    stock=tuple(sorted(stock.items())),
                )
            skip += 1000
            if skip >= page["totalItems"]:
                return items
