"""`omnisync watch` end to end: WooCommerce emulators deliver signed webhooks to the watcher's
intake, canonical changes arrive as signed generic events, and the watcher re-checks just the
touched SKUs and pushes through the guarded, journalled path.

The scenarios: an oversell race (the shop's own sale is not undone, the buffer holds in the
other channel, every channel converges within seconds), a lost webhook repaired by the next
incremental pass, a mass change arriving as many events refused by the guard window, a burst
coalesced into one write per SKU, and `kill -9` of the watcher between receiving and pushing.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnisync.config import load_config
from omnisync.store import EVENT_DONE, EVENT_REFUSED, Store
from omnisync.watch.intake import intake_app
from omnisync.watch.sources import sign
from omnisync.watch.watcher import Watcher
from tests.emulators.server import Server, serve
from tests.emulators.woocommerce import Webhook, WooShop

KEY, SECRET = "ck_test", "cs_test"
ERP_SECRET = "erp-hook-secret"
SHOP_SECRET = "woo-hook-secret"

CONFIG = """\
settings: {{state: state.db, timezone: UTC}}
canonical:
  connector: csv
  prices: gross
  options:
    path: erp.csv
    currency: EUR
    mapping: {{sku: sku, title: title, price: price, stock: stock}}
channels:
  shop:
    connector: woocommerce
    options: {{url: "{shop}", consumer_key: ck_test, consumer_secret: cs_test, max_wait: 0}}
    expect: {{check: [price, stock]}}
    push:
      fields: [price, stock]
      guard: {{max_records: {max_records}, max_records_pct: 100, max_zero_stock_pct: 100}}
  outlet:
    connector: woocommerce
    options: {{url: "{outlet}", consumer_key: ck_test, consumer_secret: cs_test, max_wait: 0}}
    expect: {{check: [price, stock], stock: {{buffer: 1}}}}
    push:
      fields: [price, stock]
      guard: {{max_records: {max_records}, max_records_pct: 100, max_zero_stock_pct: 100}}
watch:
  listen: 127.0.0.1:{port}
  coalesce_seconds: {coalesce}
  interval_seconds: {interval}
  feeds: {feeds}
  poll_seconds: 0.2
  webhooks:
    erp: {{type: generic, secret: {erp_secret}, source: canonical}}
    shop: {{type: woocommerce, secret: {shop_secret}}}
"""

SKUS = [f"S{i:05d}" for i in range(12)]


def make_shop(stock: dict[str, int], buffer: int = 0) -> WooShop:
    shop = WooShop()
    for n, sku in enumerate(SKUS):
        shop.add(
            {
                "type": "simple",
                "sku": sku,
                "name": f"Product {n}",
                "regular_price": f"{10 + n}.00",
                "manage_stock": True,
                "stock_quantity": max(0, stock[sku] - buffer),
            }
        )
    return shop


def write_erp(path: Path, stock: dict[str, int], prices: dict[str, str] | None = None) -> None:
    """Canonical as the ERP exports it; written to a temporary file and renamed, as an
    export job should (the watcher never reads half a file)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "price", "stock"])
        for n, sku in enumerate(SKUS):
            price = (prices or {}).get(sku, f"{10 + n}.00")
            writer.writerow([sku, f"Product {n}", price, stock[sku]])
    tmp.replace(path)


def stock_of(shop: WooShop, sku: str) -> int:
    return int(shop.product(sku)["stock_quantity"])


