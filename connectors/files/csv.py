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
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, BinaryIO, cast

import yaml
from pydantic import field_validator, model_validator

from omnisync.connector import ConnectorContext, ConnectorOptions
from omnisync.errors import InputError, OmnisyncError, Problem
from omnisync.mapping import (
    FieldMapping,
    ProblemCollector,
    RowMapper,
    missing_columns_error,
)
from omnisync.models import Record

from .base import FileConnector, FileOptions, blank_problem, decoded_lines

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
        # Merge before validation, so that mapping errors keep their dotted location and a
        # partial user mapping ({price: Preis}) is valid on top of a preset.
        name = data.get("preset") if isinstance(data, dict) else None
        if not isinstance(name, str) or name not in presets():
            return data  # no preset, or an unknown one that the field validator reports
        preset = presets()[name]
        merged = {**preset.options, **data}
        if preset.group_by:
            merged.setdefault("group_by", preset.group_by[0])
        user = data.get("mapping")
        if user is None or isinstance(user, dict):
            merged["mapping"] = {**preset.default_mapping(), **(user or {})}
        return merged

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in presets():
            raise ValueError(f"unknown preset {value!r}; known presets: {_known_presets()}")
        return value

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


class CsvConnector(FileConnector):
    """Reads a CSV export (ERP, shop, POS) through a column mapping or a preset."""

    description = "CSV file export (ERP, shop or POS); column mapping or preset"
    Options = CsvOptions

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)
        self.csv_options = cast(CsvOptions, options)  # checked by FileConnector
        self._resolved: FieldMapping | None = None

    @property
    def preset(self) -> Preset | None:
        name = self.csv_options.preset
        return presets()[name] if name else None

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
        options = self.csv_options
        problems = ProblemCollector()
        with self.open() as stream:
            reader = self._reader(self._lines(stream, problems))
            try:
                header, header_line = self._header(reader)
            except csv.Error as exc:
                raise self._malformed(exc, reader.line_num or 1, problems) from None
            mapping = options.mapping
            group = options.group_by
            if self.preset is not None:
                mapping = self._resolved = self.preset.resolve(mapping, header)
                group = self.preset.group_column(group, header)
            mapper = RowMapper(mapping, options, self.name)
            self._check_header(header, header_line, mapper, group)
            yield from self._rows(reader, header, header_line, mapper, group, problems)
        problems.raise_if_any()

    # -- reading ---------------------------------------------------------------------------

    def _lines(self, stream: BinaryIO, problems: ProblemCollector) -> Iterator[str]:
        return decoded_lines(stream, self.options.encoding, self.options.path, problems)

    def _reader(self, lines: Iterator[str]) -> Any:
        # strict: a stray quote is an error with a line number, not a silently merged field.
        options = self.csv_options
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
        mapping = mapper.mapping
        preset = self.preset
        skip = {c: v for c, v in preset.skip.items() if c in header} if preset else {}
        blank = {c: v for c, v in preset.blank.items() if c in header} if preset else {}
        inherited = [c for c in (mapping.title, mapping.description, mapping.brand) if c]
        ids = set(mapping.ids.values())
        # An image-only row of a group has nothing of its own besides inherited content.
        own = [
            c
            for c in mapper.required_columns()
            if c not in inherited and c != group and c not in ids
        ]
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
                    f"(check options.delimiter {self.csv_options.delimiter!r} and quoting)",
                )
                continue
            row = dict(zip(header, values, strict=True))
            if any(row[column].strip() in values_ for column, values_ in skip.items()):
                skipped["container"] += 1
                continue
            for column, values_ in blank.items():
                if row[column].strip() in values_:
                    row[column] = ""
            if group:
                key = row[group].strip()
                if key and key == group_key:
                    for column in inherited:
                        if not row[column].strip():
                            row[column] = first[column]
                    if not row[mapping.sku].strip() and not any(row[c].strip() for c in own):
                        skipped["image-only"] += 1
                        continue
                else:
                    group_key, first = key, {column: row[column] for column in inherited}
            record = mapper.to_record(row, self.origin(line), problems)
            if record is not None:
                yield record
        for reason, count in skipped.items():
            log.debug("%s: skipped %d %s rows", self.options.path, count, reason)

    def _malformed(self, exc: csv.Error, line: int, problems: ProblemCollector) -> InputError:
        problems.add(self.origin(line), f"malformed CSV: {exc}")
        return problems.error(
            hint="check options.quotechar and options.delimiter; "
            "a quote that is never closed swallows the lines after it"
        )


class TsvConnector(CsvConnector):
    """Reads a tab-separated export; otherwise exactly the csv connector."""

    description = "Tab-separated file export; column mapping or preset"
    Options = TsvOptions
