"""Parts of the watcher: the connector pool (one open connector per source, lent to checks
and pushes) and the lease on the push lock its two stages share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omnisync.config import load_config
from omnisync.errors import LockedError
from omnisync.store import Store
from omnisync.watch.lease import Lease
from omnisync.watch.pool import ConnectorPool

CONFIG = """\
canonical:
  connector: csv
  options: {path: erp.csv, mapping: {sku: sku, price: price}}
channels:
  shop:
    connector: csv
    options: {path: shop.csv, mapping: {sku: sku, price: price}}
"""


def test_a_lent_connector_outlives_its_with_blocks_until_the_pool_renews(tmp_path: Path) -> None:
    (tmp_path / "omnisync.yaml").write_text(CONFIG, encoding="utf-8")
    pool = ConnectorPool(load_config(tmp_path / "omnisync.yaml"), None)
    closed: list[str] = []
    with pool("shop") as first:
        first.close = lambda: closed.append("shop")  # type: ignore[method-assign]
    assert closed == []  # leaving the block leaves it open
    with pool("shop", run_id="run-1") as again:
        assert again is first
        assert again.context.run_id == "run-1"  # it writes for the push it is lent to
    assert pool("canonical") is not first
    # A full read (a pass) never borrows: it gets its own connector, closed as usual.
    full = pool("shop", full=True)
    assert full is not first
    assert not full.lent
    pool.renew()
    assert closed == ["shop"]
    assert not first.lent
    assert pool("shop") is not first
    pool.close()


def test_the_lease_holds_the_push_lock_from_the_first_stage_in_to_the_last_out(
    tmp_path: Path,
) -> None:
    with Store.open("state.db", base_dir=tmp_path) as store:
        lease = Lease(store)
        lease.acquire()  # a batch's check
        lease.acquire()  # the batch before it, still pushing
        lease.release()  # that push is done; the check still holds it
        with pytest.raises(LockedError), store.lock("push"):  # a sync from cron
            pass
        lease.release()
        assert not lease.held
        # Given back once nobody needs it: another run can take it, and then the lease waits.
        with store.lock("push"), pytest.raises(LockedError):
            lease.acquire()
        assert not lease.held


def test_a_file_is_read_once_per_version_for_targeted_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watch`` re-checks a few SKUs per event; a file channel (or canonical) is read whole
    once, and again only when the file changes, not once per event."""
    import shutil

    from omnisync import pipeline
    from omnisync.check import CheckRequest, open_engine
    from omnisync.load import Engine

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "examples", tmp_path / "examples")
    shutil.copy(root / "config.example.yaml", tmp_path / "omnisync.yaml")
    config = load_config(tmp_path / "omnisync.yaml")
    reads: list[str] = []
    original = Engine._read

    def counted(self: Engine, table: str, connector: Any, progress: Any) -> Any:
        reads.append(connector.name)  # a whole read, by whichever path
        return original(self, table, connector, progress)

    monkeypatch.setattr(Engine, "_read", counted)
    from omnisync_connectors.files.base import FileConnector

    parsed = FileConnector.read_skus

    def targeted(self: FileConnector, skus: Any) -> Any:
        reads.append(f"{self.name} (targeted)")  # parses the whole file for a few SKUs
        return parsed(self, skus)

    monkeypatch.setattr(FileConnector, "read_skus", targeted)
    engine = open_engine(config)
    try:

        def check(*skus: str) -> dict[tuple[str, str], str | None]:
            request = CheckRequest(
                at=datetime(2026, 11, 23, 12, tzinfo=UTC),
                channels=["webshop"],
                skus=frozenset(skus),
                engine=engine,
            )
            result, _ = pipeline.check(config, request, record=False)
            return {(f.sku, f.kind.value): f.field for f in result.findings}

        assert check("KA-1003", "KA-1005") == {
            ("KA-1003", "changed"): "price",
            ("KA-1005", "changed"): "title",
        }
        first = len(reads)
        assert sorted(reads) == ["canonical", "webshop"]  # each read whole, once
        assert check("KA-1003") == {("KA-1003", "changed"): "price"}
        assert check("KA-1001", "KA-1004") == {("KA-1004", "changed"): "stock"}
        assert len(reads) == first  # served from what the engine kept

        # The shop file changes (a push, an export): it is read again, canonical is not.
        shop = tmp_path / "examples" / "webshop_woocommerce.csv"
        shop.write_text(
            shop.read_text(encoding="utf-8").replace(",79.00,", ",79.99,"), encoding="utf-8"
        )
        assert check("KA-1003", "KA-1005") == {("KA-1005", "changed"): "title"}
        assert reads[first:] == ["webshop"]
    finally:
        engine.close()
