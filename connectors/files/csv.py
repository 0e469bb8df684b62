"""CSV and TSV exports: ``connector: csv`` / ``connector: tsv``.

::

    connector: csv
    options:
      path: exports/erp.csv          # relative to the config file's folder
      delimiter: ";"                 # default "," (tsv: tab)
      encoding: cp1252               # default utf-8; a BOM is always honoured
      decimal: ","                   # ".", "," or "auto" (default)
      thousands: "."
      currency: EUR                  # for amounts without a currency of their own
      backup: true                   # before a push rewrites the file, keep it as .bak (default)
      mapping: {sku: Artikelnummer, title: Bezeichnung, price: Preis, stock: Bestand}

The file is streamed row by row; a record's origin is ``path:line`` (the header is line 1,
a quoted multi-line field belongs to the line its record starts on). Bad values are collected
and reported together after the file has been read.

``group_by: Handle`` reads exports with one row per variant grouped under a product: rows of
a group inherit a blank title, description and brand from the group's first row, and rows of
a group with no SKU and no values (Shopify's extra image rows) are skipped.

Presets (``preset: NAME``; keys in ``mapping`` override the preset's, see presets.yaml):

``shopify``
    Shopify's product export, with the legacy (``Handle``, ``Variant SKU``, ``Variant Price``,
    ``Variant Compare At Price``, ``Variant Barcode``, ``Variant Inventory Qty``) or the current
    column names (``URL handle``, ``SKU``, ``Price``, ``Compare-at price``, ``Barcode``,
    ``Inventory quantity``). Grouped by handle; a compare-at price above the price makes the
    price a sale price. Shopify writes no currency: set ``currency``.
``woocommerce``
    WooCommerce's built-in product export: ``SKU``, ``Name``, ``Description``, ``Regular price``,
    ``Sale price``, ``Date sale price starts/ends``, ``Stock``, ``GTIN, UPC, EAN, or ISBN``,
    ``Brands``, ``ID``. Variable and grouped parent rows are skipped (their variations are the
    units); ``Stock: parent`` means not known here. Set ``currency``.
``google``
    A Google Merchant Center text feed (tab-separated): ``id``, ``title``, ``description``,
    ``gtin``, ``brand``, ``price`` and ``sale_price`` (``15.00 EUR``),
    ``sale_price_effective_date`` (``start/end``), ``availability``.

Optional preset columns missing from a file are not compared rather than read as blanks.

Writing (``omnisync push``) rewrites the file once per batch, atomically, after keeping the
previous file as ``<name>.<YYYYmmddTHHMMSSffffffZ>.bak`` (``backup: false`` turns that off).
Rows a batch does not change are copied byte for byte; in a changed row only the changed cells
are rewritten, in the file's own style: encoding and BOM, delimiter, quoting (a cell that was
quoted stays quoted), line endings, decimal and thousands separators, a currency code next to
the amount (``29.99 EUR``), the column's date format, the file's availability words. Amounts get
the currency's minor-unit places (``79.90``). Dates without an offset are read and written in
``settings.timezone``. Creates are appended after the last record, deletes remove the record's row.
With ``group_by`` (Shopify) only the variant's own row is touched; a product's first row, which
its other variants inherit from, can be deleted only together with them (or alone). A SKU listed
twice is changed in every row that lists it.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, BinaryIO

import yaml
from pydantic import field_validator, model_validator

from omnisync.errors import ChangeRejected, InputError, OmnisyncError, Problem
from omnisync.models import Record
from omnisync.normalize import clean_text
from omnisync.sdk.connector import ConnectorContext, ConnectorOptions, TableTarget
from omnisync.sdk.mapping import (
    FieldMapping,
    ProblemCollector,
    RowMapper,
    missing_columns_error,
)

from .base import FileConnector, FileOptions, blank_problem, decoded_lines
from .document import Document
from .source import SourceText
from .styles import MISSING

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """A known export layout: candidate columns per mapping key, and how to read its rows."""

    name: str
    description: str
    options: Mapping[str, Any]
    group_by: tuple[str, ...]
    required: frozenset[str]
    #: key -> candidate columns, or key -> {name: candidate columns} for ids/stock/attributes.
    mapping: Mapping[str, Any]
    skip: Mapping[str, frozenset[str]]
    blank: Mapping[str, frozenset[str]]

    def default_mapping(self) -> dict[str, Any]:
        """The mapping with each key's first candidate column."""
        return {
            key: {name: columns[0] for name, columns in value.items()}
            if isinstance(value, dict)
            else value[0]
            for key, value in self.mapping.items()
        }

    def resolve(self, mapping: FieldMapping, header: list[str]) -> FieldMapping:
        """``mapping`` with the preset's columns matched to ``header``: another candidate where
        the first is absent, optional keys dropped where none is present. Keys the user mapped
        to other columns are left alone."""
        present = set(header)
        data = mapping.model_dump(exclude_none=True)
        for key, candidates in self.mapping.items():
            value = data.get(key)
            if isinstance(candidates, dict) and isinstance(value, dict):
                for name, columns in candidates.items():
                    if value.get(name) == columns[0]:
                        self._pick(value, name, columns, present, optional=True)
                if not value and key != "ids":
                    del data[key]
            elif isinstance(candidates, list) and value == candidates[0]:
                self._pick(data, key, candidates, present, optional=key not in self.required)
        return FieldMapping.model_validate(data)

    @staticmethod
    def _pick(
        data: dict[str, Any], key: str, columns: list[str], present: set[str], optional: bool
    ) -> None:
        found = next((column for column in columns if column in present), None)
        if found is not None:
            data[key] = found
        elif optional:
            del data[key]

    def group_column(self, configured: str | None, header: list[str]) -> str | None:
        if self.group_by and configured == self.group_by[0]:
            return next((c for c in self.group_by if c in header), configured)
        return configured


