"""The push pipeline against a fault-injecting channel: guardrails, batches, retries,
per-record failures, stale plans, the journal, resume and undo."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from omnisync.config import Config, load_config
from omnisync.errors import ExitCode, GuardrailError
from omnisync.models import Change, ChannelReport, CheckResult, Finding, Kind, Money, Op, Record
from omnisync.plan import ChannelPlan, Plan, build_plan
from omnisync.push import InterruptedPush, Pusher, Retry
from omnisync.store import Store
from tests.fakes import FakeChannel, Faults

CONFIG = """\
canonical:
  connector: csv
  guard: {canonical_guard}
  options: {{path: erp.csv, mapping: {{sku: sku, price: price, stock: stock}}}}
channels:
  shop:
    connector: csv
    options: {{path: shop.csv, mapping: {{sku: sku, title: title, price: price, stock: stock}}}}
    push:
      fields: [price, stock]
      create: {create}
      guard: {guard}
"""


def make_config(
    tmp_path: Path, guard: str = "{}", create: bool = True, canonical_guard: str = "{}"
) -> Config:
    path = tmp_path / "omnisync.yaml"
    text = CONFIG.format(guard=guard, create=str(create).lower(), canonical_guard=canonical_guard)
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def shop_records(n: int = 10) -> list[Record]:
    return [
        Record(f"S{i:03d}", title=f"t{i}", price=Money(Decimal("10"), "EUR"), stock={"default": 5})
        for i in range(n)
    ]


def price_change(sku: str, before: str = "10", after: str = "11") -> Change:
    return Change("shop", sku, Op.UPDATE, "price", None, eur(before), eur(after), "rule")


def make_plan(changes: list[Change], catalogue: int = 100, canonical: int = 100) -> Plan:
    return Plan(
        created_at=datetime.now(UTC),
        config_path="omnisync.yaml",
        config_fingerprint="x",
        check_run=None,
        canonical_count=canonical,
        canonical_priced=canonical,
        channels=[ChannelPlan("shop", "csv", catalogue, catalogue, changes)],
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open("state.db", base_dir=tmp_path) as opened:
        yield opened


def pusher(
    config: Config, store: Store, channel: FakeChannel, opened: list[str | None] | None = None
) -> Pusher:
    """A pusher whose every channel is ``channel``; ``opened`` collects the run ids it was
    opened for."""

    def connector(name: str, *, run_id: str | None = None) -> FakeChannel:
        if opened is not None:
            opened.append(run_id)
        return channel

    return Pusher(config, store, retry=Retry(attempts=4, max_wait=0.0), connectors=connector)


def statuses(store: Store, run_id: str) -> dict[str, str]:
    return {f"{e.change.sku}:{e.change.field}": e.status for e in store.journal(run_id)}


# ------------------------------------------------------------------ plan


def test_plan_honours_field_ownership_creates_and_deletes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    report = ChannelReport("shop", "csv", canonical_count=3, channel_count=3)
    report.findings = [
        Finding(
            "shop",
            Kind.CHANGED,
            "A",
            "price",
            before=eur("9"),
            after=eur("10"),
            rule="r",
            ids={"id": "1"},
        ),
        Finding("shop", Kind.CHANGED, "A", "title", before="a", after="b"),
        Finding("shop", Kind.CHANGED, "B", "stock", "berlin", before=3, after=4),
        Finding("shop", Kind.MISSING, "C", after={"sku": "C", "price": eur("5")}),
        Finding("shop", Kind.EXTRA, "Z", before={"sku": "Z"}),
        Finding("shop", Kind.DUPLICATE, "D"),
    ]
    result = CheckResult(
        datetime.now(UTC),
        datetime.now(UTC),
        "c.yaml",
        "fp",
        [report],
        canonical_count=3,
        canonical_priced=3,
    )
    plan = build_plan(result, config)
    changes = {c.key: c for c in plan.changes}
    assert set(changes) == {"A:price", "B:stock@berlin", "C:+"}
    assert changes["A:price"].ids == {"id": "1"}
    reasons = {s.sku + s.what: s.reason for s in plan.channel("shop").skipped}
    assert "owned by the channel" in reasons["Atitle"]
    assert "never deleted unless push.delete" in reasons["Zextra"]
    assert "more than once" in reasons["Dduplicate"]
    again = Plan.from_json(plan.to_json())
    assert [c.to_dict() for c in again.changes] == [c.to_dict() for c in plan.changes]
    assert again.fingerprint() == plan.fingerprint()


# ------------------------------------------------------------------ apply


def test_a_missing_and_an_extra_sku_that_are_one_product_are_neither_created_nor_deleted(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    report = ChannelReport("shop", "csv", canonical_count=2, channel_count=2)
    report.findings = [
        Finding("shop", Kind.MISSING, "KA-1001", after={"sku": "KA-1001"}),
        Finding(
            "shop",
            Kind.IDENTITY,
            "KA-1001",
            "sku",
            canonical="4006381333931",
            expected="KA-1001",
            actual="KA-1OO1",
        ),
        Finding("shop", Kind.EXTRA, "KA-1OO1", before={"sku": "KA-1OO1"}),
        Finding("shop", Kind.MISSING, "NEW", after={"sku": "NEW", "price": eur("5")}),
    ]
    result = CheckResult(
        datetime.now(UTC), datetime.now(UTC), "c.yaml", "fp", [report], canonical_count=2
    )
    plan = build_plan(result, config)
    assert [c.key for c in plan.changes] == ["NEW:+"]  # the unrelated create still goes
    reasons = {s.sku + s.what: s.reason for s in plan.channel("shop").skipped}
    assert "one product with KA-1OO1" in reasons["KA-1001missing"]
    assert "one product with KA-1001" in reasons["KA-1OO1extra"]
    assert reasons["KA-1001sku"].startswith("identity:")


def test_apply_in_batches_and_journal(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(10))
    changes = [price_change(f"S{i:03d}") for i in range(10)]
    outcome = pusher(make_config(tmp_path), store, channel).apply(make_plan(changes))
    assert outcome.exit_code is ExitCode.OK
    assert outcome.total("applied") == 10
    assert channel.requests == 4
    assert channel.batch_sizes == [3, 3, 3, 1]
    assert set(statuses(store, outcome.run_id or "").values()) == {"applied"}
    assert channel.value("S000", "price") == eur("11")
    record = store.push_run(outcome.run_id or "")
    assert record.status == "done"
    assert record.exit_code == 0


def test_transient_failures_are_retried_and_counted(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(2), Faults(transient_writes=2, retry_after=0.0))
    outcome = pusher(make_config(tmp_path), store, channel).apply(make_plan([price_change("S000")]))
    assert outcome.exit_code is ExitCode.OK
    assert outcome.retries == 2
    assert channel.requests == 3
    assert channel.sent["S000:price"] == 1


def test_transient_failures_beyond_the_policy_fail_the_batch(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(2), Faults(transient_writes=99))
    outcome = pusher(make_config(tmp_path), store, channel).apply(
        make_plan([price_change("S000"), price_change("S001")])
    )
    assert outcome.exit_code is ExitCode.FAILED
    assert channel.requests == 4  # the policy's attempts, no more
    assert all("503" in message for _, message in outcome.failures)


def test_permanent_record_failure_keeps_the_channels_message(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(
        shop_records(4), Faults(reject={"S001": "product_invalid_sku: Invalid or duplicated SKU."})
    )
    outcome = pusher(make_config(tmp_path), store, channel).apply(
        make_plan([price_change(f"S{i:03d}") for i in range(4)])
    )
    assert outcome.exit_code is ExitCode.PARTIAL
    assert outcome.total("applied") == 3
    assert outcome.total("failed") == 1
    failed = [e for e in store.journal(outcome.run_id or "") if e.status == "failed"]
    assert [(e.change.sku, e.error) for e in failed] == [
        ("S001", "product_invalid_sku: Invalid or duplicated SKU.")
    ]


def test_a_broken_channel_fails_its_remaining_changes(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(5), Faults(broken="401 Unauthorized: check the API token"))
    outcome = pusher(make_config(tmp_path), store, channel).apply(
        make_plan([price_change(f"S{i:03d}") for i in range(5)])
    )
    assert outcome.exit_code is ExitCode.FAILED
    assert channel.requests == 1  # it stops at the first permanent channel error
    assert set(statuses(store, outcome.run_id or "").values()) == {"failed"}


def test_stale_plan_skips_records_changed_since(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(3))
    plan = make_plan([price_change("S000"), price_change("S001")])
    channel.records["S001"].price = Money(
        Decimal("12.50"), "EUR"
    )  # someone changed it after planning
    outcome = pusher(make_config(tmp_path), store, channel).apply(plan)
    assert outcome.exit_code is ExitCode.PARTIAL
    assert statuses(store, outcome.run_id or "") == {"S000:price": "applied", "S001:price": "stale"}
    assert channel.value("S001", "price") == eur("12.5")  # fresher data kept
    (stale,) = [m for _, m in outcome.failures]
    assert "12.5 EUR" in stale
    assert "10 EUR" in stale


def test_applying_twice_sends_nothing_the_second_time(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(3))
    plan = make_plan([price_change("S000")])
    push = pusher(make_config(tmp_path), store, channel)
    push.apply(plan)
    second = push.apply(plan)
    assert second.total("already") == 1
    assert channel.sent["S000:price"] == 1


def test_create_and_stock_at_location(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(1))
    create = Change(
        "shop", "NEW", Op.CREATE, after={"sku": "NEW", "price": eur("5"), "stock": {"default": 2}}
    )
    stock = Change("shop", "S000", Op.UPDATE, "stock", "default", 5, 0)
    outcome = pusher(make_config(tmp_path), store, channel).apply(make_plan([create, stock]))
    assert outcome.exit_code is ExitCode.OK
    assert channel.value("NEW", "price") == eur("5")
    assert channel.value("S000", "stock", "default") == 0


# ------------------------------------------------------------------ guardrails


def test_the_zero_stock_guard_measures_a_listed_channel_by_its_own_skus(
    tmp_path: Path, store: Store
) -> None:
    """A channel that lists 40 of canonical's 1,000 SKUs (assortment: listed) zeroing 10 of
    them zeroes 25% of what it sells; measured against canonical's 1,000 it looked like 1%."""
    config = make_config(tmp_path, guard="{max_zero_stock_pct: 10}")
    findings = [
        Finding("shop", Kind.CHANGED, f"S{i:03d}", "stock", before=5, after=0) for i in range(10)
    ]
    report = ChannelReport("shop", "csv", canonical_count=1000, channel_count=40)
    report.findings = findings
    result = CheckResult(datetime.now(UTC), datetime.now(UTC), "c.yaml", "fp", [report], 1000, 1000)
    plan = build_plan(result, config)
    assert plan.channel("shop").compared == 40
    with pytest.raises(GuardrailError, match=r"for 10 of 40 SKUs \(25\.0%\)"):
        pusher(config, store, FakeChannel(shop_records(40))).apply(plan)