def eventually(predicate: Callable[[], bool], timeout: float = 20, what: str = "") -> float:
    """Seconds until ``predicate`` holds (fails after ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


@dataclass
class Project:
    root: Path
    shop: WooShop
    outlet: WooShop
    servers: tuple[Server, Server]
    stock: dict[str, int]

    @property
    def config(self) -> Path:
        return self.root / "omnisync.yaml"

    def write_config(self, port: int, **settings: Any) -> None:
        values = {
            "shop": self.servers[0].url,
            "outlet": self.servers[1].url,
            "port": port,
            "coalesce": 0.2,
            "interval": 3600,
            "max_records": 500,
            "feeds": "[]",
            "erp_secret": ERP_SECRET,
            "shop_secret": SHOP_SECRET,
            **settings,
        }
        self.config.write_text(CONFIG.format(**values), encoding="utf-8")

    def canonical_change(self, url: str, skus: list[str], event_id: str) -> httpx.Response:
        """The ERP's hook (or the POS database's outbox) says canonical changed."""
        write_erp(self.root / "erp.csv", self.stock)
        body = json.dumps({"id": event_id, "kind": "stock", "skus": skus}).encode()
        return httpx.post(
            f"{url}/webhooks/erp", content=body, headers=sign("generic", ERP_SECRET, body)
        )


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    stock = dict.fromkeys(SKUS, 5)
    stock["S00001"] = 2
    shop, outlet = make_shop(stock), make_shop(stock, buffer=1)
    write_erp(tmp_path / "erp.csv", stock)
    with serve(shop.app) as shop_server, serve(outlet.app) as outlet_server:
        yield Project(tmp_path, shop, outlet, (shop_server, outlet_server), stock)


@dataclass
class Running:
    url: str
    watcher: Watcher
    store: Store


@contextmanager
def watching(project: Project, *, dry_run: bool = False, **settings: Any) -> Iterator[Running]:
    """The watcher in this process: its loop on a thread, its intake on a free port."""
    project.write_config(port=8787, **settings)
    config = load_config(project.config)
    store = Store.open(str(project.root / "state.db"), base_dir=project.root)
    watcher = Watcher(config, store, dry_run=dry_run)
    app = intake_app(config.model.watch, store, watcher.metrics, wake=watcher.wake.set)
    with serve(app) as intake:
        project.shop.webhooks.append(
            Webhook("order.created", f"{intake.url}/webhooks/shop", SHOP_SECRET)
        )
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        try:
            eventually(lambda: watcher.sizes is not None, what="the first pass")
            yield Running(intake.url, watcher, store)
        finally:
            watcher.stopping.set()
            watcher.wake.set()
            thread.join(timeout=30)
            store.close()
    assert not thread.is_alive()


def settled(store: Store) -> bool:
    counts = store.event_counts()
    return counts.get("queued", 0) + counts.get("claimed", 0) == 0 and bool(counts)


def test_an_oversell_race_converges_within_seconds_and_never_undoes_a_sale(
    project: Project,
) -> None:
    shop, outlet = project.shop, project.outlet
    with watching(project) as run:
        # The second-to-last unit sells in the web shop: the shop lowers its own stock and
        # tells the watcher. Canonical (2) does not know yet; pushing it back would re-open
        # the oversell the shop just closed.
        shop.sell("S00001")
        assert shop.deliveries == [("order.created", 200)]
        eventually(lambda: settled(run.store), what="the shop's event handled")
        assert stock_of(shop, "S00001") == 1
        assert shop.batches == []  # nothing was written back to the shop

        # The POS sells the other unit; its database's change arrives as a canonical event.
        project.stock["S00001"] = 0
        answer = project.canonical_change(run.url, ["S00001"], "pos-1")
        assert answer.status_code == 200
        assert answer.json() == {"queued": 1, "replays": 0}
        eventually(
            lambda: stock_of(shop, "S00001") == 0 and stock_of(outlet, "S00001") == 0,
            what="every channel at canonical stock",
        )
        # The ERP imports the web order too: canonical goes to -1 (oversold), channels show 0.
        project.stock["S00001"] = -1
        project.canonical_change(run.url, ["S00001"], "erp-7")
        eventually(lambda: settled(run.store))
        assert stock_of(shop, "S00001") == 0
        assert stock_of(outlet, "S00001") == 0
        # A goods receipt: 6 arrive; the shop shows 5, the outlet holds one back.
        project.stock["S00001"] = 5
        project.canonical_change(run.url, ["S00001"], "erp-8")
        eventually(lambda: stock_of(shop, "S00001") == 5 and stock_of(outlet, "S00001") == 4)
        # No write ever put more into a channel than canonical minus its buffer.
        journal = [
            (e.change.channel, e.change.after)
            for summary in run.store.runs(limit=50)
            if summary.kind == "push"
            for e in run.store.push_run(summary.id).entries
        ]
        assert ("shop", 5) in journal
        assert ("outlet", 4) in journal
        assert all(after in (0, 4, 5) for _, after in journal)
        statuses = {status for _, status in run.store.events(limit=10)}
        assert statuses == {EVENT_DONE}


def test_a_replayed_delivery_is_handled_once(project: Project) -> None:
    with watching(project) as run:
        project.stock["S00002"] = 3
        first = project.canonical_change(run.url, ["S00002"], "erp-1")
        again = project.canonical_change(run.url, ["S00002"], "erp-1")
        assert first.json() == {"queued": 1, "replays": 0}
        assert again.json() == {"queued": 0, "replays": 1}
        eventually(lambda: settled(run.store))
        assert stock_of(project.shop, "S00002") == 3
        assert len(run.store.events()) == 1
    # `omnisync runs` lists the watcher's pushes with the events they carried.
    from typer.testing import CliRunner

    from omnisync.cli import app

    listed = CliRunner().invoke(
        app, ["runs", "--state", str(project.root / "state.db")], env={"COLUMNS": "250"}
    )
    assert listed.exit_code == 0, listed.output
    assert "watch push (1 event): 2 applied" in listed.stdout
    assert "watch events: 1 done" in listed.stdout


def test_a_lost_webhook_is_repaired_by_the_next_incremental_pass(project: Project) -> None:
    with watching(project, interval=2) as run:
        # An admin edits the shop; WooCommerce's delivery of product.updated is lost.
        product = project.shop.product("S00004")
        project.shop.update(product["id"], {"stock_quantity": 40})
        eventually(lambda: stock_of(project.shop, "S00004") == 5, timeout=30)

        # The repair was the second pass's (the first ran before the edit); the counter is
        # bumped once the pass has finished its push.
        def passes() -> float:
            value = run.watcher.metrics.registry.get_sample_value(
                "omnisync_passes_total", {"kind": "incremental", "status": "ok"}
            )
            return value or 0.0

        eventually(lambda: passes() >= 2, what="the second pass counted")


def test_a_burst_of_events_becomes_at_most_one_write_per_sku_and_channel_per_window(
    project: Project,
) -> None:
    window = 2.0
    with watching(project, coalesce=window) as run:
        for n in range(3):
            project.stock["S00003"] = 4 - n  # 4, 3, 2: only the last is canonical's truth
            project.stock["S00005"] = 9
            body = json.dumps(
                {
                    "events": [
                        {"id": f"b{n}-{i}", "kind": "stock", "skus": ["S00003", "S00005"]}
                        for i in range(40)
                    ]
                }
            ).encode()
            write_erp(project.root / "erp.csv", project.stock)
            answer = httpx.post(
                f"{run.url}/webhooks/erp", content=body, headers=sign("generic", ERP_SECRET, body)
            )
            assert answer.json()["queued"] == 40
        eventually(lambda: settled(run.store))
        assert stock_of(project.shop, "S00003") == 2
        assert stock_of(project.shop, "S00005") == 9
        writes: dict[tuple[str, str], list[datetime]] = {}
        for summary in run.store.runs(limit=50):
            if summary.kind == "push":
                for e in run.store.push_run(summary.id).entries:
                    if e.status == "applied":
                        key = (e.change.channel, e.change.sku)
                        writes.setdefault(key, []).append(e.updated_at)
        # 120 events on two SKUs: the first may go out at once (nothing wrote them lately),
        # the rest wait out the window after it and go as one write.
        assert set(writes) == {
            ("shop", "S00003"),
            ("shop", "S00005"),
            ("outlet", "S00003"),
            ("outlet", "S00005"),
        }
        for key, times in writes.items():
            assert len(times) <= 2, (key, times)
            times.sort()
            for earlier, later in itertools.pairwise(times):
                assert (later - earlier).total_seconds() >= window, (key, times)


def test_a_mass_change_arriving_as_events_is_refused_by_the_guard_window(
    project: Project,
) -> None:
    with watching(project, max_records=3) as run:
        for n, sku in enumerate(SKUS[:6]):
            project.stock[sku] = 1
            project.canonical_change(run.url, [sku], f"mass-{n}")
            eventually(lambda: settled(run.store))
        # Three SKUs went out; from the fourth on, the window's total is over the limit.
        changed = [sku for sku in SKUS[:6] if stock_of(project.shop, sku) == 1]
        assert changed == SKUS[:3]
        events = {e.key: status for e, status in run.store.events()}
        assert [events[f"mass-{n}"] for n in range(6)] == [EVENT_DONE] * 3 + [EVENT_REFUSED] * 3
        refused = run.store.events(status=EVENT_REFUSED)
        assert refused  # the reason is kept with the event
        with run.store._session() as session:
            from omnisync.store.schema import EventRow

            row = session.get(EventRow, refused[0][0].id)
            assert row is not None
            assert "max_records" in (row.error or "")


def test_a_canonical_file_is_followed_by_its_snapshot_without_any_event(
    project: Project,
) -> None:
    with watching(project, feeds="[canonical]") as run:
        project.stock["S00007"] = 3
        project.stock["S00008"] = 0
        write_erp(project.root / "erp.csv", project.stock)
        eventually(
            lambda: (
                stock_of(project.shop, "S00007") == 3 and stock_of(project.outlet, "S00008") == 0
            ),
            what="the file's change in both channels",
        )
        eventually(lambda: settled(run.store))
        ((event, status),) = run.store.events()
        assert (event.source, sorted(event.skus), status) == (
            "canonical",
            ["S00007", "S00008"],
            EVENT_DONE,
        )


def test_a_dry_run_logs_what_it_would_push_and_pushes_nothing(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="omnisync.watch")
    project.stock["S00009"] = 1  # already differs at the first pass
    write_erp(project.root / "erp.csv", project.stock)
    with watching(project, dry_run=True) as run:
        project.stock["S00010"] = 2
        project.canonical_change(run.url, ["S00010"], "d-1")
        eventually(lambda: settled(run.store))
    assert stock_of(project.shop, "S00009") == 5
    assert stock_of(project.shop, "S00010") == 5
    assert project.shop.batches == []
    assert project.outlet.batches == []
    would = [r.getMessage() for r in caplog.records if "dry run" in r.getMessage()]
    assert any("pass" in m and "S00009" in m for m in would), would
    assert any("1 event(s)" in m and "S00010" in m for m in would), would


def test_a_canonical_event_for_an_unknown_sku_changes_nothing(project: Project) -> None:
    with watching(project) as run:
        project.canonical_change(run.url, ["NOPE-1"], "x-1")
        eventually(lambda: settled(run.store))
        assert project.shop.batches == []
        assert project.outlet.batches == []


# ------------------------------------------------------------------ the real process


def _omnisync(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "omnisync", "-v", "--log-json", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(url: str, process: subprocess.Popen[str]) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"watch exited {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            return httpx.get(f"{url}/healthz", timeout=1).json()["catalogue_measured"] is True
        except httpx.HTTPError:
            return False

    eventually(ready, timeout=30, what="watch up")


def test_kill_9_between_receiving_and_pushing_loses_nothing_and_pushes_once(
    project: Project,
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # A long coalescing window: a SKU just written is held back for 30 s, so the watcher is
    # killed after the 200 for its second change, before it pushes that.
    project.write_config(port=port, coalesce=30)
    first = _omnisync("watch", "-c", "omnisync.yaml", cwd=project.root)
    try:
        _up(url, first)
        project.stock["S00006"] = 3
        assert project.canonical_change(url, ["S00006"], "k-0").status_code == 200
        eventually(lambda: stock_of(project.shop, "S00006") == 3, what="the first change")
        project.stock["S00006"] = 1
        answer = project.canonical_change(url, ["S00006"], "k-1")
        assert answer.status_code == 200
        with Store.open(str(project.root / "state.db"), base_dir=project.root) as store:
            eventually(
                lambda: [s for _, s in store.events()] == ["claimed", EVENT_DONE], what="claimed"
            )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert stock_of(project.shop, "S00006") == 3  # it never got to push the second

    project.write_config(port=port, coalesce=0.2)
    second = _omnisync("watch", "-c", "omnisync.yaml", cwd=project.root)
    try:
        _up(url, second)
        eventually(lambda: stock_of(project.shop, "S00006") == 1, what="the event after restart")
        eventually(lambda: stock_of(project.outlet, "S00006") == 0)
        with Store.open(str(project.root / "state.db"), base_dir=project.root) as store:
            eventually(lambda: [s for _, s in store.events()] == [EVENT_DONE] * 2, what="settled")
        # SIGTERM: a graceful stop, exit 0.
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, second.stderr.read() if second.stderr else ""
    finally:
        if second.poll() is None:
            second.kill()
    with Store.open(str(project.root / "state.db"), base_dir=project.root) as store:
        assert [status for _, status in store.events()] == [EVENT_DONE] * 2
        applied = [
            (e.change.channel, e.change.sku, e.change.after)
            for summary in store.runs(limit=50)
            if summary.kind == "push"
            for e in store.push_run(summary.id).entries
            if e.status == "applied"
        ]
        # Each change once: the first before the kill, the second after the restart.
        assert sorted(applied) == [
            ("outlet", "S00006", 0),
            ("outlet", "S00006", 2),  # a buffer of 1
            ("shop", "S00006", 1),
            ("shop", "S00006", 3),
        ]
    assert second.stderr is not None
    logs = [json.loads(line) for line in second.stderr.read().splitlines() if line.startswith("{")]
    assert any("queued again" in line["message"] for line in logs), logs


def test_kill_9_while_a_push_is_in_flight_is_finished_from_the_journal_on_restart(
    project: Project,
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    project.write_config(port=port)
    first = _omnisync("watch", "-c", "omnisync.yaml", cwd=project.root)
    try:
        _up(url, first)
        project.servers[0].faults.latency = 2  # the shop answers slowly: the batch is in flight
        project.stock["S00011"] = 2
        project.canonical_change(url, ["S00011"], "f-1")
        with Store.open(str(project.root / "state.db"), base_dir=project.root) as store:

            def sending() -> bool:
                pushes = [r for r in store.runs(limit=10) if r.kind == "push"]
                return any(
                    e.status == "sending" for r in pushes for e in store.push_run(r.id).entries
                )

            eventually(sending, timeout=60, what="a change journalled as sending")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    project.servers[0].faults.latency = 0
    second = _omnisync("watch", "-c", "omnisync.yaml", cwd=project.root)
    try:
        _up(url, second)
        with Store.open(str(project.root / "state.db"), base_dir=project.root) as store:
            eventually(lambda: [s for _, s in store.events()] == [EVENT_DONE], what="settled")
            pushes = [store.push_run(r.id) for r in store.runs(limit=10) if r.kind == "push"]
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    assert stock_of(project.shop, "S00011") == 2
    assert stock_of(project.outlet, "S00011") == 1
    # The interrupted run was finished (from its journal), not left running; each change
    # landed once.
    assert {p.status for p in pushes} <= {"done"}
    applied = sorted(
        (e.change.channel, e.change.sku)
        for p in pushes
        for e in p.entries
        if e.status in ("applied", "already")
    )
    assert applied == [("outlet", "S00011"), ("shop", "S00011")]


def test_events_wait_while_a_sync_holds_the_push_lock(project: Project) -> None:
    with watching(project) as run:
        with run.store.lock("push"):  # `omnisync sync` from cron, say
            project.stock["S00000"] = 4
            project.canonical_change(run.url, ["S00000"], "l-1")
            time.sleep(1.5)
            assert stock_of(project.shop, "S00000") == 5  # not pushed past the lock
            assert [s for _, s in run.store.events()] in (["queued"], ["claimed"])
        eventually(lambda: stock_of(project.shop, "S00000") == 4, what="after the lock")
        eventually(lambda: settled(run.store))
        ((event, status),) = run.store.events()
        assert status == EVENT_DONE
        assert event.attempts >= 1


def test_a_second_watcher_on_the_same_store_exits_7(project: Project) -> None:
    port = _free_port()
    project.write_config(port=port)
    first = _omnisync("watch", "-c", "omnisync.yaml", cwd=project.root)
    try:
        _up(f"http://127.0.0.1:{port}", first)
        second = _omnisync(
            "watch",
            "-c",
            "omnisync.yaml",
            "--listen",
            f"127.0.0.1:{_free_port()}",
            cwd=project.root,
        )
        assert second.wait(timeout=30) == 7
        assert "watch" in (second.stderr.read() if second.stderr else "")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def test_a_watcher_started_during_a_sync_waits_for_it(project: Project) -> None:
    project.write_config(port=8787)
    config = load_config(project.config)
    with Store.open(str(project.root / "state.db"), base_dir=project.root) as store:
        watcher = Watcher(config, store)
        thread = threading.Thread(target=watcher.run, daemon=True)
        with store.lock("push"):  # a cron `sync` is pushing as the service starts
            thread.start()
            time.sleep(1)
            assert thread.is_alive()
            assert watcher.sizes is None
        eventually(lambda: watcher.sizes is not None, what="the first pass after the sync")
        watcher.stopping.set()
        watcher.wake.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