@cache
def presets() -> dict[str, Preset]:
    """The presets shipped in presets.yaml, by name."""
    text = files(__package__).joinpath("presets.yaml").read_text(encoding="utf-8")
    return {
        name: Preset(
            name=name,
            description=spec["description"],
            options=spec.get("options", {}),
            group_by=tuple(spec.get("group_by", ())),
            required=frozenset(spec.get("required", ("sku",))),
            mapping=spec["mapping"],
            skip={column: frozenset(values) for column, values in spec.get("skip", {}).items()},
            blank={column: frozenset(values) for column, values in spec.get("blank", {}).items()},
        )
        for name, spec in yaml.safe_load(text).items()
    }


def _known_presets() -> str:
    return ", ".join(sorted(presets()))


def apply_preset(data: Any, fields: Collection[str]) -> Any:
    """Options as written (before validation) with the named preset's under them: its option
    defaults that the connector has (``fields``; a TSV delimiter means nothing in XML), its
    grouping column and its mapping, with the user's settings and mapped keys winning.

    Merged before validation, so that mapping errors keep their dotted location and a partial
    user mapping (``{price: Preis}``) is valid on top of a preset."""
    name = data.get("preset") if isinstance(data, dict) else None
    if not isinstance(name, str) or name not in presets():
        return data  # no preset, or an unknown one that known_preset reports
    preset = presets()[name]
    merged = {**{k: v for k, v in preset.options.items() if k in fields}, **data}
    if preset.group_by and "group_by" in fields:
        merged.setdefault("group_by", preset.group_by[0])
    user = data.get("mapping")
    if user is None or isinstance(user, dict):
        merged["mapping"] = {**preset.default_mapping(), **(user or {})}
    return merged


def known_preset(value: str | None) -> str | None:
    """``value`` when it names a shipped preset (or is unset), else the error listing them."""
    if value is not None and value not in presets():
        raise ValueError(f"unknown preset {value!r}; known presets: {_known_presets()}")
    return value


def preset_named(name: str | None) -> Preset | None:
    return presets()[name] if name else None


class CsvOptions(FileOptions):
    """Options of the csv connector."""

    #: Field separator: one character; ``\\t`` or ``tab`` for tabs.
    delimiter: str = ","
    quotechar: str = '"'
    #: A known export layout (shopify, woocommerce, google) instead of a full mapping.
    preset: str | None = None
    #: Column that groups variant rows under a product (Shopify's ``Handle``).
    group_by: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        return apply_preset(data, cls.model_fields)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        return known_preset(value)

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_character(cls, value: str) -> str:
        value = {"\\t": "\t", "tab": "\t"}.get(value, value)
        if len(value) != 1:
            raise ValueError(f"must be one character, got {value!r}")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> CsvOptions:
        if self.delimiter == self.quotechar:
            raise ValueError("delimiter and quotechar must differ")
        return self


