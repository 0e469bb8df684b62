"""Canonical change feeds for `omnisync watch`: a file followed by its snapshot, a SQL
database by the outbox its triggers fill (SQLite, PostgreSQL with NOTIFY, MariaDB), and the
oversell race end to end with the POS database's outbox and the shop's webhook."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.config import load_config
from omnisync.sdk.connector import ConnectorContext
from omnisync.sdk.feed import FeedBatch, SnapshotFeed
from omnisync.store import EVENT_DONE, Store
from omnisync.watch.intake import intake_app
from omnisync.watch.watcher import Watcher
from omnisync_connectors.sql.connector import SqlConnector
from omnisync_connectors.sql.outbox import outbox_ddl
from tests.databases import TestDatabase
from tests.emulators.server import serve
from tests.emulators.woocommerce import Webhook, WooShop
from tests.test_watch import SHOP_SECRET, eventually, stock_of

# ------------------------------------------------------------------ the snapshot feed


def write(path: Path, rows: list[str]) -> None:
    path.write_text("sku,title,price,stock\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")


def csv_feed(tmp_path: Path) -> tuple[SnapshotFeed, Path]:
    path = tmp_path / "erp.csv"
    write(path, ["A,Apple,1.00,5", "B,Bean,2.00,6", "C,Corn,3.00,7"])
    (tmp_path / "c.yaml").write_text(
        "canonical: {connector: csv, options: {path: erp.csv, currency: EUR, mapping: "
        "{sku: sku, title: title, price: price, stock: stock}}}\n"
        "channels: {shop: {connector: csv, options: {path: erp.csv, currency: EUR, mapping: "
        "{sku: sku, title: title, price: price, stock: stock}}}}\n",
        encoding="utf-8",
    )
    connector = load_config(tmp_path / "c.yaml").connector("canonical")
    feed = connector.change_feed()
    assert isinstance(feed, SnapshotFeed)
    return feed, path


def settle(feed: SnapshotFeed) -> FeedBatch | None:
    """Two polls: a version is trusted once it is seen twice."""
    first = feed.poll()
    return first if first is not None else feed.poll()


def test_a_file_feed_reports_exactly_the_changed_added_and_removed_skus(tmp_path: Path) -> None:
    feed, path = csv_feed(tmp_path)
    assert feed.poll() is None  # the first look takes the snapshot
    assert feed.poll() is None
    # A row inserted on top moves every line number: that alone is no change.
    write(path, ["Z,Zucchini,9.00,1", "A,Apple,1.00,5", "B,Bean,2.50,6"])
    batch = settle(feed)
    assert batch is not None
    assert batch.skus == ("B", "C", "Z")
    # Not committed (the watcher crashed before queuing it): handed out again, same key.
    again = feed.poll()
    assert again == batch
    feed.commit(batch)
    assert feed.poll() is None
    assert feed.poll() is None
    # Rewritten with the same content: looked at, nothing to report.
    write(path, ["Z,Zucchini,9.00,1", "A,Apple,1.00,5", "B,Bean,2.50,6"])
    assert settle(feed) is None


def test_a_file_still_being_written_is_not_read_half_way(tmp_path: Path) -> None:
    feed, path = csv_feed(tmp_path)
    feed.poll()
    reads: list[int] = []
    original = feed._read

    def counted() -> Any:
        reads.append(1)
        return original()

    feed._read = counted
    for n in range(3):  # it changes on every look
        write(path, ["A,Apple,1.00,5", f"B,Bean,2.00,{n}", "C,Corn,3.00,7" + "0" * n])
        assert feed.poll() is None
    assert reads == []
    batch = feed.poll()  # stable now
    assert batch is not None
    assert batch.skus == ("B", "C")
    assert reads == [1]


# ------------------------------------------------------------------ the outbox


@pytest.fixture(params=["sqlite", "postgres_database", "mariadb_database"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "pos.db"
        sqlite3.connect(path).close()
        return f"sqlite:///{path}"
    server: TestDatabase = request.getfixturevalue(request.param)
    return server.url


def pos(url: str, tmp_path: Path, **outbox: Any) -> SqlConnector:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE articles (sku VARCHAR(40) PRIMARY KEY, price DECIMAL(10,2), qty INTEGER)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO articles VALUES ('A-1', 1.00, 5), ('B-2', 2.00, 6), ('C-3', 3.00, 7)"
            )
        )
    engine.dispose()
    options = SqlConnector.Options.model_validate(
        {
            "url": url,
            "table": "articles",
            "currency": "EUR",
            "mapping": {"sku": "sku", "price": "price", "stock": "qty"},
            "outbox": outbox,
        }
    )
    return SqlConnector(options, ConnectorContext("canonical", base_dir=tmp_path))


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def test_the_outbox_records_inserts_updates_renames_and_deletes(
    database: str, tmp_path: Path
) -> None:
    connector = pos(database, tmp_path)
    connector.install_outbox()
    connector.install_outbox()  # twice: the DDL can be re-run
    feed = connector.change_feed()
    assert feed is not None
    assert feed.poll() is None
    execute(
        database,
        "UPDATE articles SET qty = 4 WHERE sku = 'A-1'",
        "UPDATE articles SET sku = 'B-22' WHERE sku = 'B-2'",
        "INSERT INTO articles VALUES ('D-4', 4.00, 1)",
        "DELETE FROM articles WHERE sku = 'C-3'",
    )
    batch = feed.poll()
    assert batch is not None
    assert batch.skus == ("A-1", "B-2", "B-22", "D-4", "C-3")
    assert feed.poll() == batch  # not committed yet: handed out again
    feed.commit(batch)
    assert feed.poll() is None
    execute(database, "UPDATE articles SET price = 9 WHERE sku = 'D-4'")
    later = feed.poll()
    assert later is not None
    assert later.skus == ("D-4",)
    assert later.key != batch.key
    feed.close()
    connector.close()


def test_a_row_that_commits_late_is_not_skipped(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    url = postgres_database.url
    connector = pos(url, tmp_path)
    connector.install_outbox()
    feed = connector.change_feed()
    assert feed is not None
    slow = sa.create_engine(url).connect()
    slow_tx = slow.begin()
    slow.execute(sa.text("UPDATE articles SET qty = 1 WHERE sku = 'A-1'"))  # takes the smaller id
    execute(url, "UPDATE articles SET qty = 2 WHERE sku = 'B-2'")  # commits first
    first = feed.poll()
    assert first is not None
    assert first.skus == ("B-2",)
    feed.commit(first)
    slow_tx.commit()
    slow.close()
    late = feed.poll()
    assert late is not None
    assert late.skus == ("A-1",)
    feed.close()
    connector.close()


def test_postgres_wakes_the_feed_with_notify(
    postgres_database: TestDatabase, tmp_path: Path
) -> None:
    url = postgres_database.url
    connector = pos(url, tmp_path)
    connector.install_outbox()
    feed = connector.change_feed()
    assert feed is not None
    feed.wait(0.01)  # starts listening
    waiter = threading.Thread(target=feed.wait, args=(120,))
    waiter.start()
    time.sleep(0.2)
    execute(url, "UPDATE articles SET qty = 0 WHERE sku = 'A-1'")
    waiter.join(timeout=60)
    assert not waiter.is_alive(), "the notification did not wake the feed"
    feed.close()
    connector.close()


def test_the_ddl_quotes_names_and_needs_tables_for_a_query(tmp_path: Path) -> None:
    statements = outbox_ddl("postgresql", "omnisync_outbox", {"shop.articles": "art_no"})
    assert any('ON "shop"."articles"' in s for s in statements)
    assert any("pg_notify('omnisync_outbox'" in s for s in statements)
    maria = outbox_ddl("mariadb", "omnisync_outbox", {"articles": "sku"})
    assert sum(s.startswith("CREATE TRIGGER") for s in maria) == 3
    options = SqlConnector.Options.model_validate(
        {"url": "sqlite:///x.db", "query": "SELECT * FROM a", "mapping": {"sku": "sku"}}
    )
    connector = SqlConnector(options, ConnectorContext("canonical", base_dir=tmp_path))
    from omnisync.errors import ConnectorError

    with pytest.raises(ConnectorError, match=r"outbox\.triggers"):
        connector.outbox_ddl()
    with pytest.raises(ValueError, match="plain table"):
        SqlConnector.Options.model_validate(
            {
                "url": "sqlite:///x.db",
                "table": "a",
                "mapping": {"sku": "sku"},
                "outbox": {"table": "x; DROP"},
            }
        )


def test_omnisync_outbox_prints_and_installs_the_ddl(tmp_path: Path) -> None:
    db = tmp_path / "pos.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE articles (sku TEXT PRIMARY KEY, qty INTEGER)")
    (tmp_path / "c.yaml").write_text(
        f"canonical: {{connector: sql, options: {{url: 'sqlite:///{db}', table: articles, "
        "mapping: {sku: sku, stock: qty}}}\n"
        "channels: {shop: {connector: csv, options: {path: shop.csv, mapping: {sku: sku}}}}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    shown = runner.invoke(app, ["outbox", "-c", str(tmp_path / "c.yaml")])
    assert shown.exit_code == 0, shown.output
    assert "CREATE TRIGGER" in shown.stdout
    assert "omnisync_outbox" in shown.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
        ).fetchone() == (0,)
    installed = runner.invoke(app, ["outbox", "-c", str(tmp_path / "c.yaml"), "--install"])
    assert installed.exit_code == 0, installed.output
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
        ).fetchone() == (3,)
    wrong = runner.invoke(app, ["outbox", "-c", str(tmp_path / "c.yaml"), "-s", "shop"])
    assert wrong.exit_code == 2
    assert "has no outbox" in wrong.stderr


# ------------------------------------------------------------------ end to end

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: sql
  prices: gross
  options:
    url: "sqlite:///{db}"
    table: articles
    currency: EUR
    mapping: {{sku: sku, price: price, stock: qty}}
    outbox: {{}}
channels:
  shop:
    connector: woocommerce
    options: {{url: "{shop}", consumer_key: ck_test, consumer_secret: cs_test, max_wait: 0}}
    expect: {{check: [price, stock]}}
    push: {{fields: [price, stock], guard: {{max_records_pct: 100, max_zero_stock_pct: 100}}}}
  outlet:
    connector: woocommerce
    options: {{url: "{outlet}", consumer_key: ck_test, consumer_secret: cs_test, max_wait: 0}}
    expect: {{check: [price, stock], stock: {{buffer: 1}}}}
    push: {{fields: [price, stock], guard: {{max_records_pct: 100, max_zero_stock_pct: 100}}}}
watch:
  poll_seconds: 0.2
  webhooks:
    shop: {{type: woocommerce, secret: {secret}}}
"""