@pytest.mark.parametrize(
    ("guard", "changes", "catalogue", "message"),
    [
        (
            "{max_records: 2}",
            [price_change(f"S{i:03d}") for i in range(3)],
            100,
            "3 records would change, 1 over the limit of 2",
        ),
        (
            "{max_records_pct: 10}",
            [price_change(f"S{i:03d}") for i in range(3)],
            20,
            "3 of 20 records (15.0%)",
        ),
        (
            "{max_price_change_pct: 20}",
            [price_change("S000", "10", "13")],
            100,
            "move more than 20%: S000 10→13 (30.0%)",
        ),
        ("{max_price_change_pct: {sale_price: 5}}", [price_change("S000", "10", "13")], 100, None),
        (
            "{max_zero_stock_pct: 10}",
            [Change("shop", f"S{i:03d}", Op.UPDATE, "stock", None, 5, 0) for i in range(3)],
            20,
            "stock would drop to 0 for 3 of 20 SKUs (15.0%)",
        ),
    ],
)
def test_guardrails_refuse_with_limit_and_amount(
    tmp_path: Path,
    store: Store,
    guard: str,
    changes: list[Change],
    catalogue: int,
    message: str | None,
) -> None:
    config = make_config(tmp_path, guard=guard)
    channel = FakeChannel(shop_records(20))
    push = pusher(config, store, channel)
    if message is None:
        assert push.apply(make_plan(changes, catalogue)).exit_code is ExitCode.OK
        return
    with pytest.raises(GuardrailError) as info:
        push.apply(make_plan(changes, catalogue))
    text = str(info.value)
    assert message in text
    assert "channels.shop.push.guard." in text
    assert "--force" in text
    assert channel.requests == 0
    assert store.runs(5) == []
    forced = push.apply(make_plan(changes, catalogue), force=True)
    assert forced.exit_code is ExitCode.OK
    record = store.push_run(forced.run_id or "")
    assert record.forced
    assert message in record.overrides[0]


