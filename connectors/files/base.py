"""What every file connector shares: the path and encoding options, the reachability check,
decoding that knows which line a bad byte is on, and the write side's entry points (the
machinery itself is in :mod:`.editor`, :mod:`.document` and :mod:`.replace`)."""

from __future__ import annotations

import codecs
import os
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, BinaryIO, ClassVar
from zoneinfo import ZoneInfo

from pydantic import StringConstraints, field_validator
from typing_extensions import TypeVar

from omnisync.errors import ConnectorError, InputError, Problem
from omnisync.models import Change, Entity, Field, QualityNote, Record
from omnisync.sdk.connector import Capabilities, Connector, ConnectorContext, ConnectorOptions
from omnisync.sdk.feed import ChangeFeed, SnapshotFeed
from omnisync.sdk.mapping import FieldMapping, ParseOptions, ProblemCollector, RowMapper
from omnisync.sdk.write import BatchWriter, Prepared

from .document import Document
from .editor import Editor
from .replace import replace_file
from .source import SourceText

PATH_HINT = "check options.path (relative paths are resolved against the config file's folder)"
ENCODING_HINT = "set options.encoding (e.g. cp1252 for Windows exports)"


class FileOptions(ParseOptions):
    """Options shared by the file connectors."""

    #: The file to read; relative paths are resolved against the config file's folder.
    path: Annotated[str, StringConstraints(min_length=1)]
    #: Text encoding (``utf-8``, ``cp1252``, ``latin-1``, ``utf-16``). A byte-order mark
    #: always wins: a UTF-8 or UTF-16 BOM is honoured and stripped whatever is set here.
    encoding: str = "utf-8"
    #: Which column holds which record field.
    mapping: FieldMapping
    #: Before each rewrite, keep the previous file as ``<name>.<UTC timestamp>.bak`` next to it.
    backup: bool = True

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (try utf-8, cp1252, latin-1 or utf-16)"
            ) from None
        if not getattr(info, "_is_text_encoding", True):
            raise ValueError(f"{value!r} is not a text encoding")
        return value


#: Records one write may carry: a file is rewritten once per batch, so batches can be large.
MAX_BATCH = 100_000


class MappedCapabilities:
    """``capabilities`` of a mapped connector. On the class (``omnisync connectors``) it says
    what the kind can read and write; on an instance, what its mapping actually provides
    (a file writes every field it maps)."""

    def __init__(self, entities: frozenset[Entity], max_batch: int = MAX_BATCH) -> None:
        self.entities = entities
        self.max_batch = max_batch

    def __get__(self, instance: FileConnector | None, owner: type | None = None) -> Capabilities:
        entities = (
            self.entities
            if instance is None
            else frozenset(field.entity for field in instance.fields())
        )
        return Capabilities(
            reads=entities, writes=entities, max_batch=self.max_batch, targeted=True
        )


class ReadOnlyCapabilities(MappedCapabilities):
    """What a read-only file's mapping reads (a generated feed, a spreadsheet); it is never
    written, so a push to it is refused when the config is validated."""

    def __get__(self, instance: FileConnector | None, owner: type | None = None) -> Capabilities:
        return replace(super().__get__(instance, owner), writes=frozenset(), max_batch=1)


#: The options model of a file connector.
FileOptionsT = TypeVar("FileOptionsT", bound=FileOptions, default=FileOptions)


@dataclass
class _Edit:
    """A batch applied to the file in memory, to be written in one rewrite."""

    document: Document
    editor: Editor
    #: Indexes of the changes the file took.
    applied: list[int]


