"""JSON and JSON Lines exports: ``connector: json`` / ``connector: jsonl``.

::

    connector: json
    options:
      path: exports/feed.json
      records: data.products         # dotted path to the list; default: the document is the list
      currency: EUR
      backup: true                   # before a push rewrites the file, keep it as .bak (default)
      mapping: {sku: id, title: name, price: offer.price, stock: {berlin: stock.berlin}}

Mapped columns are keys or dotted paths into nested objects. Numbers are read as exact
decimals, never floats. A JSON document is parsed as a whole (origins are
``path:records[i]``); JSON Lines is streamed, one object per line (origins ``path:line``,
blank lines skipped). A mapped key that no record has is reported as a missing column.

Writing (``omnisync push``) rewrites the file once per batch, atomically, after keeping the
previous file as ``<name>.<YYYYmmddTHHMMSSffffffZ>.bak`` (``backup: false`` turns that off).
The document is not re-serialised: each change replaces only the value at the mapping's path
inside the record's own text, so key order, spacing, indentation and every record (and line,
in JSON Lines) a batch does not change stay byte for byte. Numbers are written exactly
(``79.90``, never through a float); an amount that was a number stays a number, one that was a
string stays a string. A key the record lacks is added after its last key; clearing a value
removes the key, or writes ``null`` where the file writes nulls. Creates are appended to the
list (one line in JSON Lines) in the style of the last record; deletes remove the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from omnisync.errors import ChangeRejected, InputError, Problem
from omnisync.models import Record
from omnisync.normalize import clean_text
from omnisync.sdk.connector import ConnectorContext, ConnectorOptions
from omnisync.sdk.mapping import ProblemCollector, RowMapper, missing_columns_error

from .base import (
    FileConnector,
    FileOptions,
    FileOptionsT,
    blank_problem,
    decoded_lines,
    kind_of,
    read_text,
)
from .document import Document
from .source import SourceText
from .styles import MISSING


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


class _JsonBase(FileConnector[FileOptionsT]):
    def _record(
        self, item: Any, origin: str, mapper: RowMapper, problems: ProblemCollector
    ) -> Record | None:
        if not isinstance(item, dict):
            problems.add(origin, f"is {kind_of(item)}, not an object (a record)")
            return None
        record = mapper.to_record(item, origin, problems, self.notes)
        return self.localized(record) if record else None

    def _finish(self, mapper: RowMapper, keys: set[str], count: int) -> None:
        """After the last record: a mapped key that no record had is a typo, not a blank."""
        unseen = mapper.unseen_columns()
        if count and unseen:
            raise missing_columns_error(
                unseen, sorted(keys), where=self.options.path, mapping=mapper.mapping
            )


class JsonConnector(_JsonBase[JsonOptions]):
    """Reads a JSON document holding a list of records."""

    description = "JSON document export (a list of records, optionally nested)"
    Options = JsonOptions

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)

    def read(self) -> Iterator[Record]:
        self.notes = []
        path = self.options.path
        with self.open() as stream:
            text = read_text(stream, self.options.encoding, path)
        document = self._parse(text)
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

    def _parse(self, text: str) -> Any:
        path = self.options.path
        if not text.strip():
            raise blank_problem(path)
        try:
            return _loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                [Problem(f"{path}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}")]
            ) from None

    def document(self) -> JsonDocument:
        """The file parsed for editing, every record's text kept."""
        return JsonDocument(self, self.load())

    def _records(self, document: Any) -> tuple[list[Any], str]:
        """The list of records and its label for origins (``data.products``)."""
        where = self.options.path
        target = self.options.records
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


class JsonLinesConnector(_JsonBase[JsonLinesOptions]):
    """Reads JSON Lines: one record object per line."""

    description = "JSON Lines export (one record object per line)"
    Options = JsonLinesOptions

    def read(self) -> Iterator[Record]:
        self.notes = []
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

    def document(self) -> JsonLinesDocument:
        """The file parsed for editing, line by line."""
        return JsonLinesDocument(self, self.load())


