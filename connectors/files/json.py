"""JSON and JSON Lines exports: ``connector: json`` / ``connector: jsonl``.

::

    connector: json
    options:
      path: exports/feed.json
      records: data.products         # dotted path to the list; default: the document is the list
      currency: EUR
      mapping: {sku: id, title: name, price: offer.price, stock: {berlin: stock.berlin}}

Mapped columns are keys or dotted paths into nested objects. Numbers are read as exact
decimals, never floats. A JSON document is parsed as a whole (origins are
``path:records[i]``); JSON Lines is streamed, one object per line (origins ``path:line``,
blank lines skipped). A mapped key that no record has is reported as a missing column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

from omnisync.connector import ConnectorContext, ConnectorOptions
from omnisync.errors import InputError, Problem
from omnisync.mapping import ProblemCollector, RowMapper, missing_columns_error
from omnisync.models import Record

from .base import FileConnector, FileOptions, blank_problem, decoded_lines, kind_of, read_text


def _loads(text: str) -> Any:
    # NaN/Infinity become non-finite Decimals, which the value parsers reject with a location.
    return json.loads(text, parse_float=Decimal, parse_constant=Decimal)


class JsonLinesOptions(FileOptions):
    """Options of the jsonl connector."""


class JsonOptions(FileOptions):
    """Options of the json connector."""

    #: Dotted path to the list of records inside the document (``data.products``); unset:
    #: the document itself is the list.
    records: str | None = None


class _JsonBase(FileConnector):
    def _record(
        self, item: Any, origin: str, mapper: RowMapper, problems: ProblemCollector
    ) -> Record | None:
        if not isinstance(item, dict):
            problems.add(origin, f"is {kind_of(item)}, not an object (a record)")
            return None
        return mapper.to_record(item, origin, problems)

    def _finish(self, mapper: RowMapper, keys: set[str], count: int) -> None:
        """After the last record: a mapped key that no record had is a typo, not a blank."""
        unseen = mapper.unseen_columns()
        if count and unseen:
            raise missing_columns_error(
                unseen, sorted(keys), where=self.options.path, mapping=mapper.mapping
            )


class JsonConnector(_JsonBase):
    """Reads a JSON document holding a list of records."""

    description = "JSON document export (a list of records, optionally nested)"
    Options = JsonOptions

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)
        self.json_options = cast(JsonOptions, options)  # checked by FileConnector

    def read(self) -> Iterator[Record]:
        path = self.options.path
        with self.open() as stream:
            text = read_text(stream, self.options.encoding, path)
        if not text.strip():
            raise blank_problem(path)
        try:
            document = _loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                [Problem(f"{path}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}")]
            ) from None
        del text
        items, label = self._records(document)
        mapper = self.mapper()
        problems = ProblemCollector()
        keys: set[str] = set()
        for index, item in enumerate(items):
            if isinstance(item, dict) and len(keys) < 1000:
                keys.update(item)
            record = self._record(item, f"{path}:{label}[{index}]", mapper, problems)
            if record is not None:
                yield record
        problems.raise_if_any()
        self._finish(mapper, keys, len(items))

    def _records(self, document: Any) -> tuple[list[Any], str]:
        """The list of records and its label for origins (``data.products``)."""
        where = self.options.path
        target = self.json_options.records
        value = document
        if target:
            walked: list[str] = []
            for part in target.split("."):
                if not isinstance(value, dict) or part not in value:
                    at = ".".join(walked) or "the document"
                    choices = ", ".join(repr(k) for k in value) if isinstance(value, dict) else ""
                    message = f"options.records: {at} has no key {part!r}"
                    raise InputError(
                        [Problem(where, message + (f" (keys: {choices})" if choices else ""))]
                    )
                value = value[part]
                walked.append(part)
        if isinstance(value, list):
            return value, target or ""
        what = f"{target!r} is" if target else "the document is"
        hint = "set options.records to the dotted path of the list of records"
        if isinstance(value, dict):
            lists = [key for key, inner in value.items() if isinstance(inner, list)]
            if lists:
                prefix = f"{target}." if target else ""
                hint += " (lists here: " + ", ".join(prefix + key for key in lists) + ")"
        raise InputError([Problem(where, f"{what} {kind_of(value)}, not a list")], hint=hint)


class JsonLinesConnector(_JsonBase):
    """Reads JSON Lines: one record object per line."""

    description = "JSON Lines export (one record object per line)"
    Options = JsonLinesOptions

    def read(self) -> Iterator[Record]:
        path = self.options.path
        mapper = self.mapper()
        problems = ProblemCollector()
        keys: set[str] = set()
        count = 0
        with self.open() as stream:
            for number, line in enumerate(
                decoded_lines(stream, self.options.encoding, path, problems), start=1
            ):
                if not line.strip():
                    continue
                count += 1
                try:
                    item = _loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    problems.add(f"{path}:{number}:{exc.colno}", f"invalid JSON: {exc.msg}")
                    continue
                if isinstance(item, dict) and len(keys) < 1000:
                    keys.update(item)
                record = self._record(item, self.origin(number), mapper, problems)
                if record is not None:
                    yield record
        if not count:
            raise blank_problem(path)
        problems.raise_if_any()
        self._finish(mapper, keys, count)