def woo(stock: dict[str, int], buffer: int = 0) -> WooShop:
    shop = WooShop()
    for n, (sku, qty) in enumerate(stock.items()):
        shop.add(
            {
                "type": "simple",
                "sku": sku,
                "name": f"P{n}",
                "regular_price": f"{n + 1}.00",
                "manage_stock": True,
                "stock_quantity": max(0, qty - buffer),
            }
        )
    return shop


@pytest.fixture
def shops() -> Iterator[tuple[WooShop, WooShop, str, str]]:
    stock = {"A-1": 2, "B-2": 6, "C-3": 7}
    shop, outlet = woo(stock), woo(stock, buffer=1)
    with serve(shop.app) as s1, serve(outlet.app) as s2:
        yield shop, outlet, s1.url, s2.url


def test_the_oversell_race_with_the_pos_outbox_and_the_shops_webhook(
    tmp_path: Path, shops: tuple[WooShop, WooShop, str, str]
) -> None:
    shop, outlet, shop_url, outlet_url = shops
    db = tmp_path / "pos.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE articles (sku TEXT PRIMARY KEY, price NUMERIC, qty INTEGER)")
        conn.executemany(
            "INSERT INTO articles VALUES (?, ?, ?)",
            [("A-1", "1.00", 2), ("B-2", "2.00", 6), ("C-3", "3.00", 7)],
        )
    (tmp_path / "omnisync.yaml").write_text(
        CONFIG.format(db=db, shop=shop_url, outlet=outlet_url, secret=SHOP_SECRET), encoding="utf-8"
    )
    config = load_config(tmp_path / "omnisync.yaml")
    with config.connector("canonical") as canonical:
        canonical.install_outbox()  # type: ignore[attr-defined]
    with Store.open(str(tmp_path / "state.db"), base_dir=tmp_path) as store:
        watcher = Watcher(config, store)
        intake = intake_app(config.model.watch, store, watcher.metrics, wake=watcher.wake.set)
        with serve(intake) as server:
            shop.webhooks.append(
                Webhook("order.created", f"{server.url}/webhooks/shop", SHOP_SECRET)
            )
            thread = threading.Thread(target=watcher.run, daemon=True)
            thread.start()
            try:
                eventually(lambda: watcher.sizes is not None)
                # The last-but-one unit sells in the shop; at the same moment the POS sells
                # the other one (its database's trigger fills the outbox). No webhook, no cron.
                shop.sell("A-1")
                with sqlite3.connect(db) as conn:
                    conn.execute("UPDATE articles SET qty = qty - 1 WHERE sku = 'A-1'")
                eventually(lambda: stock_of(outlet, "A-1") == 0, what="the POS sale in the outlet")
                eventually(lambda: stock_of(shop, "A-1") == 1)
                # The ERP books the web order: canonical 0, everywhere 0.
                with sqlite3.connect(db) as conn:
                    conn.execute("UPDATE articles SET qty = 0 WHERE sku = 'A-1'")
                eventually(lambda: stock_of(shop, "A-1") == 0 and stock_of(outlet, "A-1") == 0)
                # A price change at the till reaches both shops through the outbox too.
                with sqlite3.connect(db) as conn:
                    conn.execute("UPDATE articles SET price = '2.50' WHERE sku = 'B-2'")
                eventually(lambda: shop.product("B-2")["regular_price"] == "2.50")
                eventually(lambda: outlet.product("B-2")["regular_price"] == "2.50")
                eventually(lambda: all(s == EVENT_DONE for _, s in store.events()))
            finally:
                watcher.stopping.set()
                watcher.wake.set()
                thread.join(timeout=30)
        with sqlite3.connect(db) as conn:  # every outbox row was consumed
            assert conn.execute("SELECT count(*) FROM omnisync_outbox").fetchone() == (0,)
        sources = {e.source for e, _ in store.events()}
        assert sources == {"canonical", "shop"}
        # The shop's stock was only ever lowered by omnisync: its own sale was not undone.
        written = [
            e.change.after
            for r in store.runs(limit=50)
            if r.kind == "push"
            for e in store.push_run(r.id).entries
            if e.change.channel == "shop" and e.change.field == "stock"
        ]
        assert written == [0]
