"""Secrets: only what is secret is registered, and masking never touches data.

Masking is for text people read (terminal, logs, reports). A value that is compared, planned,
journalled or written to a channel is the true value, always: ``auth: basic`` once made the
word "basic" a secret and wrote "Basic *** tee" to a shop. These tests run the CLI against the
WooCommerce emulator with a secret planted in the environment, in every command and format,
and count both leaks and payload values altered by masking: both must be 0.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from omnisync import secrets
from omnisync.cli import app
from omnisync.config import load_config
from omnisync.report import FORMATS, render
from tests.emulators.server import Server, serve
from tests.emulators.woocommerce import Key, WooShop, seed

AT = "2026-11-23T12:00:00+00:00"
#: Planted in the environment and used only by the channel's secret fields.
KEY, TOKEN = "ck_planted_4f1e2d3c", "cs_planted_9a8b7c6d5e4f"
#: The canonical title whose words were taken for secrets (``auth: basic``).
TITLE = "Basic basic tee"

CONFIG = """\
settings: {{state: "{state}", timezone: UTC}}
canonical:
  connector: csv
  options:
    path: ${{DATA_DIR}}/erp.csv
    currency: ${{CURRENCY}}
    mapping: {{sku: sku, title: title, price: price, stock: stock}}
channels:
  woo-basic:
    connector: woocommerce
    options:
      url: ${{WOO_URL}}
      auth: ${{WOO_AUTH}}
      consumer_key: ${{WOO_KEY}}
      consumer_secret: ${{WOO_SECRET}}
      max_wait: 0
    expect:
      check: [title, price, stock]
    push:
      fields: [title, price, stock]
      guard: {{max_records: 100000, max_records_pct: 100, max_price_change_pct: 1000, max_zero_stock_pct: 100}}
"""


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    secrets.forget_all()
    yield
    secrets.forget_all()


@pytest.fixture
def shop() -> WooShop:
    shop = WooShop(keys={KEY: Key(TOKEN)})
    seed(shop, simple=12, variable=0, variations=0)
    return shop


@pytest.fixture
def server(shop: WooShop) -> Iterator[Server]:
    with serve(shop.app) as running:
        yield running


def rows_of(shop: WooShop) -> dict[str, dict[str, str]]:
    """The shop's products as canonical rows: a catalogue with nothing to report."""
    return {
        p["sku"]: {
            "sku": p["sku"],
            "title": p["name"],
            "price": p["regular_price"],
            "stock": str(p["stock_quantity"]),
        }
        for p in shop.sellable()
    }