class TsvOptions(CsvOptions):
    """Options of the tsv connector: as csv, tab-separated by default."""

    delimiter: str = "\t"


class CsvConnector(FileConnector[CsvOptions]):
    """Reads a CSV export (ERP, shop, POS) through a column mapping or a preset."""

    description = "CSV file export (ERP, shop or POS); column mapping or preset"
    Options = CsvOptions

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)
        self._resolved: FieldMapping | None = None

    @property
    def preset(self) -> Preset | None:
        return preset_named(self.options.preset)

    def mapper(self) -> RowMapper:
        """The mapper; with a preset, its columns are matched to the file's header."""
        if self.preset is None:
            return super().mapper()
        if self._resolved is None:
            try:
                with self.open() as stream:
                    lines = self._lines(stream, ProblemCollector())
                    header = self._header(self._reader(lines))[0]
                self._resolved = self.preset.resolve(self.options.mapping, header)
            except (OmnisyncError, csv.Error):
                # read() reports these with context; the unresolved mapping is a fair answer.
                return super().mapper()
        return RowMapper(self._resolved, self.options, self.name)

    def read(self) -> Iterator[Record]:
        problems = ProblemCollector()
        self.notes = []
        with self.open() as stream:
            reader = self._reader(self._lines(stream, problems))
            try:
                header, header_line = self._header(reader)
            except csv.Error as exc:
                raise self._malformed(exc, reader.line_num or 1, problems) from None
            mapper, group = self._setup(header, header_line)
            yield from self._rows(reader, header, header_line, mapper, group, problems)
        problems.raise_if_any()

    def read_table(self, target: TableTarget) -> bool:
        """The columnar fast path: DuckDB parses the file and SQL normalises it
        (:mod:`.columnar` says when it declines and :meth:`read` runs instead)."""
        from .columnar import read_table

        return read_table(self, target)

    def layout(self, header: list[str], mapper: RowMapper, group: str | None) -> _Layout:
        """The row rules of a file with this header (container rows, blank values, groups)."""
        return _Layout(header, mapper, group, self.preset)

    def document(self) -> CsvDocument:
        """The file parsed for editing, every record's raw text kept."""
        return CsvDocument(self, self.load())

    def _setup(self, header: list[str], header_line: int) -> tuple[RowMapper, str | None]:
        """The mapper and group column for a file with this header (presets resolved)."""
        options = self.options
        mapping = options.mapping
        group = options.group_by
        if self.preset is not None:
            mapping = self._resolved = self.preset.resolve(mapping, header)
            group = self.preset.group_column(group, header)
        mapper = RowMapper(mapping, options, self.name)
        self._check_header(header, header_line, mapper, group)
        return mapper, group

    # -- reading ---------------------------------------------------------------------------

    def _lines(self, stream: BinaryIO, problems: ProblemCollector) -> Iterator[str]:
        return decoded_lines(stream, self.options.encoding, self.options.path, problems)

    def _reader(self, lines: Iterator[str]) -> Any:
        # strict: a stray quote is an error with a line number, not a silently merged field.
        options = self.options
        return csv.reader(
            lines, delimiter=options.delimiter, quotechar=options.quotechar, strict=True
        )

    def _header(self, reader: Any) -> tuple[list[str], int]:
        for row in reader:
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row], reader.line_num
        raise blank_problem(self.options.path)

    def _check_header(
        self, header: list[str], line: int, mapper: RowMapper, group: str | None
    ) -> None:
        where = self.origin(line)
        wanted = [*mapper.required_columns(), *([group] if group else [])]
        counts = Counter(header)
        duplicates = [name for name in dict.fromkeys(wanted) if counts[name] > 1]
        if duplicates:
            names = ", ".join(repr(name) for name in duplicates)
            raise InputError(
                [Problem(where, f"the header names {names} more than once")],
                hint="rename the duplicate columns so that the mapping is unambiguous",
            )
        missing = [name for name in dict.fromkeys(wanted) if name not in counts]
        if missing:
            raise missing_columns_error(missing, header, where=where, mapping=mapper.mapping)

    def _rows(
        self,
        reader: Any,
        header: list[str],
        header_line: int,
        mapper: RowMapper,
        group: str | None,
        problems: ProblemCollector,
    ) -> Iterator[Record]:
        layout = _Layout(header, mapper, group, self.preset)
        group_key: str | None = None
        first: dict[str, str] = {}
        skipped: Counter[str] = Counter()
        width = len(header)
        start = header_line + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise self._malformed(exc, start, problems) from None
            line, start = start, reader.line_num + 1
            if not any(value.strip() for value in values):
                continue  # blank lines and Excel's trailing ";;;;" rows carry nothing
            if len(values) != width:
                problems.add(
                    self.origin(line),
                    f"has {len(values)} fields, the header has {width} "
                    f"(check options.delimiter {self.options.delimiter!r} and quoting)",
                )
                continue
            row = dict(zip(header, values, strict=True))
            if layout.container(row):
                skipped["container"] += 1
                continue
            layout.clear_blanks(row)
            if group:
                key = layout.key(row)
                if key and key == group_key:
                    layout.inherit(row, first)
                    if layout.image_only(row):
                        skipped["image-only"] += 1
                        continue
                else:
                    group_key, first = key, layout.heritage(row)
            record = mapper.to_record(row, self.origin(line), problems, self.notes)
            if record is not None:
                yield self.localized(record)
        for reason, count in skipped.items():
            log.debug("%s: skipped %d %s rows", self.options.path, count, reason)

    def _malformed(self, exc: csv.Error, line: int, problems: ProblemCollector) -> InputError:
        problems.add(self.origin(line), f"malformed CSV: {exc}")
        return problems.error(
            hint="check options.quotechar and options.delimiter; "
            "a quote that is never closed swallows the lines after it"
        )


