"""The write side the file connectors share: apply changes to a parsed file, keep its style,
replace it atomically.

The parts, from the inside out:

* :mod:`.styles` — how a single value is spelled (amounts, dates, availability words, GTINs).
* :class:`~.row_writer.RowWriter` — what a change means for a row's cells: which columns a
  field maps to, the Shopify compare-at pair, a sale's dates, a stock location's column.
* :class:`Editor` (here) — applies a batch to a :class:`~.document.Document` (the CSV or JSON
  file in memory), checks that every changed row reads back with the new value (and undoes the
  row's edit when not), and answers one :class:`~omnisync.models.WriteResult` per change.
* :func:`~.replace.replace_file` — then writes the document: a backup, a temporary file in the
  same folder, flush, fsync, ``os.replace``. The original is untouched unless the rename
  happened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from omnisync.errors import ChangeRejected
from omnisync.models import Change, Field, Op, WriteResult
from omnisync.sdk.mapping import DEFAULT_LOCATION, ParseOptions
from omnisync.sdk.values import field_value, json_to_record, same

from .document import Document
from .row_writer import RowWriter


@dataclass
class _Outcome:
    change: Change
    ok: bool = True
    error: str | None = None
    refs: list[int] = field(default_factory=list)


class Editor:
    """Applies changes to a :class:`Document`, one result per change."""

    def __init__(self, document: Document, parse: ParseOptions, zone: tzinfo | None) -> None:
        self.document = document
        self.zone = zone
        self.writer = RowWriter(document.mapper.mapping, parse, zone, document)
        self._outcomes: list[_Outcome] = []

    def apply(self, changes: Sequence[Change]) -> list[WriteResult]:
        outcomes = [_Outcome(change) for change in changes]
        for index in _order(changes):
            self._attempt(outcomes[index])
        # A product's first row can go once its other variants have gone (Shopify groups):
        # deletes refused for that reason get a second chance after the rest of the batch.
        for outcome in outcomes:
            if not outcome.ok and outcome.change.op is Op.DELETE:
                self._attempt(outcome)
        self._outcomes = outcomes
        return [WriteResult(o.change.key, o.ok, o.error) for o in outcomes]

    def _attempt(self, outcome: _Outcome) -> None:
        try:
            outcome.refs = self._apply(outcome.change)
        except ChangeRejected as exc:
            outcome.ok, outcome.error = False, str(exc)
        else:
            outcome.ok, outcome.error = True, None

    def rows(self) -> list[dict[str, Any]]:
        """Per row the changes touched, its payload as the file would hold it."""
        document = self.document
        return [
            {
                "op": touched.op.value,
                "sku": touched.sku,
                "where": document.where(ref),
                "changes": list(touched.keys),
                "row": document.payload(ref),
            }
            for ref, touched in document.touched.items()
        ]

    def _apply(self, change: Change) -> list[int]:
        document = self.document
        if change.op is Op.CREATE:
            return [self._create(change)]
        refs = document.refs(change.sku)
        if not refs:
            raise ChangeRejected(
                f"SKU {change.sku} not found in {document.label} "
                "(it may have been removed since the plan was made)"
            )
        if change.op is Op.DELETE:
            for ref in refs:
                document.delete(ref)
                document.touch(ref, change)
            return refs
        if not change.field:
            raise ChangeRejected("an update names no field")
        try:
            field = Field(change.field)
        except ValueError:
            raise ChangeRejected(f"unknown field {change.field!r}") from None
        writer = self.writer
        writer.column(field, change.location)  # unmapped field or location: fail before anything
        wanted = writer.comparable(field, change.after)
        for ref in refs:
            record, _ = document.row_record(ref)
            if record is not None and same(
                field, writer.comparable(field, field_value(record, field, change.location)), wanted
            ):
                continue  # already so: leave the row as written
            snapshot = document.snapshot(ref)
            try:
                writer.update(document.cells(ref), record, field, change.location, change.after)
                self._verify(ref, field, change.location, change.after)
            except ChangeRejected:
                document.restore(ref, snapshot)
                raise
            document.touch(ref, change)
        return refs

    def _create(self, change: Change) -> int:
        document = self.document
        existing = document.refs(change.sku)
        if existing:
            raise ChangeRejected(
                f"SKU {change.sku} already exists in {document.where(existing[0])}"
            )
        if not isinstance(change.after, dict):
            raise ChangeRejected("a create needs the whole record in `after`")
        try:
            record = json_to_record({**change.after, "sku": change.sku})
        except (KeyError, TypeError, ValueError) as exc:
            raise ChangeRejected(f"the record to create is malformed ({exc})") from None
        ref = document.append(change.sku)
        try:
            self.writer.create(document.cells(ref), record)
            document.created(ref)
            for field in document.mapper.fields():
                if field is Field.STOCK and record.stock:
                    for location in record.stock:
                        at = None if location == DEFAULT_LOCATION else location
                        self._verify(ref, field, at, record.stock[location])
                elif (value := field_value(record, field)) is not None:
                    self._verify(ref, field, None, value)
        except ChangeRejected:
            document.discard(ref)
            raise
        document.touch(ref, change)
        return ref

    def _verify(self, ref: int, field: Field, location: str | None, wanted: Any) -> None:
        """The row reads back with ``wanted``, or :class:`ChangeRejected` says why not."""
        record, problems = self.document.row_record(ref)
        if record is None:
            reason = problems[0].message if problems else "it cannot be read"
            raise ChangeRejected(f"the row would not read back: {reason}")
        got = field_value(record, field, location)
        writer = self.writer
        if not same(field, writer.comparable(field, got), writer.comparable(field, wanted)):
            column = writer.column(field, location)
            raise ChangeRejected(
                f"column {column!r} cannot hold {_show(wanted)}: it would read back as {_show(got)}"
            )


def _order(changes: Sequence[Change]) -> list[int]:
    """Application order: a record's sale price after its regular price, whatever the plan's
    order, so that the Shopify compare-at pair is always built from the new regular price."""
    priced = {c.sku for c in changes if c.op is Op.UPDATE and c.field == Field.PRICE}
    late = [
        i
        for i, c in enumerate(changes)
        if c.op is Op.UPDATE and c.field == Field.SALE_PRICE and c.sku in priced
    ]
    later = set(late)
    return [i for i in range(len(changes)) if i not in later] + late


def _show(value: Any) -> str:
    if isinstance(value, dict) and "amount" in value:
        text = f"{value['amount']} {value.get('currency', '')}".strip()
        if value.get("start") or value.get("end"):
            text += f" ({value.get('start') or '…'} to {value.get('end') or '…'})"
        return text
    return "nothing" if value is None else json.dumps(value, ensure_ascii=False, default=str)
