"""``omnisync publish``: write what a feed channel should show, generated from canonical.

A channel with a ``publish:`` block (:class:`~omnisync.publish.settings.PublishRules`) is a
feed omnisync writes rather than corrects: the file its connector reads (``options.path``),
so that ``check`` of the channel reads back exactly what ``publish`` wrote.

The values come from the check's own code, never a second implementation of the rules:
canonical is loaded as a check loads it, the channel side is an *empty* table carrying the
fields the feed format shows, and the diff engine then reports every canonical SKU as
missing with the whole record the channel should get (:mod:`omnisync.diff.create`, the
records a push creates) — prices with VAT, markup, rounding and currency, sale windows,
availability from stock, title templates. Those records are checked against what the format
requires, written in the format (:mod:`.formats`) and replaced atomically (:mod:`.output`),
and the run is recorded in the state store (kind ``publish``).

Guardrails: a feed with fewer than ``publish.min_ratio`` (50%) of the items of the last
publish (or, never published, of the file now) is refused — Google deletes the items a
full feed leaves out — unless ``force``. An unchanged feed is not rewritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from omnisync.check import CheckRequest, Progress, evaluation_time, load_canonical, open_engine
from omnisync.config import Config
from omnisync.diff import ChannelComparison, DiffEngine, compared_fields
from omnisync.errors import (
    ExitCode,
    GuardrailError,
    InputError,
    OmnisyncError,
    Problem,
    UsageError,
)
from omnisync.load import Side
from omnisync.models import Field, Kind
from omnisync.publish.formats import FORMATS, Item
from omnisync.publish.output import FeedFile
from omnisync.publish.settings import PublishRules

if TYPE_CHECKING:
    from omnisync.store import Store

log = logging.getLogger(__name__)

#: Record fields each format shows (besides attributes, which templates may use).
_CONTENT = (Field.TITLE, Field.DESCRIPTION, Field.GTIN, Field.BRAND)
FORMAT_FIELDS: dict[str, tuple[Field, ...]] = {
    "google_xml": (*_CONTENT, Field.PRICE, Field.SALE_PRICE, Field.AVAILABILITY),
    "google_tsv": (*_CONTENT, Field.PRICE, Field.SALE_PRICE, Field.AVAILABILITY),
    "meta_csv": (*_CONTENT, Field.PRICE, Field.SALE_PRICE, Field.AVAILABILITY),
    # idealo shows one price, the one customers pay: `sale: effective` makes it the sale's.
    "idealo_csv": (*_CONTENT, Field.PRICE),
}
#: Value names of the csv/json columns → the record field they show.
_VALUE_FIELDS = {
    "title": Field.TITLE,
    "description": Field.DESCRIPTION,
    "brand": Field.BRAND,
    "gtin": Field.GTIN,
    "price": Field.PRICE,
    "currency": Field.PRICE,
    "sale_price": Field.SALE_PRICE,
    "sale_start": Field.SALE_PRICE,
    "sale_end": Field.SALE_PRICE,
    "availability": Field.AVAILABILITY,
    "stock": Field.STOCK,
}
#: Items named in a refusal (the rest are counted).
_SHOWN = 50


@dataclass
class FeedOutcome:
    """One feed ``publish`` wrote (or, with ``dry_run``, would write)."""

    channel: str
    format: str
    path: Path
    #: Items in the feed.
    items: int
    #: Canonical SKUs.
    canonical: int
    #: Items left out (``on_invalid: skip``), each ``SKU: what it lacks``.
    skipped: list[str] = field(default_factory=list)
    #: Whether the file was replaced (False: unchanged, or a dry run).
    changed: bool = False
    #: The items of the last publish (or of the file before), which the guard measured.
    previous: int | None = None
    #: Canonical values left out of the feed because they are blank (data quality).
    blanks: int = 0


@dataclass
class PublishOutcome:
    """What a ``publish`` run did."""

    feeds: list[FeedOutcome]
    dry_run: bool = False
    run_id: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK


def publish(
    config: Config,
    store: Store | None,
    channels: Sequence[str] | None = None,
    *,
    at: datetime | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PublishOutcome:
    """Write the feed of every published channel (or of ``channels``) from canonical; with
    ``store`` the run is recorded and the item guard measures against the last publish."""
    names = _published(config, channels)
    started = datetime.now(UTC)
    evaluated = evaluation_time(at, config.model.settings.timezone) or started
    outcome = PublishOutcome([], dry_run=dry_run)
    engine = open_engine(config)
    try:
        canonical = load_canonical(engine, config, CheckRequest(store=store, full=True), progress)
        for name in names:
            outcome.feeds.append(
                _feed(engine, config, store, name, canonical, evaluated, force, dry_run)
            )
    finally:
        engine.close()
    if store is not None and not dry_run:
        outcome.run_id = store.record_publish(
            started_at=started,
            finished_at=datetime.now(UTC),
            config_path=str(config.path),
            config_fingerprint=config.fingerprint,
            exit_code=int(outcome.exit_code),
            feeds=[
                {
                    "name": feed.channel,
                    "connector": config.channels[feed.channel].config.connector,
                    "format": feed.format,
                    "path": str(feed.path),
                    "canonical": feed.canonical,
                    "items": feed.items,
                    "skipped": len(feed.skipped),
                    "changed": feed.changed,
                }
                for feed in outcome.feeds
            ],
        )
    return outcome


def _published(config: Config, wanted: Sequence[str] | None) -> list[str]:
    published = [n for n, c in config.model.channels.items() if c.publish is not None]
    if not wanted:
        names = [n for n in published if config.model.channels[n].enabled]
        if not names:
            raise UsageError(
                f"no channel of {config.path} is published",
                hint="give a feed channel a `publish:` block (see README, Publish)",
            )
        return names
    for name in wanted:
        if name not in config.channels:
            raise UsageError(
                f"unknown channel {name!r}",
                hint=f"channels in {config.path}: {', '.join(config.channels)}",
            )
        if name not in published:
            raise UsageError(
                f"channel {name!r} has no `publish:` block",
                hint=f"published channels: {', '.join(published) or 'none'}",
            )
    return list(dict.fromkeys(wanted))


def feed_path(config: Config, name: str) -> Path:
    """The file channel ``name``'s connector reads: where its feed is published."""
    path = getattr(config.channels[name].options, "path", None)
    if not isinstance(path, str):
        raise UsageError(
            f"channel {name!r} is published, but its connector "
            f"{config.channels[name].config.connector!r} reads no file",
            where=f"channels.{name}.publish",
            hint="publish feeds through a file connector (xml, tsv, csv, json) with options.path",
        )
    target = Path(path).expanduser()
    return target if target.is_absolute() else config.base_dir / target


