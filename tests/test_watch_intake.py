"""The event intake: every sender's signature checked on the raw body before parsing, each
refusal with its status and nothing queued, replays counted once, payloads read into the
SKUs (or channel ids) they touch, and the queue committed before the 200."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from omnisync.errors import StateError
from omnisync.models import Event
from omnisync.store import Store
from omnisync.watch.intake import intake_app
from omnisync.watch.metrics import Metrics
from omnisync.watch.settings import WatchSettings
from omnisync.watch.sources import sign

SECRETS = {"shopify": "shpss_1", "woocommerce": "woo 2", "shopware6": "sw-3", "generic": "gen-4"}
SETTINGS = WatchSettings.model_validate(
    {
        "max_body": 4096,
        "webhooks": {
            "shopify": {"type": "shopify", "secret": SECRETS["shopify"]},
            "woo": {"type": "woocommerce", "secret": SECRETS["woocommerce"]},
            "sw": {"type": "shopware6", "secret": SECRETS["shopware6"]},
            "erp": {"type": "generic", "secret": SECRETS["generic"], "source": "canonical"},
        },
    }
)
NAMES = {"shopify": "shopify", "woocommerce": "woo", "shopware6": "sw", "generic": "erp"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(str(tmp_path / "state.db"), base_dir=tmp_path)


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(intake_app(SETTINGS, store, Metrics()))


def post(
    client: TestClient,
    kind: str,
    payload: Any,
    headers: dict[str, str] | None = None,
    *,
    signed: bool = True,
    body: bytes | None = None,
) -> Any:
    raw = body if body is not None else json.dumps(payload).encode()
    sent = {**(sign(kind, SECRETS[kind], raw) if signed else {}), **(headers or {})}
    return client.post(f"/webhooks/{NAMES[kind]}", content=raw, headers=sent)


def queued(store: Store) -> list[Event]:
    return [event for event, _ in reversed(store.events())]


SAMPLES: dict[str, tuple[Any, dict[str, str]]] = {
    "shopify": (
        {"id": 1, "variants": [{"sku": "A-1"}]},
        {"X-Shopify-Topic": "products/update", "X-Shopify-Event-Id": "e1"},
    ),
    "woocommerce": (
        {"id": 5, "sku": "A-1"},
        {"X-WC-Webhook-Topic": "product.updated", "X-WC-Webhook-Delivery-ID": "9"},
    ),
    "shopware6": (
        {
            "data": {
                "event": "product.written",
                "payload": [
                    {
                        "entity": "product",
                        "operation": "update",
                        "primaryKey": "0190ab",
                        "updatedFields": ["stock"],
                    }
                ],
            },
            "source": {"url": "http://sw", "shopId": "s", "eventId": "ev-1"},
            "timestamp": 1,
        },
        {},
    ),
    "generic": ({"id": "g-1", "kind": "stock", "skus": ["A-1"]}, {}),
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_a_signed_delivery_is_queued_and_its_replay_is_not(
    kind: str, client: TestClient, store: Store
) -> None:
    payload, headers = SAMPLES[kind]
    answer = post(client, kind, payload, headers)
    assert answer.status_code == 200
    assert answer.json() == {"queued": 1, "replays": 0}
    again = post(client, kind, payload, headers)
    assert again.status_code == 200
    assert again.json() == {"queued": 0, "replays": 1}
    assert len(queued(store)) == 1


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_queued(
    kind: str, client: TestClient, store: Store
) -> None:
    payload, headers = SAMPLES[kind]
    raw = json.dumps(payload).encode()
    good = sign(kind, SECRETS[kind], raw)
    wrong = {name: value[:-4] + "AAAA" for name, value in good.items()}
    other_secret = sign(kind, SECRETS[kind] + "x", raw)
    tampered = raw.replace(b"A-1", b"A-2").replace(b"0190ab", b"0190ac")
    for sent, body in (
        (headers, raw),
        ({**headers, **wrong}, raw),
        ({**headers, **other_secret}, raw),
        ({**headers, **good}, tampered),
        ({**headers, **dict.fromkeys(good, "")}, raw),
    ):
        answer = client.post(f"/webhooks/{NAMES[kind]}", content=body, headers=sent)
        assert answer.status_code == 401, (sent, answer.text)
        assert "signature" in answer.json()["error"].lower()
    assert queued(store) == []


def test_a_body_over_the_limit_is_413_by_its_length_and_while_streamed(
    client: TestClient, store: Store
) -> None:
    big = b"[" + b"1," * 3000 + b"1]"
    assert post(client, "generic", None, body=big).status_code == 413

    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    answer = client.post(
        "/webhooks/erp", content=chunks(), headers=sign("generic", SECRETS["generic"], b"")
    )
    assert answer.status_code == 413
    assert queued(store) == []


def test_signed_but_malformed_bodies_are_400_and_nothing_is_queued(
    client: TestClient, store: Store
) -> None:
    for kind, body, headers in (
        ("generic", b"{not json", {}),
        ("generic", b"\xff\xfe", {}),
        ("generic", b"[1, 2]", {}),
        ("generic", json.dumps({"skus": "A-1"}).encode(), {}),
        ("generic", json.dumps({"events": [{"refs": {"product_id": "7"}}]}).encode(), {}),
        ("shopify", b"[]", {"X-Shopify-Topic": "orders/create"}),
        ("woocommerce", b"nope", {"X-WC-Webhook-Topic": "order.created"}),
        ("shopware6", json.dumps({"data": {"event": "x"}}).encode(), {}),
    ):
        answer = post(client, kind, None, headers, body=body)
        assert answer.status_code == 400, (kind, body, answer.text)
    assert queued(store) == []


def test_an_unknown_webhook_is_404(client: TestClient) -> None:
    assert client.post("/webhooks/nope", content=b"{}").status_code == 404
    assert client.get("/webhooks/erp").status_code == 405


def test_a_generic_event_signed_long_ago_is_a_replay_and_refused(
    client: TestClient, store: Store
) -> None:
    import time

    raw = json.dumps({"id": "old", "skus": ["A"]}).encode()
    stale = sign("generic", SECRETS["generic"], raw, at=time.time() - 3600)
    answer = client.post("/webhooks/erp", content=raw, headers=stale)
    assert answer.status_code == 401
    assert "5 minutes" in answer.json()["error"]
    assert queued(store) == []


def test_woocommerces_unsigned_ping_is_answered_and_queues_nothing(
    client: TestClient, store: Store
) -> None:
    answer = client.post(
        "/webhooks/woo",
        content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"ping": True}
    # Anything else without a signature is refused.
    assert client.post("/webhooks/woo", content=b"webhook_id=12&sku=A").status_code == 401
    assert queued(store) == []


def test_payloads_become_the_skus_and_ids_they_touch(client: TestClient, store: Store) -> None:
    post(
        client,
        "shopify",
        {"inventory_item_id": 271878346596884015, "location_id": 5, "available": 3},
        {"X-Shopify-Topic": "inventory_levels/update", "X-Shopify-Event-Id": "1"},
    )
    post(
        client,
        "shopify",
        {
            "id": 9,
            "line_items": [{"sku": "A-1", "variant_id": 44}, {"sku": None, "variant_id": 45}],
        },
        {"X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": "2"},
    )
    post(
        client,
        "shopify",
        {"id": 1},
        {"X-Shopify-Topic": "customers/create", "X-Shopify-Event-Id": "3"},
    )
    post(
        client,
        "woocommerce",
        {
            "id": 77,
            "line_items": [
                {"sku": "B-1", "product_id": 10, "variation_id": 0},
                {"sku": "", "product_id": 11, "variation_id": 12},
            ],
        },
        {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "4"},
    )
    post(
        client,
        "woocommerce",
        {"id": 13, "parent_id": 11, "sku": "C-2"},
        {"X-WC-Webhook-Topic": "product.updated", "X-WC-Webhook-Delivery-ID": "5"},
    )
    post(
        client,
        "shopware6",
        {
            "data": {
                "event": "checkout.order.placed",
                "payload": {
                    "order": {
                        "lineItems": [{"productId": "p1", "payload": {"productNumber": "SW-1"}}]
                    }
                },
            },
            "source": {"eventId": "6"},
        },
    )
    post(
        client,
        "generic",
        {
            "events": [
                {
                    "id": "7",
                    "kind": "price",
                    "skus": ["D-1", "D-1", " "],
                    "refs": {"product_id": [3]},
                }
            ]
        },
    )
    got = [(e.source, e.kind, e.skus, e.refs, e.key) for e in queued(store)]
    assert got == [
        (
            "shopify",
            "stock",
            (),
            {"inventory_item_id": ("gid://shopify/InventoryItem/271878346596884015",)},
            "1",
        ),
        (
            "shopify",
            "order",
            ("A-1",),
            {"variant_id": ("gid://shopify/ProductVariant/44", "gid://shopify/ProductVariant/45")},
            "2",
        ),
        ("woo", "order", ("B-1",), {"product_id": ("10",), "variation_id": ("12",)}, "4"),
        ("woo", "product", ("C-2",), {"variation_id": ("13",)}, "5"),
        ("sw", "order", ("SW-1",), {"product_id": ("p1",)}, "6"),
        ("canonical", "price", ("D-1",), {"product_id": ("3",)}, "7"),
    ]


def test_shopware_without_an_event_id_dedupes_on_the_body(client: TestClient, store: Store) -> None:
    payload = {
        "data": {
            "event": "product.written",
            "payload": [{"entity": "product", "primaryKey": "x1"}],
        },
        "source": {},
    }
    assert post(client, "shopware6", payload).json() == {"queued": 1, "replays": 0}
    assert post(client, "shopware6", payload).json() == {"queued": 0, "replays": 1}


def test_signatures_are_what_the_senders_document(client: TestClient, store: Store) -> None:
    """Computed here by hand, as each platform's documentation describes it."""
    raw = json.dumps({"id": 5, "sku": "A-1"}).encode()
    woo = base64.b64encode(hmac.new(b"woo 2", raw, hashlib.sha256).digest()).decode()
    answer = client.post(
        "/webhooks/woo",
        content=raw,
        headers={"X-WC-Webhook-Signature": woo, "X-WC-Webhook-Topic": "product.updated"},
    )
    assert answer.status_code == 200
    shopware = hmac.new(b"sw-3", raw, hashlib.sha256).hexdigest()
    body = json.dumps(
        {"data": {"event": "product.written", "payload": []}, "source": {"eventId": "z"}}
    ).encode()
    shopware = hmac.new(b"sw-3", body, hashlib.sha256).hexdigest()
    assert (
        client.post(
            "/webhooks/sw", content=body, headers={"shopware-shop-signature": shopware}
        ).status_code
        == 200
    )