# ------------------------------------------------------------------------------ writing
#
# A JSON file is edited as text: the spans of records and of values inside them are found
# with the json module's own decoder (raw_decode skips a value at C speed), and a change
# replaces one value's span. Nothing else of the document is re-serialised.

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
_SCAN_STRING: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

#: Remove the key (see :meth:`_JsonCells.set`).
_REMOVE: Any = object()


def _skip(text: str, at: int) -> int:
    match = _WS.match(text, at)
    return match.end() if match else at


@dataclass(slots=True)
class _Member:
    key: str
    key_start: int
    key_end: int
    value_start: int
    value_end: int


def _members(text: str, start: int) -> tuple[list[_Member], int]:
    """The members of the object at ``text[start]`` (``{``) and the position of its ``}``."""
    at = _skip(text, start + 1)
    members: list[_Member] = []
    if text[at] == "}":
        return members, at
    while True:
        key, key_end = _SCAN_STRING(text, at + 1)
        value_start = _skip(text, _skip(text, key_end) + 1)  # past the ":"
        _, value_end = _DECODER.raw_decode(text, value_start)
        members.append(_Member(key, at, key_end, value_start, value_end))
        at = _skip(text, value_end)
        if text[at] != ",":
            return members, at
        at = _skip(text, at + 1)


def _elements(text: str, start: int) -> tuple[list[tuple[int, int]], int]:
    """The spans of the list's items at ``text[start]`` (``[``) and the position of its ``]``."""
    at = _skip(text, start + 1)
    spans: list[tuple[int, int]] = []
    if text[at] == "]":
        return spans, at
    while True:
        _, end = _DECODER.raw_decode(text, at)
        spans.append((at, end))
        at = _skip(text, end)
        if text[at] != ",":
            return spans, at
        at = _skip(text, at + 1)


@dataclass(frozen=True)
class _Style:
    """How a record writes JSON: separators, and for multi-line records the indentation."""

    item_sep: str = ", "
    key_sep: str = ": "
    #: One level of indentation, or None for one line.
    indent: str | None = None
    #: Indentation of the record's closing brace.
    level: str = ""
    newline: str = "\n"

    @classmethod
    def of(cls, raw: str, newline: str, unit: str) -> _Style:
        """The style of the record ``raw`` (an object's text)."""
        members, close = _members(raw, 0) if raw.startswith("{") else ([], 0)
        key_sep = raw[members[0].key_end : members[0].value_start] if members else ": "
        if "\n" not in raw:
            item_sep = (
                raw[members[0].value_end : members[1].key_start] if len(members) > 1 else ", "
            )
            return cls(item_sep, key_sep)
        inner = raw[1 : members[0].key_start] if members else ""
        member_indent = inner.rsplit("\n", 1)[-1]
        level = raw[:close].rsplit("\n", 1)[-1] if close else ""
        if member_indent.startswith(level) and len(member_indent) > len(level):
            unit = member_indent[len(level) :]
        return cls(",", key_sep, unit, level, newline)


