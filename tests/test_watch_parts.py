"""Parts of the watcher: the connector pool (one open connector per source, lent to checks
and pushes) and the lease on the push lock its two stages share."""

from __future__ import annotations

from pathlib import Path

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
