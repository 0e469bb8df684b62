"""A CSV file in memory for a push to edit (:class:`CsvDocument`): every record's raw text,
so that rows a batch does not change are written back byte for byte, and in a changed row only
the changed cells are rewritten, quoted as they were."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from omnisync.errors import ChangeRejected, Problem
from omnisync.models import Record
from omnisync.normalize import clean_text
from omnisync.sdk.mapping import ProblemCollector

from .base import blank_problem
from .csv_dialect import CsvDialect
from .document import Document
from .source import SourceText
from .styles import MISSING


@dataclass(slots=True)
class _Row:
    """One record of the file as read (``raw``: its exact text, line ending included) and as
    edited (``cells``). New rows have no raw text and no original cells."""

    line: int
    raw: str
    cells: list[str]
    original: tuple[str, ...] | None
    deleted: bool = False


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with their endings, split at ``\\n`` only (as the reader does)."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start : end + 1]
        start = end + 1
    if start < len(text):
        yield text[start:]


def _ending(raw: str) -> str:
    if raw.endswith("\r\n"):
        return "\r\n"
    return raw[-1] if raw.endswith(("\n", "\r")) else ""


def _raw_cells(raw: str, delimiter: str, quotechar: str) -> list[str]:
    """The cells of one record exactly as written (quotes included), without its line ending."""
    body = raw[: len(raw) - len(_ending(raw))]
    cells: list[str] = []
    at, end = 0, len(body)
    while True:
        start = at
        if at < end and body[at] == quotechar:
            at += 1
            while at < end:
                if body[at] == quotechar:
                    if at + 1 < end and body[at + 1] == quotechar:
                        at += 2
                        continue
                    at += 1
                    break
                at += 1
        found = body.find(delimiter, at)
        at = found if found >= 0 else end
        cells.append(body[start:at])
        if at >= end:
            return cells
        at += 1


class _CsvCells:
    typed = False

    def __init__(self, document: CsvDocument, ref: int) -> None:
        self.document = document
        self.ref = ref
        self.row = document.rows[ref]

    def get(self, column: str) -> Any:
        index = self.document.columns.get(column)
        return MISSING if index is None else self.row.cells[index]

    def set(self, column: str, value: Any) -> None:
        index = self.document.columns[column]
        text = "" if value is None else str(value)
        source = self.document.source
        if not source.can_encode(text):
            bad = next(c for c in text if not source.can_encode(c))
            raise ChangeRejected(
                f"column {column!r} cannot hold {bad!r}: the file is {source.codec}, which has no such character"
            )
        self.row.cells[index] = text

    def inherited(self, column: str) -> Any:
        document = self.document
        if not document.layout.group or column not in document.layout.inherited:
            return None
        first = document.group_first(self.ref)
        return None if first == self.ref else document.rows[first].cells[document.columns[column]]


class CsvDocument(Document):
    """A CSV file in memory for editing: every record's raw text, and its cells."""

    def __init__(
        self, dialect: CsvDialect, source: SourceText, localized: Callable[[Record], Record]
    ) -> None:
        options = dialect.options
        self.dialect = dialect
        #: The connector's :meth:`~.base.FileConnector.localized`: naive sale dates in its zone.
        self._localized = localized
        self.delimiter = options.delimiter
        self.quotechar = options.quotechar
        problems = ProblemCollector()
        records = self._records(source.text, problems)
        preamble: list[str] = []
        header: list[str] | None = None
        self.header_raw = ""
        for line, raw, values in records:
            if any(cell.strip() for cell in values):
                header, header_line, self.header_raw = [c.strip() for c in values], line, raw
                break
            preamble.append(raw)
        if header is None:
            raise blank_problem(options.path)
        self.preamble = "".join(preamble)
        self.header = header
        self.width = len(header)
        mapper, group = dialect.setup(header, header_line)
        super().__init__(source, mapper, options.path)
        self.layout = dialect.layout(header, mapper, group)
        # As the reader's dict(zip(header, values)): a repeated name means its last column.
        self.columns = {name: index for index, name in enumerate(header)}
        self.rows = [_Row(line, raw, values, tuple(values)) for line, raw, values in records]
        self.tail = self._tail
        first_row = self.rows[0].raw if self.rows else ""
        self.newline = _ending(self.header_raw) or _ending(first_row) or "\n"
        self._index: dict[str, list[int]] = {}
        for ref, row in enumerate(self.rows):
            if self._is_record_row(row):
                sku = clean_text(row.cells[self.columns[mapper.mapping.sku]])
                if sku:
                    self._index.setdefault(sku, []).append(ref)

    def _records(
        self, text: str, problems: ProblemCollector
    ) -> Iterator[tuple[int, str, list[str]]]:
        """``(line, raw text, cells)`` per record; multi-line quoted fields stay in one record."""
        consumed: list[str] = []

        def feed() -> Iterator[str]:
            for line in _lines(text):
                consumed.append(line)
                yield line

        reader = self.dialect.reader(feed())
        start = 1
        self._tail = ""
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise self.dialect.malformed(exc, start, problems) from None
            raw = "".join(consumed)
            consumed.clear()
            yield start, raw, values
            start = reader.line_num + 1
        self._tail = "".join(consumed)

    # -- reading rows ------------------------------------------------------------------------

    def _shaped(self, row: _Row) -> bool:
        """Not deleted, not blank, as wide as the header: a row the reader looks at."""
        return (
            not row.deleted
            and len(row.cells) == self.width
            and any(cell.strip() for cell in row.cells)
        )

    def _dict(self, row: _Row) -> dict[str, str]:
        return dict(zip(self.header, row.cells, strict=True))

    def _is_record_row(self, row: _Row) -> bool:
        return self._shaped(row) and not (
            self.layout.skip and self.layout.container(self._dict(row))
        )

    def group_first(self, ref: int) -> int:
        """The first row of ``ref``'s group (the row it inherits from); ``ref`` itself when
        the file is not grouped or the row starts its group."""
        layout = self.layout
        if not layout.group:
            return ref
        key = layout.key(self._dict(self.rows[ref]))
        first = ref
        if not key:
            return ref
        for earlier in range(ref - 1, -1, -1):
            row = self.rows[earlier]
            if not self._shaped(row):
                continue
            values = self._dict(row)
            if layout.container(values):
                continue
            if layout.key(values) != key:
                break
            first = earlier
        return first

    def _group_rest(self, first: int) -> list[int]:
        """The rows after ``first`` in its group."""
        layout = self.layout
        key = layout.key(self._dict(self.rows[first]))
        rest: list[int] = []
        for later in range(first + 1, len(self.rows)):
            row = self.rows[later]
            if not self._shaped(row):
                continue
            values = self._dict(row)
            if layout.container(values):
                continue
            if not key or layout.key(values) != key:
                break
            rest.append(later)
        return rest

    def row_record(self, ref: int) -> tuple[Record | None, list[Problem]]:
        layout = self.layout
        row = self._dict(self.rows[ref])
        layout.clear_blanks(row)
        first = self.group_first(ref)
        if first != ref:
            heritage = self._dict(self.rows[first])
            layout.clear_blanks(heritage)
            layout.inherit(row, heritage)
        problems: list[Problem] = []
        # A mangled value the reader notes is no reason to refuse the row (its price can
        # still be written); the check reported it.
        record = self.mapper.to_record(row, self.where(ref), problems, [])
        return (self._localized(record) if record else None), problems

    def column_values(self, column: str) -> Iterator[str]:
        index = self.columns.get(column)
        if index is None:
            return
        for row in self.rows:
            if row.original is not None and self._is_record_row(row):
                yield row.original[index]

    # -- editing -----------------------------------------------------------------------------

    def refs(self, sku: str) -> list[int]:
        return list(self._index.get(sku, ()))

    def cells(self, ref: int) -> _CsvCells:
        return _CsvCells(self, ref)

    def append(self, sku: str) -> int:
        cells = [""] * self.width
        cells[self.columns[self.mapper.mapping.sku]] = sku
        if self.layout.group:
            # A new product's handle; the record's own ids overwrite it when it has one.
            cells[self.columns[self.layout.group]] = re.sub(r"[^a-z0-9]+", "-", sku.lower()).strip(
                "-"
            )
        self.rows.append(_Row(0, "", cells, None))
        ref = len(self.rows) - 1
        self._index[sku] = [ref]
        return ref

    def discard(self, ref: int) -> None:
        row = self.rows[ref]
        assert row.original is None
        assert ref == len(self.rows) - 1
        self.rows.pop()
        self._forget(ref, row)

    def _forget(self, ref: int, row: _Row) -> None:
        sku = clean_text(row.cells[self.columns[self.mapper.mapping.sku]]) or ""
        refs = [r for r in self._index.get(sku, []) if r != ref]
        if refs:
            self._index[sku] = refs
        else:
            self._index.pop(sku, None)

    def delete(self, ref: int) -> None:
        row = self.rows[ref]
        doomed = [ref]
        if self.layout.group and self.group_first(ref) == ref:
            rest = self._group_rest(ref)
            sku_column = self.columns[self.mapper.mapping.sku]
            variants = [self.rows[r].cells[sku_column].strip() for r in rest]
            if any(variants):
                key = self.layout.key(self._dict(row))
                others = ", ".join(v for v in variants if v)
                raise ChangeRejected(
                    f"{self.where(ref)} is the first row of product {key!r}, which its other "
                    f"variants ({others}) take the product's title and description from; delete "
                    "them in the same push, or delete the variant in the shop"
                )
            doomed.extend(rest)  # the product's image-only rows go with it
        for doomed_ref in doomed:
            self.rows[doomed_ref].deleted = True
        self._forget(ref, row)

    def snapshot(self, ref: int) -> list[str]:
        return list(self.rows[ref].cells)

    def restore(self, ref: int, snapshot: Any) -> None:
        self.rows[ref].cells = list(snapshot)

    def where(self, ref: int) -> str:
        line = self.rows[ref].line
        return f"{self.label}:{line}" if line else f"{self.label}:new row"

    def payload(self, ref: int) -> dict[str, str]:
        return self._dict(self.rows[ref])

    # -- writing -----------------------------------------------------------------------------

    def render(self) -> str:
        rows = self.rows
        # New rows go after the last record, before trailing blank lines.
        last = max(
            (
                i
                for i, row in enumerate(rows)
                if row.original is not None and any(c.strip() for c in row.cells)
            ),
            default=-1,
        )
        fresh = [row for row in rows if row.original is None and not row.deleted]
        pieces = [self.preamble, self.header_raw]
        for index, row in enumerate(rows):
            if row.original is not None and not row.deleted:
                pieces.append(self._text(row))
            if index == last or (last < 0 and index == -1):
                pieces.extend(self._new_text(new) for new in fresh)
                fresh = []
        pieces.extend(self._new_text(new) for new in fresh)
        pieces.append(self.tail)
        out: list[str] = []
        for piece in pieces:
            if piece and out and not out[-1].endswith(("\n", "\r")):
                out[-1] += self.newline  # the file's last line had no line ending
            if piece:
                out.append(piece)
        return "".join(out)

    def _text(self, row: _Row) -> str:
        assert row.original is not None
        if tuple(row.cells) == row.original:
            return row.raw
        written = _raw_cells(row.raw, self.delimiter, self.quotechar)
        if len(written) != len(row.cells):  # cannot happen for a file the reader accepts
            written = [self._quote(c, False) for c in row.original]
        cells = [
            raw if value == before else self._quote(value, raw.startswith(self.quotechar))
            for value, before, raw in zip(row.cells, row.original, written, strict=True)
        ]
        return self.delimiter.join(cells) + _ending(row.raw)

    def _new_text(self, row: _Row) -> str:
        quoted = self._new_quoting()
        return (
            self.delimiter.join(
                self._quote(value, quoted[i] if i < len(quoted) else False)
                for i, value in enumerate(row.cells)
            )
            + self.newline
        )

    def _new_quoting(self) -> list[bool]:
        """Which columns new rows quote: as the last record does (or the header)."""
        template = next(
            (
                row.raw
                for row in reversed(self.rows)
                if row.original is not None and self._shaped(row)
            ),
            self.header_raw,
        )
        cells = _raw_cells(template, self.delimiter, self.quotechar)
        return [cell.startswith(self.quotechar) for cell in cells]

    def _quote(self, value: str, force: bool) -> str:
        quote = self.quotechar
        needed = (
            force
            or any(c in value for c in (self.delimiter, quote, "\n", "\r"))
            or (not value and self.width == 1)
        )
        return quote + value.replace(quote, quote * 2) + quote if needed else value