def project(
    tmp_path: Path,
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    rows: dict[str, dict[str, str]],
    *,
    state: str = "state.db",
) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    with (data / "erp.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ("sku", "title", "price", "stock"))
        writer.writeheader()
        writer.writerows(rows.values())
    for name, value in {
        "DATA_DIR": str(data),
        "CURRENCY": "EUR",
        "WOO_URL": server.url,
        "WOO_AUTH": "basic",
        "WOO_KEY": KEY,
        "WOO_SECRET": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "omnisync.yaml"
    config.write_text(CONFIG.format(state=state), encoding="utf-8")
    return config


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout + result.stderr


def record_batches(shop: WooShop) -> list[dict[str, Any]]:
    """Every batch body the shop receives, as sent."""
    bodies: list[dict[str, Any]] = []
    batch = shop._batch

    def recording(body: Any, path: str, parent_id: int = 0) -> Any:
        bodies.append(json.loads(json.dumps(body)))
        return batch(body, path, parent_id)

    shop._batch = recording  # type: ignore[method-assign]
    return bodies


def altered(bodies: list[dict[str, Any]], rows: dict[str, dict[str, str]], shop: WooShop) -> int:
    """Payload values that differ from what canonical says (masking damage counts here)."""
    by_id = {p["id"]: p["sku"] for p in shop.sellable()}
    count = 0
    for body in bodies:
        for item in body.get("update", []) + body.get("create", []):
            row = rows[item.get("sku") or by_id[item["id"]]]
            wanted = {"name": row["title"], "regular_price": row["price"]}
            wanted["stock_quantity"] = int(row["stock"])  # type: ignore[assignment]
            count += sum(1 for k, v in item.items() if k in wanted and v != wanted[k])
            count += sum(1 for v in item.values() if isinstance(v, str) and secrets.MASK in v)
    return count


# ------------------------------------------------------------------ (a) mode words are data


def test_a_mode_word_is_no_secret_and_the_title_is_pushed_as_written(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(shop)
    rows["S00003"]["title"] = TITLE
    config = project(tmp_path, server, monkeypatch, rows)
    bodies = record_batches(shop)

    code, out = cli("check", "-c", str(config), "--at", AT)
    assert code == 1, out
    assert "woo-basic" in out
    assert "woo-***" not in out
    assert TITLE in out

    plan = tmp_path / "plan.json"
    code, out = cli("plan", "-c", str(config), "--at", AT, "--out", str(plan))
    assert code == 0, out
    assert TITLE in plan.read_text(encoding="utf-8")
    code, out = cli("apply", str(plan), "-c", str(config), "--yes")
    assert code == 0, out
    assert [item["name"] for body in bodies for item in body["update"]] == [TITLE]
    assert shop.product("S00003")["name"] == TITLE
    assert altered(bodies, rows, shop) == 0

    code, out = cli("check", "-c", str(config), "--at", AT, "-f", "json")
    assert code == 0, out
    assert [c["name"] for c in json.loads(out)["channels"]] == ["woo-basic"]
    assert sum(len(c["findings"]) for c in json.loads(out)["channels"]) == 0

    # Undo writes the journal's before-value back, unmasked too.
    before = shop.product("S00002")["name"]
    code, out = cli("undo", "last", "-c", str(config), "--yes")
    assert code == 0, out
    assert shop.product("S00003")["name"] == "Product 3"
    assert shop.product("S00002")["name"] == before


def test_sync_pushes_the_title_as_written_and_converges(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(shop)
    rows["S00004"]["title"] = f"{TITLE} in EUR"
    rows["S00005"]["price"] = "99.50"
    config = project(tmp_path, server, monkeypatch, rows)
    bodies = record_batches(shop)
    code, out = cli("sync", "-c", str(config), "--at", AT)
    assert code == 0, out
    assert shop.product("S00004")["name"] == f"{TITLE} in EUR"
    assert altered(bodies, rows, shop) == 0
    code, out = cli("sync", "-c", str(config), "--at", AT)
    assert code == 0, out
    assert "nothing to push" in out


# ------------------------------------------------------------------ (b) paths are shown


def test_a_path_from_the_environment_is_shown_in_clear(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project(tmp_path, server, monkeypatch, rows_of(shop))
    (tmp_path / "data" / "erp.csv").unlink()
    code, out = cli("check", "-c", str(config), "--no-history")
    assert code in (2, 3), out
    assert f"{tmp_path / 'data' / 'erp.csv'}" in out.replace("\n", "")
    assert "***" not in out


# ------------------------------------------------------------------ (c) planted secret


def test_a_planted_secret_leaks_nowhere_and_alters_no_payload(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(shop)
    rows["S00003"]["title"] = TITLE
    rows["S00006"]["price"] = "12.34"
    rows["S00007"]["stock"] = "77"
    config = project(tmp_path, server, monkeypatch, rows)
    bodies = record_batches(shop)
    c = ("-c", str(config))
    plan = str(tmp_path / "plan.json")
    runs: list[tuple[str, ...]] = [
        ("validate", *c),
        *(("check", *c, "--at", AT, "-f", fmt) for fmt in FORMATS),
        *(
            ("check", *c, "--at", AT, "-f", fmt, "-o", str(tmp_path / f"r.{fmt}"))
            for fmt in FORMATS
        ),
        ("--log-json", "check", *c, "--at", AT),
        ("--debug", "check", *c, "--at", AT, "-f", "json"),
        ("plan", *c, "--at", AT),
        ("plan", *c, "--at", AT, "-f", "json"),
        ("plan", *c, "--at", AT, "--out", plan),
        ("apply", plan, *c, "--dry-run"),
        ("--debug", "apply", plan, *c, "--yes"),
        ("runs", *c),
        *(("show", "last", *c, "-f", fmt) for fmt in ("table", "json", "csv")),
        ("undo", "last", *c, "--dry-run"),
        ("--log-json", "undo", "last", *c, "--yes"),
        ("sync", *c, "--at", AT, "--dry-run"),
        ("--log-json", "--debug", "sync", *c, "--at", AT),
        *(("show", "last", *c, "-f", fmt) for fmt in FORMATS),
        ("check", *c, "--at", AT, "--channel", "nosuch"),
    ]
    leaks = []
    for args in runs:
        code, out = cli(*args)
        assert code in (0, 1, 2), (args, out)
        if KEY in out or TOKEN in out:
            leaks.append(args)
    for report in tmp_path.glob("r.*"):
        if TOKEN in report.read_text(encoding="utf-8"):
            leaks.append((str(report),))
    # A rejected secret: the error names what to check, never the secret.
    shop.keys = {KEY: Key("cs_another_one_entirely")}
    code, out = cli("--debug", "check", *c, "--at", AT, "--no-history")
    assert code == 3, out
    assert "Consumer secret is invalid" in out
    if TOKEN in out:
        leaks.append(("rejected",))
    assert TOKEN.encode() not in (tmp_path / "state.db").read_bytes()
    assert leaks == []
    assert len(bodies) >= 3  # apply, undo, sync each sent a batch
    assert altered(bodies[:1] + bodies[2:], rows, shop) == 0  # the undo restores the old values


# ------------------------------------------------------------------ (d) URL credentials


def test_a_url_password_is_masked_and_the_rest_of_the_url_shown(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_URL", "postgresql+psycopg://user:s3cretpw@127.0.0.1:1/db")
    config = project(tmp_path, server, monkeypatch, rows_of(shop), state="${STATE_URL}")
    code, out = cli("check", "-c", str(config), "--at", AT)
    assert code == 2, out
    assert "s3cretpw" not in out
    assert "postgresql+psycopg://user:***@127.0.0.1:1/db" in out
    assert secrets.mask("password s3cretpw rejected") == "password *** rejected"
    assert secrets.mask("user at 127.0.0.1 db") == "user at 127.0.0.1 db"


# ------------------------------------------------------------------ registration


def test_only_secret_fields_and_url_passwords_are_registered(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project(tmp_path, server, monkeypatch, rows_of(shop))
    load_config(config)
    data = str(tmp_path / "data")
    for clear in ("basic", "EUR", data, f"{data}/erp.csv", server.url, "woo-basic"):
        assert secrets.mask(clear) == clear
        assert secrets.mask(f"{TITLE}: {clear} ok") == f"{TITLE}: {clear} ok"
    assert secrets.mask(f"key {KEY}, secret {TOKEN}.") == "key ***, secret ***."
    assert secrets.mask(f"{server.url}/?consumer_secret={TOKEN}") == (
        f"{server.url}/?consumer_secret=***"
    )


def test_a_literal_secret_field_is_registered_even_when_the_options_are_invalid(
    tmp_path: Path, shop: WooShop, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project(tmp_path, server, monkeypatch, rows_of(shop))
    text = config.read_text(encoding="utf-8")
    text = text.replace("${WOO_SECRET}", "cs_literal_0a1b2c3d").replace(
        "max_wait: 0", "max_wait: -1"
    )
    config.write_text(text, encoding="utf-8")
    code, out = cli("validate", "-c", str(config))
    assert code == 2, out
    assert "max_wait" in out
    assert secrets.mask("cs_literal_0a1b2c3d") == secrets.MASK


def test_free_text_keeps_ordinary_words_and_exact_values_are_always_masked() -> None:
    secrets.register("hunter")  # a word-like secret: masked only as a whole word
    secrets.register("s3cr3t-token-value")  # a long, token-like one: masked wherever it occurs
    secrets.register("ab12")  # too short for free text: masked only as a whole value
    assert secrets.mask("hunter") == secrets.MASK
    assert secrets.mask("the hunter's shop") == "the ***'s shop"
    assert secrets.mask("Headhunters Ltd") == "Headhunters Ltd"
    assert secrets.mask("Bearer s3cr3t-token-value") == "Bearer ***"
    assert secrets.mask("x=s3cr3t-token-valueZ") == "x=***Z"
    assert secrets.mask("ab12") == secrets.MASK
    assert secrets.mask(" ab12\n") == secrets.MASK
    assert secrets.mask("SKU-ab12 and ab12") == "SKU-ab12 and ab12"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_report_masks_a_short_secret_value_and_keeps_every_other_value(fmt: str) -> None:
    from tests.test_reports import changed, make_result, rich_text

    secrets.register("ab12")
    secrets.register("hunter")
    findings = [
        changed("pos", "SKU-1", "title", "Basic basic tee", "ab12"),
        changed("pos", "SKU-2", "title", "Headhunters tee", "Headhunters"),
    ]
    text = render(make_result(pos_findings=findings), fmt)
    if fmt == "table":
        text += rich_text(make_result(pos_findings=findings))
    assert "ab12" not in text
    assert "Basic basic tee" in text
    assert "Headhunters" in text
    assert "***" in text.replace("\\*", "*")  # Markdown escapes the stars


def test_url_credentials_are_registered_from_the_password_part_only() -> None:
    secrets.register_url_passwords(
        "postgresql://user:s3cretpw@host/db and mysql://u@h/d?password=qu3ry-pw"
    )
    assert secrets.mask("postgresql://user:s3cretpw@host/db") == "postgresql://user:***@host/db"
    assert secrets.mask("driver said: s3cretpw, qu3ry-pw") == "driver said: ***, ***"
    assert secrets.mask("user host db u h d") == "user host db u h d"


def test_a_word_like_secret_spares_identifiers_that_contain_it() -> None:
    secrets.register("secret")
    assert secrets.mask("check options.consumer_secret") == "check options.consumer_secret"
    assert secrets.mask("the secret was wrong") == "the *** was wrong"


@pytest.mark.parametrize(
    ("connector", "field"),
    [
        ("woocommerce", "consumer_key"),
        ("woocommerce", "consumer_secret"),
        ("shopify", "token"),
        ("shopware6", "client_secret"),
        ("medusa", "api_key"),
        ("medusa", "password"),
        ("vendure", "password"),
        ("magento2", "token"),
        ("magento2", "password"),
    ],
)
def test_every_built_in_credential_is_declared_secret(connector: str, field: str) -> None:
    from omnisync.sdk.connector import load_connector

    options = load_connector(connector).Options
    assert list(secrets.secret_paths(options, {field: "x", "url": "https://h"})) == [(field,)]
    assert list(secrets.secret_paths(options, {"url": "https://h", "currency": "EUR"})) == []