class _Broken:
    def put_event(self, event: Event) -> int | None:
        raise StateError("could not write the state store: disk I/O error", where="state.db")

    def event_counts(self) -> dict[str, int]:
        return {}


def test_when_the_queue_cannot_be_written_the_answer_is_503_so_the_sender_retries() -> None:
    client = TestClient(intake_app(SETTINGS, _Broken(), Metrics()))  # type: ignore[arg-type]
    answer = post(client, "generic", {"id": "1", "skus": ["A"]})
    assert answer.status_code == 503
    assert "disk I/O" in answer.json()["error"]


def test_metrics_and_health(client: TestClient, store: Store) -> None:
    post(client, "generic", {"id": "m1", "skus": ["A"]})
    post(client, "generic", {"id": "m1", "skus": ["A"]})
    post(client, "generic", {"id": "m2", "skus": ["A"]}, signed=False)
    text = client.get("/metrics").text
    assert 'omnisync_events_received_total{source="canonical"} 1.0' in text
    assert 'omnisync_events_deduped_total{source="canonical"} 1.0' in text
    assert 'omnisync_requests_rejected_total{status="401"} 1.0' in text
    assert "omnisync_queue_depth 1.0" in text
    assert SECRETS["generic"] not in text
    assert client.get("/healthz").json()["status"] == "ok"


def test_a_webhook_secret_is_masked_however_it_was_written(tmp_path: Path) -> None:
    from omnisync import secrets
    from omnisync.config import load_config

    (tmp_path / "a.csv").write_text("sku\nA\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        "canonical: {connector: csv, options: {path: a.csv, mapping: {sku: sku}}}\n"
        "channels: {shop: {connector: csv, options: {path: a.csv, mapping: {sku: sku}}}}\n"
        "watch: {webhooks: {shop: {type: woocommerce, secret: typed-in-hook-secret-42}}}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "c.yaml")
    assert "typed-in-hook-secret-42" not in secrets.mask("signed with typed-in-hook-secret-42")
    assert "typed-in-hook-secret-42" not in repr(config.model.watch)
    # Masking is for what people read: the value verified against is the real one.
    hook = config.model.watch.webhooks["shop"]
    assert hook.secret.get_secret_value() == "typed-in-hook-secret-42"