def _dumps(
    value: Any, style: _Style, can_encode: Callable[[str], bool], level: str | None = None
) -> str:
    """JSON text of ``value``: numbers exactly as their Decimal, non-ASCII kept when the file's
    encoding can hold it."""
    level = style.level if level is None else level
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ChangeRejected(f"{value} is not a JSON number")
        return str(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if can_encode(text) else json.dumps(value)
    if isinstance(value, dict | list):
        pairs = (
            [(_dumps(str(k), style, can_encode) + style.key_sep, v) for k, v in value.items()]
            if isinstance(value, dict)
            else [("", v) for v in value]
        )
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if not pairs:
            return opening + closing
        if style.indent is None:
            return (
                opening
                + style.item_sep.join(k + _dumps(v, style, can_encode) for k, v in pairs)
                + closing
            )
        inner = level + style.indent
        separator = "," + style.newline + inner
        body = separator.join(k + _dumps(v, style, can_encode, inner) for k, v in pairs)
        return opening + style.newline + inner + body + style.newline + level + closing
    raise ChangeRejected(f"cannot write {type(value).__name__} as JSON")


def _set(
    text: str,
    start: int,
    parts: Sequence[str],
    value: Any,
    style: _Style,
    can_encode: Callable[[str], bool],
) -> str:
    """``text`` with the value at the path ``parts`` inside the object at ``start`` set to
    ``value`` (:data:`_REMOVE` removes the key); only that value's text changes."""
    members, close = _members(text, start)
    found = [m for m in members if m.key == parts[0]]
    if not found:
        if value is _REMOVE:
            return text
        for part in reversed(parts[1:]):
            value = {part: value}
        return _insert(text, start, members, close, parts[0], _dumps(value, style, can_encode))
    member = found[-1]  # as json.loads: the last of repeated keys wins
    if len(parts) > 1:
        if text.startswith("null", member.value_start) and value is not _REMOVE:
            for part in reversed(parts[1:]):
                value = {part: value}
            nested = _dumps(value, style, can_encode)
            return text[: member.value_start] + nested + text[member.value_end :]
        if text[member.value_start] != "{":
            raise ChangeRejected(
                f"{parts[0]!r} is not an object, so {'.'.join(parts)!r} cannot be set"
            )
        return _set(text, member.value_start, parts[1:], value, style, can_encode)
    if value is _REMOVE:
        index = members.index(member)
        if len(members) == 1:
            return text[: start + 1] + text[close:]
        if index:
            return text[: members[index - 1].value_end] + text[member.value_end :]
        return text[: member.key_start] + text[members[1].key_start :]
    return text[: member.value_start] + _dumps(value, style, can_encode) + text[member.value_end :]


def _insert(text: str, start: int, members: list[_Member], close: int, key: str, value: str) -> str:
    """``text`` with ``"key": value`` added as the object's last member, spaced like the others."""
    name = json.dumps(key, ensure_ascii=False)
    if not members:
        return text[: start + 1] + name + ": " + value + text[close:]
    last = members[-1]
    if len(members) > 1:
        separator = text[members[-2].value_end : last.key_start]
    else:
        lead = text[start + 1 : last.key_start]
        separator = "," + (lead if "\n" in lead else " ")
    colon = text[last.key_end : last.value_start]
    return text[: last.value_end] + separator + name + colon + value + text[last.value_end :]


def _lookup(item: Any, column: str) -> Any:
    """As the reader looks a column up: an exact key first, then a dotted path."""
    if not isinstance(item, dict):
        return MISSING
    if column in item:
        return item[column]
    value: Any = item
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _ordered(value: Any, template: Any) -> Any:
    """``value`` with its keys in the order ``template`` has them (new keys last)."""
    if not isinstance(value, dict):
        return value
    model = template if isinstance(template, dict) else {}
    keys = [k for k in model if k in value] + [k for k in value if k not in model]
    return {k: _ordered(value[k], model.get(k)) for k in keys}


def _skeleton(columns: Sequence[str]) -> dict[str, Any]:
    """Nested keys in the mapping's order: how a record is laid out when none exists yet."""
    skeleton: dict[str, Any] = {}
    for column in columns:
        level = skeleton
        for part in column.split("."):
            level = level.setdefault(part, {})
    return skeleton


@dataclass(slots=True)
class _Item:
    """One record: its text as it will be written, parsed, and as read (None when new)."""

    raw: str
    value: Any
    origin: str
    original: str | None
    ending: str = ""
    deleted: bool = False


class _JsonCells:
    typed = True

    def __init__(self, document: _JsonItems, ref: int) -> None:
        self.document = document
        self.item = document.items[ref]

    def get(self, column: str) -> Any:
        return _lookup(self.item.value, column)

    def set(self, column: str, value: Any) -> None:
        item = self.item
        parts = (
            [column] if isinstance(item.value, dict) and column in item.value else column.split(".")
        )
        old = self.get(column)
        if value is None:
            if old is MISSING or old is None:
                return
            value = None if self.document.writes_null(column) else _REMOVE
        item.raw = self._assign(item.raw, parts, old, value)
        item.value = _loads(item.raw)

    def _assign(self, raw: str, parts: list[str], old: Any, new: Any) -> str:
        # An object is updated key by key, so that its layout survives.
        if isinstance(new, dict) and isinstance(old, dict) and old:
            for key in old:
                if key not in new:
                    raw = self._assign(raw, [*parts, key], old[key], _REMOVE)
            for key, inner in new.items():
                before = old.get(key, MISSING)
                if before is MISSING or type(before) is not type(inner) or before != inner:
                    raw = self._assign(raw, [*parts, key], before, inner)
            return raw
        document = self.document
        return _set(raw, 0, parts, new, _Style(), document.source.can_encode)

    def inherited(self, column: str) -> Any:
        return None


class _JsonItems(Document):
    """What JSON documents and JSON Lines share: records as text spans."""

    connector: _JsonBase[Any]

    def __init__(self, connector: _JsonBase[Any], source: SourceText, items: list[_Item]) -> None:
        super().__init__(source, connector.mapper(), connector.options.path)
        self.connector = connector
        self.items = items
        text = source.text
        # The line ending most lines have (a file edited on two systems may mix them).
        self.newline = "\r\n" if 2 * text.count("\r\n") > text.count("\n") else "\n"
        self._index: dict[str, list[int]] = {}
        self._nulls: dict[str, bool] = {}
        for ref, item in enumerate(items):
            sku = self._sku(item)
            if sku:
                self._index.setdefault(sku, []).append(ref)

    def _sku(self, item: _Item) -> str | None:
        raw = _lookup(item.value, self.mapper.mapping.sku)
        try:
            return None if raw is MISSING else clean_text(raw)
        except ValueError:
            return None

    def writes_null(self, column: str) -> bool:
        """Whether some record of the file has ``null`` at ``column`` (else blank = no key)."""
        if column not in self._nulls:
            self._nulls[column] = any(
                item.original is not None and _lookup(item.value, column) is None
                for item in self.items
            )
        return self._nulls[column]

    def refs(self, sku: str) -> list[int]:
        return list(self._index.get(sku, ()))

    def row_record(self, ref: int) -> tuple[Record | None, list[Problem]]:
        item = self.items[ref]
        problems: list[Problem] = []
        if not isinstance(item.value, dict):
            return None, [Problem(self.where(ref), f"is {kind_of(item.value)}, not an object")]
        record = self.mapper.to_record(item.value, self.where(ref), problems, [])
        return (self.connector.localized(record) if record else None), problems

    def column_values(self, column: str) -> Iterator[Any]:
        for item in self.items:
            if item.original is not None:
                yield _lookup(item.value, column)

    def cells(self, ref: int) -> _JsonCells:
        return _JsonCells(self, ref)

    def append(self, sku: str) -> int:
        self.items.append(_Item("{}", {}, "", None, self.newline))
        ref = len(self.items) - 1
        self._index[sku] = [ref]
        return ref

    def created(self, ref: int) -> None:
        item = self.items[ref]
        template = next(
            (
                i
                for i in reversed(self.items)
                if i.original is not None and isinstance(i.value, dict)
            ),
            None,
        )
        style = (
            _Style.of(template.original or "", self.newline, self.unit) if template else _Style()
        )
        model = template.value if template else _skeleton(self.mapper.required_columns())
        value = _ordered(item.value, model)
        item.raw = _dumps(value, style, self.source.can_encode)
        item.value = _loads(item.raw)

    @property
    def unit(self) -> str:
        return "  "

    def discard(self, ref: int) -> None:
        item = self.items.pop()
        assert item.original is None
        assert ref == len(self.items)
        self._forget(ref, item)

    def _forget(self, ref: int, item: _Item) -> None:
        sku = self._sku(item) or ""
        refs = [r for r in self._index.get(sku, []) if r != ref]
        if refs:
            self._index[sku] = refs
        else:
            self._index.pop(sku, None)

    def delete(self, ref: int) -> None:
        item = self.items[ref]
        item.deleted = True
        self._forget(ref, item)

    def snapshot(self, ref: int) -> tuple[str, Any]:
        item = self.items[ref]
        return item.raw, item.value

    def restore(self, ref: int, snapshot: Any) -> None:
        item = self.items[ref]
        item.raw, item.value = snapshot

    def where(self, ref: int) -> str:
        return self.items[ref].origin or f"{self.label}:new record"

    def payload(self, ref: int) -> Any:
        return json.loads(self.items[ref].raw)


class JsonDocument(_JsonItems):
    """A JSON document in memory for editing: the text around the records list, and each
    record's text."""

    def __init__(self, connector: JsonConnector, source: SourceText) -> None:
        text = source.text
        values, label = connector._records(connector._parse(text))
        start = _skip(text, 0)
        for part in (
            (connector.options.records or "").split(".") if connector.options.records else []
        ):
            members, _ = _members(text, start)
            start = [m for m in members if m.key == part][-1].value_start
        spans, close = _elements(text, start)
        path = connector.options.path
        items = [
            _Item(text[a:b], value, f"{path}:{label}[{index}]", text[a:b])
            for index, ((a, b), value) in enumerate(zip(spans, values, strict=True))
        ]
        self.head = text[: start + 1]
        self.lead = text[start + 1 : spans[0][0]] if spans else ""
        self.separators = [text[spans[i - 1][1] : spans[i][0]] for i in range(1, len(spans))]
        self.trail = text[spans[-1][1] : close] if spans else text[start + 1 : close]
        self.tail = text[close:]
        indents = re.findall(r"\n([ \t]+)\S", text[:2000])
        self._unit = min(indents, key=len) if indents else "  "
        super().__init__(connector, source, items)

    @property
    def unit(self) -> str:
        return self._unit

    def render(self) -> str:
        pieces = [self.head]
        kept = [(index, item) for index, item in enumerate(self.items) if not item.deleted]
        for position, (index, item) in enumerate(kept):
            if position == 0:
                pieces.append(self.lead)
            elif item.original is not None and index > 0:
                pieces.append(self.separators[index - 1])
            elif self.separators:
                pieces.append(self.separators[-1])
            else:
                pieces.append("," + (self.lead if "\n" in self.lead else " "))
            pieces.append(item.raw)
        if kept or not any(item.original is not None for item in self.items):
            pieces.append(self.trail)  # a list whose records were all deleted becomes []
        pieces.append(self.tail)
        return "".join(pieces)


class JsonLinesDocument(_JsonItems):
    """A JSON Lines file in memory for editing: each line's text."""

    def __init__(self, connector: JsonLinesConnector, source: SourceText) -> None:
        path = connector.options.path
        items: list[_Item] = []
        text = source.text
        start, number = 0, 0
        while start < len(text):
            end = text.find("\n", start)
            line = text[start : end + 1] if end >= 0 else text[start:]
            start += len(line)
            number += 1
            body = line.rstrip("\r\n")
            ending = line[len(body) :]
            value: Any = MISSING
            if body.strip():
                try:
                    value = _loads(body)
                except json.JSONDecodeError:
                    value = MISSING  # the reader reports it; the line is kept as it is
            items.append(_Item(body, value, connector.origin(number), body, ending))
        if not any(item.raw.strip() for item in items):
            raise blank_problem(path)
        super().__init__(connector, source, items)

    def render(self) -> str:
        items = self.items
        # New lines go after the last record as read, before trailing blank lines.
        last = max(
            (i for i, item in enumerate(items) if item.original is not None and item.raw.strip()),
            default=-1,
        )
        fresh = [item for item in items if item.original is None]
        ordered = [
            *items[: last + 1],
            *fresh,
            *(i for i in items[last + 1 :] if i.original is not None),
        ]
        pieces: list[str] = []
        for item in ordered:
            if item.deleted:
                continue
            if pieces and not pieces[-1].endswith("\n"):
                pieces[-1] += self.newline
            pieces.append(item.raw + item.ending)
        return "".join(pieces)
