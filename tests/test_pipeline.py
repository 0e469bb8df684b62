"""The pipeline without the command line: what watch and the workers will drive."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnisync import pipeline
from omnisync.check import CheckRequest
from omnisync.config import load_config
from omnisync.errors import ExitCode, LockedError

CONFIG = """\
settings: {state: state.db}
canonical:
  connector: csv
  options: {path: erp.csv, currency: EUR, mapping: {sku: sku, price: price, stock: stock}}
channels:
  shop:
    connector: csv
    options: {path: shop.csv, currency: EUR, mapping: {sku: sku, price: price, stock: stock}}
    push: {fields: [price, stock], guard: {max_records_pct: 100}}
"""


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "erp.csv").write_text("sku,price,stock\nA,10.00,3\nB,5.00,1\n", encoding="utf-8")
    (tmp_path / "shop.csv").write_text("sku,price,stock\nA,10.00,3\nB,5.50,1\n", encoding="utf-8")
    (tmp_path / "omnisync.yaml").write_text(CONFIG, encoding="utf-8")
    return load_config(tmp_path / "omnisync.yaml")


def test_check_records_and_decides_the_exit_code(config) -> None:  # type: ignore[no-untyped-def]
    with pipeline.open_store(None, config) as store:
        result, code = pipeline.check(config, CheckRequest(store=store))
        assert code is ExitCode.MISMATCH
        assert [r.id for r in store.runs()] == [result.run_id]
        # fail_on narrows what counts: the mismatch is a price, not a stock
        assert pipeline.exit_code(result, fail_on={"stock"}) is ExitCode.OK
        assert pipeline.exit_code(result, threshold=1) is ExitCode.OK


def test_sync_converges_and_holds_the_push_lock(config) -> None:  # type: ignore[no-untyped-def]
    with pipeline.open_store(None, config) as store:
        request = CheckRequest(store=store)
        dry = pipeline.sync(config, request, dry_run=True)
        assert dry.push is None
        assert dry.previews["shop"]
        assert [c.key for c in dry.plan.changes] == ["B:price"]
        with store.lock("push"), pytest.raises(LockedError):
            pipeline.sync(config, request)
        done = pipeline.sync(config, request)
        assert done.exit_code is ExitCode.OK
        assert done.push is not None
        assert done.push.run_id
        again = pipeline.sync(config, request)
        assert again.push is None
        assert again.plan.changes == []
        assert pipeline.check(config, request)[1] is ExitCode.OK