class _Layout:
    """A file's row rules: container rows that are not records, values that mean blank, and
    what a row of a ``group_by`` group inherits from the group's first row."""

    def __init__(
        self, header: list[str], mapper: RowMapper, group: str | None, preset: Preset | None
    ) -> None:
        mapping = mapper.mapping
        self.group = group
        self.sku = mapping.sku
        self.skip = {c: v for c, v in preset.skip.items() if c in header} if preset else {}
        self.blank = {c: v for c, v in preset.blank.items() if c in header} if preset else {}
        self.inherited = [c for c in (mapping.title, mapping.description, mapping.brand) if c]
        ids = set(mapping.ids.values())
        # An image-only row of a group has nothing of its own besides inherited content.
        self.own = [
            c
            for c in mapper.required_columns()
            if c not in self.inherited and c != group and c not in ids
        ]

    def container(self, row: Mapping[str, str]) -> bool:
        return any(row[column].strip() in values for column, values in self.skip.items())

    def clear_blanks(self, row: dict[str, str]) -> None:
        for column, values in self.blank.items():
            if row[column].strip() in values:
                row[column] = ""

    def key(self, row: Mapping[str, str]) -> str:
        return row[self.group].strip() if self.group else ""

    def heritage(self, row: Mapping[str, str]) -> dict[str, str]:
        """What the rows after this group's first row inherit from it."""
        return {column: row[column] for column in self.inherited}

    def inherit(self, row: dict[str, str], first: Mapping[str, str]) -> None:
        for column in self.inherited:
            if not row[column].strip():
                row[column] = first[column]

    def image_only(self, row: Mapping[str, str]) -> bool:
        return not row[self.sku].strip() and not any(row[c].strip() for c in self.own)


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

    def __init__(self, connector: CsvConnector, source: SourceText) -> None:
        options = connector.options
        self.connector = connector
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
        mapper, group = connector._setup(header, header_line)
        super().__init__(source, mapper, options.path)
        self.layout = _Layout(header, mapper, group, connector.preset)
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

        reader = self.connector._reader(feed())
        start = 1
        self._tail = ""
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise self.connector._malformed(exc, start, problems) from None
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
        return (self.connector.localized(record) if record else None), problems

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


class TsvConnector(CsvConnector):
    """Reads a tab-separated export; otherwise exactly the csv connector."""

    description = "Tab-separated file export; column mapping or preset"
    Options = TsvOptions