def test_broken_canonical_is_refused(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    push = pusher(config, store, FakeChannel(shop_records(3)))
    result = CheckResult(
        datetime.now(UTC),
        datetime.now(UTC),
        "c",
        "f",
        [],
        canonical_count=1000,
        canonical_priced=1000,
    )
    store.record_check(result, 0)
    with pytest.raises(GuardrailError, match=r"canonical has 100 records, 10.0% of the 1000"):
        push.apply(make_plan([price_change("S000")], canonical=100))
    zero = make_plan([price_change("S000")], canonical=1000)
    zero.canonical_priced = 0
    with pytest.raises(GuardrailError, match=r"1000 of 1000 canonical prices \(100.0%\) are zero"):
        push.apply(zero)


@pytest.mark.parametrize(
    ("unpriced", "limit", "refused"), [(50, None, True), (10, None, False), (50, "10", False)]
)
def test_unpriced_canonical_is_a_percentage_limit(
    tmp_path: Path, store: Store, unpriced: int, limit: str | None, refused: bool
) -> None:
    """5% zero or missing prices is refused by default (2%); 1% passes; a raised limit passes."""
    guard = "{}" if limit is None else f"{{max_unpriced_pct: {limit}}}"
    config = make_config(tmp_path, canonical_guard=guard)
    push = pusher(config, store, FakeChannel(shop_records(3)))
    plan = make_plan([price_change("S000")], canonical=1000)
    plan.canonical_priced = 1000 - unpriced
    if refused:
        with pytest.raises(GuardrailError, match=r"canonical.guard.max_unpriced_pct"):
            push.apply(plan)
    else:
        assert push.apply(plan).exit_code is ExitCode.OK


# ------------------------------------------------------------------ resume and undo


def test_interrupted_push_resumes_exactly_once(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    channel = FakeChannel(shop_records(9), Faults(crash_after_write=2))
    opened: list[str | None] = []
    push = pusher(config, store, channel, opened)
    plan = make_plan([price_change(f"S{i:03d}") for i in range(9)])
    with pytest.raises(InterruptedPush) as info:
        push.apply(plan)
    assert "--resume" in (info.value.hint or "")
    (run,) = store.runs(1)
    journal = statuses(store, run.id)
    # Batch 1 journalled as applied; batch 2 was sent but the crash came before its outcome.
    assert list(journal.values()).count("applied") == 3
    assert list(journal.values()).count("sending") == 3
    assert list(journal.values()).count("planned") == 3
    channel.faults.crash_after_write = None
    outcome = push.resume(run.id)
    assert outcome.exit_code is ExitCode.OK
    assert set(statuses(store, run.id).values()) == {"applied"}
    assert all(n == 1 for n in channel.sent.values())
    assert len(channel.sent) == 9
    assert outcome.total("already") == 3  # batch 2 was recognised in the channel, not resent
    # The channel wrote for the same run both times (idempotency keys derive from it).
    assert opened == [run.id, run.id]


def test_a_batch_interrupted_on_its_way_is_sent_again_as_it_was(
    tmp_path: Path, store: Store
) -> None:
    config = make_config(tmp_path)
    channel = FakeChannel(shop_records(9), Faults(crash_after_write=2))
    channel.records["S003"].price = Money(Decimal("11"), "EUR")  # already as planned
    push = pusher(config, store, channel)
    with pytest.raises(InterruptedPush):
        push.apply(make_plan([price_change(f"S{i:03d}") for i in range(9)]))
    (run,) = store.runs(1)
    journal = statuses(store, run.id)
    assert [sku for sku, status in journal.items() if status == "sending"] == [
        "S004:price",
        "S005:price",
    ]
    # The channel never acted on that request (its answer and its effect were lost).
    for sku in ("S004", "S005"):
        channel.records[sku].price = Money(Decimal("10"), "EUR")
    channel.faults.crash_after_write = None
    assert channel.batch_sizes == [3, 2]
    outcome = push.resume(run.id)
    assert outcome.exit_code is ExitCode.OK
    # The two again on their own, the same request as before (so the same idempotency key
    # at a channel that keys requests by content); the rest after them.
    assert channel.batch_sizes == [3, 2, 2, 3]


def test_undo_restores_before_values_through_the_journal(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    channel = FakeChannel(shop_records(3))
    push = pusher(config, store, channel)
    create = Change("shop", "NEW", Op.CREATE, after={"sku": "NEW", "price": eur("5")})
    first = push.apply(
        make_plan(
            [
                price_change("S000"),
                Change("shop", "S001", Op.UPDATE, "stock", "default", 5, 7),
                create,
            ]
        )
    )
    undo = push.undo_plan(first.run_id or "")
    assert undo.undo_of == first.run_id
    outcome = push.apply(undo)
    assert outcome.exit_code is ExitCode.OK
    assert channel.value("S000", "price") == eur("10")
    assert channel.value("S001", "stock", "default") == 5
    assert "NEW" not in channel.records
    assert store.push_run(outcome.run_id or "").undo_of == first.run_id


def test_undo_does_not_overwrite_later_changes(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    channel = FakeChannel(shop_records(2))
    push = pusher(config, store, channel)
    first = push.apply(make_plan([price_change("S000")]))
    channel.records["S000"].price = Money(Decimal("15"), "EUR")
    outcome = push.apply(push.undo_plan(first.run_id or ""))
    assert outcome.exit_code is ExitCode.FAILED  # stale: nothing reverted
    assert channel.value("S000", "price") == eur("15")


def test_dry_run_previews_batches_without_sending(tmp_path: Path, store: Store) -> None:
    channel = FakeChannel(shop_records(5))
    push = pusher(make_config(tmp_path), store, channel)
    outcome = push.preview(make_plan([price_change(f"S{i:03d}") for i in range(5)]))
    assert [len(batch) for batch in outcome.previews["shop"]] == [3, 2]
    assert channel.requests == 0
    assert store.runs(5) == []
