"""How the csv and tsv connectors read a file: the options that describe it (delimiter,
quoting, preset, grouping), Python's csv module in strict mode over the decoded lines, the
header (the first record with a value in it) and the mapping resolved against it, and the row
rules of the file's layout (container rows, values that mean blank, what the rows of a group
inherit from its first row).

The row path (:mod:`.csv`), the document a push edits (:mod:`.csv_document`) and the columnar
fast path (:mod:`.columnar`) all read through the connector's one :class:`CsvDialect`, so that
they agree on every record.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from pydantic import ConfigDict, field_validator, model_validator

from omnisync.errors import InputError, Problem
from omnisync.sdk.mapping import FieldMapping, ProblemCollector, RowMapper, missing_columns_error

from .base import FileOptions, blank_problem, decoded_lines
from .presets import Preset, apply_preset, known_preset, preset_json_schema, preset_named


class CsvOptions(FileOptions):
    """Options of the csv connector."""

    model_config = ConfigDict(json_schema_extra=preset_json_schema)

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


class CsvDialect:
    """One connector's way of reading its CSV file. Remembers the mapping its preset resolved
    to once a header was read (:attr:`resolved`)."""

    def __init__(self, options: CsvOptions, source: str) -> None:
        self.options = options
        #: The connector's name, for the row mapper's messages.
        self.source = source
        self.preset = preset_named(options.preset)
        #: The mapping with the preset's columns matched to the file's header, once read.
        self.resolved: FieldMapping | None = None

    def origin(self, line: int | str) -> str:
        """``path:line``, as :meth:`FileConnector.origin <.base.FileConnector.origin>`."""
        return f"{self.options.path}:{line}"

    def lines(self, stream: BinaryIO, problems: ProblemCollector) -> Iterator[str]:
        return decoded_lines(stream, self.options.encoding, self.options.path, problems)

    def reader(self, lines: Iterator[str]) -> Any:
        # strict: a stray quote is an error with a line number, not a silently merged field.
        options = self.options
        return csv.reader(
            lines, delimiter=options.delimiter, quotechar=options.quotechar, strict=True
        )

    def header(self, reader: Any) -> tuple[list[str], int]:
        """The first record with a value in it, stripped, and the line it ends on."""
        for row in reader:
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row], reader.line_num
        raise blank_problem(self.options.path)

    def setup(self, header: list[str], header_line: int) -> tuple[RowMapper, str | None]:
        """The mapper and group column for a file with this header (presets resolved)."""
        options = self.options
        mapping = options.mapping
        group = options.group_by
        if self.preset is not None:
            mapping = self.resolved = self.preset.resolve(mapping, header)
            group = self.preset.group_column(group, header)
        mapper = RowMapper(mapping, options, self.source)
        self._check_header(header, header_line, mapper, group)
        return mapper, group

    def layout(self, header: list[str], mapper: RowMapper, group: str | None) -> CsvLayout:
        """The row rules of a file with this header (container rows, blank values, groups)."""
        return CsvLayout(header, mapper, group, self.preset)

    def malformed(self, exc: csv.Error, line: int, problems: ProblemCollector) -> InputError:
        """The error for a record the csv module refuses, after the problems so far."""
        problems.add(self.origin(line), f"malformed CSV: {exc}")
        return problems.error(
            hint="check options.quotechar and options.delimiter; "
            "a quote that is never closed swallows the lines after it"
        )

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


class CsvLayout:
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
