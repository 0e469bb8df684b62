"""XML product feeds: ``connector: xml`` (Google Merchant Center RSS 2.0 and Atom feeds).

::

    connector: xml
    options:
      path: exports/google.xml
      preset: google          # the same preset as the TSV feed: id, title, price, availability
      currency: EUR           # for prices without a code (Google's carry one: "15.00 EUR")

A record is each ``<item>`` (RSS 2.0) or ``<entry>`` (Atom); ``records: offer`` names another
element. Its child elements are its fields, by local name: ``<g:price>`` (the Google namespace
``http://base.google.com/ns/1.0``) and ``<price>`` are both ``price``, and where a record has
both the ``g:`` one wins, as Google reads it (RSS ``<title>`` beside ``<g:title>``). An Atom
``<summary>`` (or ``<content>``) is the ``description`` when there is no other. Elements of
other namespaces keep their prefix (``<my:colour>`` is ``my:colour``). An element with child
elements is an object (``shipping.country`` in a mapping), one without text but with
attributes the object of those (Atom ``<link href=…>``: ``link.href``); a repeated element
keeps its first value. Values are read as text, so numbers are exact decimals.

The feed is streamed: read in blocks through expat, records handed on as they end, so a feed
of a million items never sits in memory as a tree. Origins are ``path:line`` of the record's
start tag, and a malformed document is refused with its line and column. A document type
declaration (``<!DOCTYPE``) is refused: feeds never need one, and its entities are how XML
bombs (billion laughs) and external-entity reads work. The feed is read only; omnisync never
rewrites it (a feed is generated, not edited).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from xml.parsers import expat

from pydantic import ConfigDict, field_validator, model_validator

from omnisync.errors import InputError, Problem
from omnisync.models import Entity, Record
from omnisync.sdk.connector import ConnectorContext, ConnectorOptions
from omnisync.sdk.mapping import FieldMapping, ProblemCollector, RowMapper, missing_columns_error

from .base import FileConnector, FileOptions, ReadOnlyCapabilities, blank_problem
from .presets import Preset, apply_preset, known_preset, preset_json_schema, preset_named

GOOGLE_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
#: Namespaces whose elements are named by their local name alone (no namespace: RSS).
_PLAIN = frozenset({"", GOOGLE_NS, ATOM_NS})
#: Record elements looked for when ``records`` is not set.
_RECORDS = ("item", "entry")
_CHUNK = 1 << 20
#: Records looked at to learn which fields a feed has (a preset's optional fields).
_SAMPLE = 1000


class XmlOptions(FileOptions):
    """Options of the xml connector."""

    model_config = ConfigDict(json_schema_extra=preset_json_schema)

    #: Local name of the element holding one record; unset: ``item`` (RSS) or ``entry`` (Atom).
    records: str | None = None
    #: A known feed layout (``google``) instead of a full mapping.
    preset: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        return apply_preset(data, cls.model_fields)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        return known_preset(value)


@dataclass
class _Element:
    key: str
    google: bool
    text: list[str] = field(default_factory=list)
    children: dict[str, Any] = field(default_factory=dict)
    #: Keys in ``children`` that came from the Google namespace.
    from_google: set[str] = field(default_factory=set)
    attributes: dict[str, str] = field(default_factory=dict)

    def value(self) -> Any:
        if self.children:
            return self.children
        text = "".join(self.text)
        if not text.strip() and self.attributes:
            return dict(self.attributes)
        return text

    def add(self, child: _Element) -> None:
        key = child.key
        if key in self.children and (key in self.from_google or not child.google):
            return  # a repeated element keeps its first value; g: wins over plain
        self.children[key] = child.value()
        if child.google:
            self.from_google.add(key)


class _Parser:
    """Streams (line, record dict) pairs out of an XML document."""

    def __init__(self, path: str, records: str | None, encoding: str | None) -> None:
        self.path = path
        self.names = (records,) if records else _RECORDS
        self.parser = expat.ParserCreate(encoding, namespace_separator=" ")
        self.parser.namespace_prefixes = True
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.EntityDeclHandler = self._entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.stack: list[_Element] = []
        #: Depth of the open record element in the document (None: outside any record).
        self.depth = 0
        self.record_depth: int | None = None
        self.record_line = 0
        self.ready: list[tuple[int, dict[str, Any]]] = []
        self.root: str | None = None
        self.seen_record = False

    # -- expat callbacks -------------------------------------------------------------------

    def _refuse(self, what: str) -> None:
        raise InputError(
            [Problem(f"{self.path}:{self.parser.CurrentLineNumber}", f"{what} is refused")],
            hint="feeds need no document type declaration; export the feed without one",
        )

    def _doctype(self, *_: Any) -> None:
        self._refuse("a document type declaration (<!DOCTYPE …>)")

    def _entity(self, *_: Any) -> None:
        self._refuse("an entity declaration")

    def _name(self, raw: str) -> tuple[str, bool]:
        parts = raw.split(" ")
        if len(parts) == 1:
            return parts[0], False
        uri, local = parts[0], parts[1]
        if uri in _PLAIN:
            return local, uri == GOOGLE_NS
        prefix = parts[2] if len(parts) > 2 else ""
        return (f"{prefix}:{local}" if prefix else local), False

    def _start(self, raw: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        key, google = self._name(raw)
        if self.root is None:
            self.root = key
        if self.record_depth is None:
            if key in self.names:
                self.record_depth = self.depth
                self.record_line = self.parser.CurrentLineNumber
                self.stack = [_Element(key, google)]
                self.seen_record = True
            return
        named = {self._name(k)[0]: v for k, v in attributes.items()}
        self.stack.append(_Element(key, google, attributes=named))

    def _end(self, raw: str) -> None:
        self.depth -= 1
        if self.record_depth is None:
            return
        element = self.stack.pop()
        if self.stack:
            self.stack[-1].add(element)
            return
        self.record_depth = None
        record = element.children
        if "description" not in record:
            for alias in ("summary", "content"):
                if isinstance(record.get(alias), str):
                    record["description"] = record[alias]
                    break
        self.ready.append((self.record_line, record))

    def _text(self, data: str) -> None:
        if self.record_depth is not None and len(self.stack) > 1:
            self.stack[-1].text.append(data)

    # -- driving ---------------------------------------------------------------------------

    def feed(self, data: bytes, final: bool = False) -> list[tuple[int, dict[str, Any]]]:
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as exc:
            message = expat.ErrorString(exc.code) if exc.code else str(exc)
            hint = "export the feed again: an XML feed must be one well-formed document"
            if exc.code == expat.errors.codes[expat.errors.XML_ERROR_INVALID_TOKEN]:
                hint += (
                    "; an invalid token may be a byte of another encoding than the declared "
                    "one (fix <?xml … encoding=…?> or set options.encoding)"
                )
            where = f"{self.path}:{exc.lineno}"
            problem = Problem(where, f"not well-formed XML: {message} (column {exc.offset + 1})")
            raise InputError([problem], hint=hint) from None
        ready, self.ready = self.ready, []
        return ready


class XmlConnector(FileConnector[XmlOptions]):
    """Reads an XML product feed (RSS 2.0 or Atom, Google Merchant Center's namespace)."""

    description = "XML product feed (Google Merchant RSS 2.0 / Atom); read only"
    Options = XmlOptions
    capabilities = ReadOnlyCapabilities(frozenset({Entity.CONTENT, Entity.PRICE, Entity.STOCK}))

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)
        self._resolved: FieldMapping | None = None

    @property
    def preset(self) -> Preset | None:
        return preset_named(self.options.preset)

    def mapper(self) -> RowMapper:
        """The row mapper; with a preset, its fields are matched to what the feed holds."""
        if self.preset is None:
            return super().mapper()
        if self._resolved is None:
            keys: set[str] = set()
            for _, item in islice(self._items(), _SAMPLE):
                keys.update(item)
            self._resolved = self.preset.resolve(self.options.mapping, sorted(keys))
        return self.narrowed(RowMapper(self._resolved, self.options, self.name))

    def _items(self) -> Iterator[tuple[int, dict[str, Any]]]:
        path = self.options.path
        encoding = self.options.encoding if "encoding" in self.options.model_fields_set else None
        parser = _Parser(path, self.options.records, encoding)
        empty = True
        with self.open() as stream:
            while chunk := stream.read(_CHUNK):
                empty = empty and not chunk.strip()
                yield from parser.feed(chunk)
            if empty:
                raise blank_problem(path)
            yield from parser.feed(b"", final=True)
        if not parser.seen_record and parser.root not in ("rss", "feed", *parser.names):
            wanted = " or ".join(f"<{n}>" for n in parser.names)
            raise InputError(
                [Problem(path, f"no {wanted} elements under <{parser.root}>")],
                hint="set options.records to the element that holds one product",
            )

    def read(self) -> Iterator[Record]:
        self.notes = []
        mapper = self.mapper()
        problems = ProblemCollector()
        keys: set[str] = set()
        count = 0
        for line, item in self._items():
            count += 1
            if len(keys) < 1000:
                keys.update(item)
            record = mapper.to_record(item, self.origin(line), problems, self.notes)
            if record is not None:
                yield self.localized(record)
        problems.raise_if_any()
        unseen = mapper.unseen_columns()
        if count and unseen:
            raise missing_columns_error(
                unseen, sorted(keys), where=self.options.path, mapping=mapper.mapping
            )