def _feed(
    engine: DiffEngine,
    config: Config,
    store: Store | None,
    name: str,
    canonical: Side,
    evaluated: datetime,
    force: bool,
    dry_run: bool,
) -> FeedOutcome:
    channel = config.channel_config(name)
    rules = channel.publish
    assert rules is not None
    path = feed_path(config, name)
    where = f"channels.{name}.publish"
    if channel.expect.assortment == "listed":
        raise UsageError(
            f"channel {name!r} lists a selection (expect.assortment: listed); publish writes "
            "every canonical SKU",
            where=where,
            hint="set expect.assortment: full for a published feed",
        )
    fmt = FORMATS[rules.format](rules)
    blanks = Counted()
    records = expected_records(engine, config, name, canonical, evaluated, blanks)
    outcome = FeedOutcome(name, rules.format, path, 0, canonical.count, [])
    # Streamed: each item is written as it is made; a refusal or the guard raises inside the
    # block, and the feed file is left as it was.
    with contextlib.ExitStack() as stack:
        feed: FeedFile | None = None
        handle: TextIO
        if dry_run:
            handle = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        else:
            feed = stack.enter_context(FeedFile(path, name))
            handle = feed.handle
        fmt.header(handle)
        invalid = outcome.skipped
        for record in records:
            row = fmt.row(Item(record, rules, engine.zone))
            problems = fmt.problems(row)
            if problems:
                invalid.append(f"SKU {record['sku']}: {', '.join(problems)}")
            elif not (invalid and rules.on_invalid == "refuse"):
                fmt.write(handle, row)
                outcome.items += 1
        fmt.footer(handle)
        if invalid and rules.on_invalid == "refuse":
            shown = [Problem(path.name, message) for message in invalid[:_SHOWN]]
            if len(invalid) > _SHOWN:
                shown.append(Problem("", f"... and {len(invalid) - _SHOWN} more items"))
            raise InputError(
                shown,
                where=name,
                hint=f"give canonical the missing values, set {where}.link / image_link, "
                f"or {where}.on_invalid: skip to publish the other items",
            )
        for message in invalid:
            log.warning("%s: left out of the feed: %s", name, message)
        outcome.blanks = blanks.n
        if not force:
            outcome.previous = _previous(config, store, name, path)
            _guard(outcome, rules, force, where)
    outcome.changed = feed.changed if feed is not None else False
    return outcome


