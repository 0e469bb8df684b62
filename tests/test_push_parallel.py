"""Pushing several channels at once, and plans made a moment ago (``watch``).

A push writes every channel of its plan side by side (each channel's batches in order), so a
correction reaches five shops in about the time of the slowest. These tests show it without a
clock: two channels' writes meet at a barrier that only concurrent writes can pass.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omnisync.config import Config, load_config
from omnisync.errors import ExitCode
from omnisync.models import Change, Op, WriteResult
from omnisync.plan import ChannelPlan, Plan
from omnisync.push import InterruptedPush, Pusher, Retry
from omnisync.store import Store
from tests.fakes import FakeChannel, Faults
from tests.test_push import eur, shop_records

CONFIG = """\
canonical:
  connector: csv
  options: {path: erp.csv, mapping: {sku: sku, price: price}}
channels:
  shop:
    connector: csv
    options: {path: shop.csv, mapping: {sku: sku, price: price}}
    push: {fields: [price]}
  outlet:
    connector: csv
    options: {path: outlet.csv, mapping: {sku: sku, price: price}}
    push: {fields: [price]}
"""


class Meeting(FakeChannel):
    """A channel whose first write waits for the other channel's first write."""

    def __init__(self, barrier: threading.Barrier, **kwargs: Any) -> None:
        super().__init__(shop_records(6), **kwargs)
        self.barrier = barrier
        self.current_calls = 0

    def write(self, changes: Sequence[Change]) -> list[WriteResult]:
        if self.requests == 0:
            self.barrier.wait(timeout=20)  # BrokenBarrierError if the other never writes
        return super().write(changes)

    def current(self, changes: Sequence[Change]) -> dict[str, Any]:
        self.current_calls += 1
        return super().current(changes)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "omnisync.yaml").write_text(CONFIG, encoding="utf-8")
    return load_config(tmp_path / "omnisync.yaml")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open("state.db", base_dir=tmp_path) as opened:
        yield opened


def plan_for(names: Sequence[str], n: int = 6) -> Plan:
    channels = [
        ChannelPlan(
            name,
            "csv",
            100,
            100,
            [
                Change(name, f"S{i:03d}", Op.UPDATE, "price", None, eur("10"), eur("11"), "r")
                for i in range(n)
            ],
        )
        for name in names
    ]
    return Plan(
        created_at=datetime.now(UTC),
        config_path="omnisync.yaml",
        config_fingerprint="x",
        check_run=None,
        canonical_count=100,
        canonical_priced=100,
        channels=channels,
    )


def pusher(config: Config, store: Store, channels: dict[str, FakeChannel]) -> Pusher:
    def connector(name: str, *, run_id: str | None = None) -> FakeChannel:
        return channels[name]

    return Pusher(config, store, retry=Retry(attempts=2, max_wait=0.0), connectors=connector)


def test_channels_are_written_side_by_side(config: Config, store: Store) -> None:
    barrier = threading.Barrier(2)
    channels = {name: Meeting(barrier) for name in ("shop", "outlet")}
    outcome = pusher(config, store, channels).apply(plan_for(["shop", "outlet"]))
    assert outcome.exit_code is ExitCode.OK
    assert outcome.total("applied") == 12
    for channel in channels.values():
        assert channel.batch_sizes == [3, 3]  # each channel's batches still in order
        assert all(n == 1 for n in channel.sent.values())


def test_an_interrupt_in_one_channel_stops_all_and_resume_sends_each_change_once(
    config: Config, store: Store
) -> None:
    barrier = threading.Barrier(2)
    shop = Meeting(barrier, faults=Faults(crash_after_write=1))
    outlet = Meeting(barrier)
    push = pusher(config, store, {"shop": shop, "outlet": outlet})
    with pytest.raises(InterruptedPush):
        push.apply(plan_for(["shop", "outlet"]))
    (run,) = store.runs(1)
    assert run.status == "interrupted"
    shop.faults.crash_after_write = None
    outcome = push.resume(run.id)
    assert outcome.exit_code is ExitCode.OK
    assert {e.status for e in store.journal(run.id)} == {"applied"}
    for channel in (shop, outlet):
        assert len(channel.sent) == 6
        assert all(n == 1 for n in channel.sent.values()), channel.sent


def test_a_fresh_plan_is_sent_without_reading_the_channel_again(
    config: Config, store: Store
) -> None:
    shop = Meeting(threading.Barrier(1))
    outcome = pusher(config, store, {"shop": shop}).apply(plan_for(["shop"]), fresh=True)
    assert outcome.total("applied") == 6
    assert shop.current_calls == 0
    # Without `fresh` (a plan file, cron's sync) every batch is read again before it goes.
    again = Meeting(threading.Barrier(1))
    pusher(config, store, {"shop": again}).apply(plan_for(["shop"]))
    assert again.current_calls == 2


def test_a_fresh_push_resumed_after_a_crash_reads_what_was_on_its_way(
    config: Config, store: Store
) -> None:
    shop = Meeting(threading.Barrier(1), faults=Faults(crash_after_write=1))
    push = pusher(config, store, {"shop": shop})
    with pytest.raises(InterruptedPush):
        push.apply(plan_for(["shop"]), fresh=True)
    (run,) = store.runs(1)
    shop.faults.crash_after_write = None
    outcome = push.resume(run.id)
    assert outcome.total("already") == 3  # the batch that went out is recognised, not resent
    assert all(n == 1 for n in shop.sent.values())
    assert shop.current_calls >= 1