class FileConnector(BatchWriter[_Edit], Connector[FileOptionsT]):
    """Base of the file connectors: resolves the path, checks it and opens it, and writes.

    A write applies one batch of changes to the file in memory and replaces the file once:
    written to a temporary file in the same folder, flushed and synced, then renamed over the
    original, so that a crash leaves either the old or the new file, never half of one. With
    ``backup: true`` (the default) the previous file is kept first as
    ``<name>.<YYYYmmddTHHMMSSffffffZ>.bak`` in the same folder. A change the file cannot
    take (unknown SKU, unmapped field) fails alone; the rest of the batch is written.
    """

    Options = FileOptions
    capabilities = MappedCapabilities(frozenset({Entity.CONTENT, Entity.PRICE, Entity.STOCK}))
    #: The file is text (CSV, JSON, XML): a spreadsheet workbook given instead is refused
    #: with a pointer to ``connector: xlsx``, not decoded into an encoding error.
    reads_text: ClassVar[bool] = True

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)
        self.file: Path = context.resolve(self.options.path)
        #: Filled by read(): rows skipped or read without a value (see quality_notes).
        self.notes: list[QualityNote] = []
        #: The SKUs a targeted read maps (see :meth:`read_skus`); None reads every row.
        self.only: frozenset[str] | None = None

    def version(self) -> tuple[str, int, int, int] | None:
        """The file's path, modification time, size and inode (None while it is missing:
        the read then reports that)."""
        try:
            stat = self.file.stat()
        except OSError:
            return None
        return (str(self.file), stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def change_feed(self) -> ChangeFeed | None:
        """The file followed by its size and modification time; what changed is found by
        comparing each SKU's record with the last snapshot (:class:`SnapshotFeed`)."""
        return SnapshotFeed(self.version, self.read)

    def describe(self) -> str:
        return self.options.path

    def quality_notes(self) -> Sequence[QualityNote]:
        return self.notes

    def fields(self) -> frozenset[Field]:
        return self.mapper().fields()

    def mapper(self) -> RowMapper:
        """The row mapper for this source's mapping."""
        return self.narrowed(RowMapper(self.options.mapping, self.options, self.name))

    def narrowed(self, mapper: RowMapper) -> RowMapper:
        """``mapper``, mapping only the rows of a targeted read's SKUs."""
        mapper.only = self.only
        return mapper

    def read_skus(self, skus: Collection[str]) -> Iterator[Record]:
        """The records of ``skus``: the file is parsed whole (a file has no index), but only
        their rows become records, and nothing is noted about the rest."""
        self.only = frozenset(skus)
        try:
            yield from self.read()
        finally:
            self.only = None

    def check(self) -> None:
        """The file exists and can be opened."""
        self.open().close()

    def open(self) -> BinaryIO:
        """The file, opened for binary reading; :class:`ConnectorError` when it cannot be."""
        where = self.options.path
        if not self.file.exists():
            raise ConnectorError(f"file not found: {self.file}", where=where, hint=PATH_HINT)
        if self.file.is_dir():
            message = f"{self.file} is a folder, not a file"
            raise ConnectorError(message, where=where, hint=PATH_HINT)
        try:
            stream = self.file.open("rb")
        except OSError as exc:
            raise ConnectorError(
                f"cannot read {self.file}: {exc.strerror or exc}", where=where, hint=PATH_HINT
            ) from exc
        if self.reads_text:
            kind = workbook_kind(stream.read(WORKBOOK_HEAD))
            if kind is not None:
                stream.close()
                raise workbook_problem(where, kind)
            stream.seek(0)
        return stream

    def origin(self, line: int | str) -> str:
        """``path:line`` for a record's origin and for problems."""
        return f"{self.options.path}:{line}"

    @property
    def zone(self) -> tzinfo:
        """The zone of dates written without an offset (``settings.timezone``)."""
        return ZoneInfo(self.context.timezone)

    def localized(self, record: Record) -> Record:
        """``record`` with naive sale dates placed in :attr:`zone`, so that a record says
        which moment it means (and a write can put it back in the same wall-clock form)."""
        zone = self.zone
        if record.sale_start is not None and record.sale_start.tzinfo is None:
            record.sale_start = record.sale_start.replace(tzinfo=zone)
        if record.sale_end is not None and record.sale_end.tzinfo is None:
            record.sale_end = record.sale_end.replace(tzinfo=zone)
        return record

    # -- write side ------------------------------------------------------------------------

    def document(self) -> Document:
        """The file, parsed for editing (each format implements this)."""
        raise ConnectorError(f"connector {type(self).__name__} cannot write", where=self.name)

    def prepare(self, changes: Sequence[Change]) -> Prepared[_Edit]:
        """The batch applied to the file in memory; what the file cannot take is refused."""
        if not changes:
            return Prepared()
        document = self.document()
        editor = Editor(document, self.options, self.zone)
        results = editor.apply(changes)
        refused = {i: r.error or "not applied" for i, r in enumerate(results) if not r.ok}
        applied = [i for i, r in enumerate(results) if r.ok]
        return Prepared([_Edit(document, editor, applied)] if applied else [], refused)

    def covers(self, request: _Edit) -> list[int]:
        return request.applied

    def show(self, request: _Edit) -> list[Any]:
        """Per changed record the row (CSV: column -> cell text; JSON: the object) as the
        file would hold it, with ``op`` update/create/delete."""
        return request.editor.rows()

    def send(self, request: _Edit) -> dict[int, str | None]:
        """Rewrite the file once, atomically (see the class docstring)."""
        document = request.document
        if document.touched:
            data = document.encode()
            if data != document.source.data:
                replace_file(
                    document.source, data, backup=self.options.backup, where=self.options.path
                )
        return dict.fromkeys(request.applied)

    def load(self) -> SourceText:
        """The file's bytes and text, for rewriting: BOM, codec and stat are kept."""
        path = self.options.path
        with self.open() as stream:
            data = stream.read()
            stat = os.fstat(stream.fileno())
        bom = b""
        name = codecs.lookup(self.options.encoding).name
        if data.startswith(codecs.BOM_UTF8):
            bom, codec = codecs.BOM_UTF8, "utf-8"
        elif data.startswith(codecs.BOM_UTF16_LE) and not name.startswith("utf-32"):
            bom, codec = codecs.BOM_UTF16_LE, "utf-16-le"
        elif data.startswith(codecs.BOM_UTF16_BE) and not name.startswith("utf-32"):
            bom, codec = codecs.BOM_UTF16_BE, "utf-16-be"
        else:
            codec = "utf-8" if name == "utf-8-sig" else self.options.encoding
        body = data[len(bom) :]
        try:
            text = body.decode(codec)
        except UnicodeDecodeError as exc:
            line = body[: exc.start].count(b"\n") + 1
            raise decode_error(
                exc, line, self.options.encoding, f"{path}:{line}", ProblemCollector()
            ) from None
        if text.encode(codec) != body:
            # Rows a write does not change are copied as text; that must give the same bytes.
            raise ConnectorError(
                f"{self.file} does not encode back to the same bytes in {codec}",
                where=path,
                hint="set options.encoding to the file's real encoding",
            )
        return SourceText(self.file, data, bom, codec, text, stat.st_mtime_ns, stat.st_size)


def codec_for(head: bytes, encoding: str) -> str:
    """The codec to decode with, honouring a byte-order mark over the configured encoding
    (a BOM is evidence; a setting may be a guess)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    name = codecs.lookup(encoding).name
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not name.startswith(
        "utf-32"
    ):
        return "utf-16"
    return "utf-8-sig" if name == "utf-8" else encoding


def decode_error(
    exc: UnicodeDecodeError, line: int, encoding: str, where: str, problems: ProblemCollector
) -> InputError:
    """The :class:`InputError` for undecodable bytes at ``line``, after earlier problems."""
    bad = exc.object[exc.start : exc.end]
    byte = " ".join(f"0x{b:02x}" for b in bad[:4])
    problems.add(where, f"cannot decode byte {byte} as {encoding} (line {line})")
    return problems.error(hint=ENCODING_HINT)


def decoded_lines(
    stream: BinaryIO, encoding: str, path: str, problems: ProblemCollector
) -> Iterator[str]:
    """The text lines of ``stream`` (line endings kept), decoded incrementally so that a bad
    byte is reported with its line number: an :class:`InputError` that also carries the
    problems collected so far."""
    head = stream.read(4)
    codec = codec_for(head, encoding)
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    line = 1
    pending = ""
    # Iterating a binary file splits after b"\n": whole lines for ASCII-compatible encodings;
    # for UTF-16 the decoder carries half characters over to the next piece.
    for chunk in chain([head], stream, [b""]):
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            at = line + pending.count("\n") + exc.object[: exc.start].count(b"\n")
            raise decode_error(exc, at, encoding, f"{path}:{at}", problems) from None
        pending += text
        while (end := pending.find("\n")) >= 0:
            yield pending[: end + 1]
            pending = pending[end + 1 :]
            line += 1
    if pending:
        yield pending


def read_text(stream: BinaryIO, encoding: str, path: str) -> str:
    """The whole file as text, for formats that cannot be read line by line."""
    data = stream.read()
    try:
        return codecs.decode(data, codec_for(data[:4], encoding))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise decode_error(exc, line, encoding, f"{path}:{line}", ProblemCollector()) from None


#: How a spreadsheet workbook starts: a zip archive (xlsx, xlsm, xlsb, ods) or an OLE2
#: compound document (legacy xls).
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Bytes of a file :func:`workbook_kind` looks at.
WORKBOOK_HEAD = 96


def workbook_kind(head: bytes) -> str | None:
    """``head``'s spreadsheet format by its first bytes (``xlsx``, ``ods``, ``xls``), or None
    for anything else. An OpenDocument file stores its media type uncompressed as the zip's
    first entry (``mimetype``), so it can be told from an Office Open XML workbook; any other
    zip archive is taken for a workbook too, as no text export starts with ``PK\\x03\\x04``."""
    if head.startswith(OLE2_MAGIC):
        return "xls"
    if head.startswith(ZIP_MAGIC):
        return "ods" if b"opendocument.spreadsheet" in head else "xlsx"
    return None


def workbook_problem(path: str, kind: str) -> InputError:
    """The error for a spreadsheet workbook given to a text connector (csv, json, xml)."""
    what = (
        "a spreadsheet (OpenDocument .ods)"
        if kind == "ods"
        else f"an Excel file (.{kind} workbook)"
    )
    return InputError(
        [Problem(path, f"this is {what}, use connector: xlsx")],
        hint="the xlsx connector reads workbooks; or save the sheet as CSV (UTF-8)",
    )


def blank_problem(path: str) -> InputError:
    """The error for a file with nothing in it."""
    return InputError([Problem(path, "the file is empty")], hint="export the data again")


def kind_of(value: Any) -> str:
    """A JSON value's kind for messages: ``an object``, ``a list``, ``a string``, ..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