@dataclass
class Counted:
    """A count a generator reports as it goes."""

    n: int = 0


#: Canonical SKUs made into feed items per step: bounds memory whatever the catalogue size.
CHUNK = 50_000


def expected_records(
    engine: DiffEngine,
    config: Config,
    name: str,
    canonical: Side,
    evaluated: datetime,
    blanks: Counted | None = None,
) -> Iterator[dict[str, object]]:
    """Every canonical SKU's expected record for channel ``name``, in SKU order, as the check
    computes it, :data:`CHUNK` SKUs at a time; ``blanks`` counts the canonical values that
    were blank (left out)."""
    channel = config.channel_config(name)
    rules = channel.publish
    assert rules is not None
    if rules.format in FORMAT_FIELDS:
        shown = set(FORMAT_FIELDS[rules.format])
    else:
        shown = {_VALUE_FIELDS[v] for _, v in rules.headers() if v in _VALUE_FIELDS}
    shown.add(Field.ATTRIBUTES)
    # What the rules can derive from canonical, whatever `expect.check` compares.
    unchecked = channel.model_copy(
        update={"expect": channel.expect.model_copy(update={"check": None})}
    )
    fields = frozenset(compared_fields(canonical.fields, frozenset(shown), unchecked))
    if Field.STOCK in shown and Field.STOCK in canonical.fields:
        fields |= {Field.STOCK}
    empty = "publish_empty"
    part = "publish_part"
    bounds = [
        row[0]
        for row in engine.con.execute(
            f"SELECT sku FROM (SELECT sku, row_number() OVER (ORDER BY sku) AS n "
            f"FROM {canonical.table}_items) WHERE n % {CHUNK} = 1 ORDER BY sku"
        ).fetchall()
    ]
    try:
        side = engine.load(empty, [], fields)
        for n, low in enumerate(bounds):
            high = bounds[n + 1] if n + 1 < len(bounds) else None
            chunk = engine.sku_range(canonical, part, low, high, first=n == 0)
            comparison = ChannelComparison(
                name, chunk, side, unchecked, config.model.canonical.prices, evaluated
            )
            findings, _ = engine.diff(comparison)
            engine.drop(part)
            if blanks is not None:
                blanks.n += sum(1 for f in findings if f.kind is Kind.DATA_QUALITY)
            made = [f.after for f in findings if f.kind is Kind.MISSING and f.after]
            del findings
            yield from made
    finally:
        engine.drop(empty)
        engine.drop(part)


def _previous(config: Config, store: Store | None, name: str, path: Path) -> int | None:
    """The items the guard measures against: the last publish's, else the file's now."""
    if store is not None:
        last = store.last_published(name)
        if last is not None:
            return last
    if not path.exists():
        return None
    try:
        with config.connector(name) as connector:
            return sum(1 for _ in connector.read())
    except OmnisyncError as exc:
        log.warning("%s: the current feed could not be read to compare its size: %s", name, exc)
        return None


def _guard(outcome: FeedOutcome, rules: PublishRules, force: bool, where: str) -> None:
    previous = outcome.previous
    if force or not previous or outcome.items >= rules.min_ratio * previous:
        return
    share = outcome.items * 100 // previous
    raise GuardrailError(
        [
            Problem(
                "",
                f"{outcome.channel}: the feed would have {outcome.items} items, {share}% of "
                f"the {previous} published before (below {rules.min_ratio * 100:.0f}%): "
                f"the items left out would be removed from the channel "
                f"(limit: {where}.min_ratio)",
            )
        ],
        hint="check the canonical export; if the smaller feed is right, rerun with --force "
        "or lower the limit",
    )
