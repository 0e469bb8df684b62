"""What every file connector shares: the path and encoding options, the reachability check,
and decoding that knows which line a bad byte is on."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from pydantic import StringConstraints, field_validator

from omnisync.connector import Capabilities, Connector, ConnectorContext, ConnectorOptions
from omnisync.errors import ConnectorError, InputError, Problem
from omnisync.mapping import FieldMapping, ParseOptions, ProblemCollector, RowMapper
from omnisync.models import Entity, Field

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


class MappedCapabilities:
    """``capabilities`` of a mapped connector. On the class (``omnisync connectors``) it says
    what the kind can read; on an instance, what its mapping actually provides."""

    def __init__(self, reads: frozenset[Entity]) -> None:
        self.reads = reads

    def __get__(self, instance: FileConnector | None, owner: type | None = None) -> Capabilities:
        if instance is None:
            return Capabilities(reads=self.reads)
        return Capabilities(reads=frozenset(field.entity for field in instance.fields()))


class FileConnector(Connector):
    """Base of the file connectors: resolves the path, checks it and opens it."""

    Options = FileOptions
    capabilities = MappedCapabilities(frozenset({Entity.CONTENT, Entity.PRICE, Entity.STOCK}))

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        if not isinstance(options, self.Options):
            raise TypeError(f"{type(self).__name__} needs {self.Options.__name__}")
        super().__init__(options, context)
        self.options: FileOptions = options
        self.file: Path = context.resolve(options.path)

    def describe(self) -> str:
        return self.options.path

    def fields(self) -> frozenset[Field]:
        return self.mapper().fields()

    def mapper(self) -> RowMapper:
        """The row mapper for this source's mapping."""
        return RowMapper(self.options.mapping, self.options, self.name)

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
            return self.file.open("rb")
        except OSError as exc:
            raise ConnectorError(
                f"cannot read {self.file}: {exc.strerror or exc}", where=where, hint=PATH_HINT
            ) from exc

    def origin(self, line: int | str) -> str:
        """``path:line`` for a record's origin and for problems."""
        return f"{self.options.path}:{line}"


def _codec_for(head: bytes, encoding: str) -> str:
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
    codec = _codec_for(head, encoding)
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
        return codecs.decode(data, _codec_for(data[:4], encoding))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise decode_error(exc, line, encoding, f"{path}:{line}", ProblemCollector()) from None


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
