"""The columnar fast path of the csv and tsv connectors (``Connector.read_table``).

DuckDB's ``read_csv`` parses the file in parallel, every column as text, and
:class:`omnisync.sdk.columnar.ColumnarMapper` turns the text into the diff engine's tables in SQL,
with the meaning :class:`~omnisync.sdk.mapping.RowMapper` gives it. The connector's ``read()``
stays the definition; this path declines (returns False, and ``read()`` runs record by
record) whenever it cannot give exactly the same records:

* the file is small (under 4 MiB: the row path is quicker there);
* the file groups rows (``group_by``, the ``shopify`` preset), or the mapping has
  ``attributes`` or ``compare_at_price``;
* DuckDB does not parse the file the way Python's csv module does: a record with another
  number of fields than the header, a stray quote, mixed line endings, a whitespace-only
  line, a line longer than the csv module's field limit, a header spanning lines;
* a byte does not decode, a value does not parse, a row has no SKU: ``read()`` reports each
  with its file:line, as it always has.

UTF-8 files (with or without a byte-order mark) are read where they are. Files in another
encoding are first copied to UTF-8 in a temporary file; single-byte code pages such as cp1252
take a quick route through latin-1, others Python's incremental decoder.

One reading differs from Python's csv module and is not detected: a field with spaces between
the delimiter and its opening quote (``a, "b"``) or between its closing quote and the next
delimiter (``"b" ,``). DuckDB drops those spaces and reads ``b``; the csv module keeps
``' "b"'`` in the first case and rejects the second. Exports written by programs do not have
such fields; telling them apart would cost a second pass over every byte.
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import BinaryIO

import duckdb

from omnisync.errors import OmnisyncError
from omnisync.expect import sql_str
from omnisync.sdk.columnar import ColumnarMapper, filled_sql, sql_name, strip_sql
from omnisync.sdk.connector import TableTarget
from omnisync.sdk.mapping import ProblemCollector

from .base import FileConnector, codec_for
from .csv_dialect import CsvDialect, CsvOptions

log = logging.getLogger(__name__)


class Declined(Exception):
    """The fast path cannot be sure of this file; the message says why (debug log)."""


#: Files smaller than this take the row path: it is quicker than planning the SQL.
MIN_BYTES = 4 << 20


def read_table(
    connector: FileConnector[CsvOptions], dialect: CsvDialect, target: TableTarget
) -> bool:
    """Create ``target``'s tables from the connector's file, read as ``dialect`` reads it, or
    return False (see above)."""
    try:
        if connector.file.stat().st_size < MIN_BYTES:
            raise Declined(f"smaller than {MIN_BYTES >> 20} MiB: the row path is quicker")
        with _utf8(connector) as path:
            return _load(connector, dialect, target, path)
    except Declined as exc:
        reason = str(exc)
    except (OSError, OmnisyncError, csv.Error, UnicodeError, duckdb.Error) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    log.debug("%s: reading record by record (%s)", connector.options.path, reason)
    return False


def _load(
    connector: FileConnector[CsvOptions], dialect: CsvDialect, target: TableTarget, path: Path
) -> bool:
    options = dialect.options
    header, header_line = _header(connector, dialect)
    mapper, group = dialect.setup(header, header_line)
    if group:
        raise Declined(f"rows grouped by {group!r}")
    unsupported = ColumnarMapper.unsupported(mapper)
    if unsupported:
        raise Declined(unsupported)
    names = {f"c{i}": "VARCHAR" for i in range(len(header))}
    source = (
        f"read_csv({sql_str(str(path))}, header = false, skip = {header_line}, "
        f"auto_detect = false, delim = {sql_str(options.delimiter)}, "
        f"quote = {sql_str(options.quotechar)}, escape = {sql_str(options.quotechar)}, "
        f"strict_mode = true, null_padding = false, encoding = 'utf-8', "
        # The csv module refuses a field longer than its limit; DuckDB then refuses every
        # record of that many bytes, so such files take the row path and its error.
        f"max_line_size = {csv.field_size_limit()}, "
        f"columns = {{{', '.join(f'{sql_str(n)}: {sql_str(t)}' for n, t in names.items())}}})"
    )
    # As the row path's dict(zip(header, values)): a repeated name means its last column.
    index = {name: i for i, name in enumerate(header)}
    cell = {name: f"c{i}" for name, i in index.items()}
    layout = dialect.layout(header, mapper, group)
    # Skipped as the row path skips them: blank rows, then container rows.
    # A CASE tests the cells in turn and stops at the first that is not blank.
    whens = " ".join(f"WHEN {filled_sql(f'c{i}')} THEN true" for i in range(len(header)))
    where = [f"(CASE {whens} ELSE false END)"]
    for column, values in layout.skip.items():
        where.append(f"{_stripped(cell[column])} NOT IN ({_list(values)})")
    raw = {}
    for column in mapper.required_columns():
        x = cell[column]
        if column in layout.blank:
            x = f"(CASE WHEN {_stripped(x)} IN ({_list(layout.blank[column])}) THEN NULL ELSE {x} END)"
        raw[column] = x
    aliases = {column: sql_name(f"r_{i}") for i, column in enumerate(raw)}
    select = ", ".join(f"{x} AS {aliases[column]}" for column, x in raw.items())
    query = f"SELECT {select} FROM {source} WHERE {' AND '.join(where)}"
    return ColumnarMapper(mapper, target.timezone).load(target, query, aliases)


def _header(connector: FileConnector[CsvOptions], dialect: CsvDialect) -> tuple[list[str], int]:
    """The header as the row path reads it, and the line it ends on (DuckDB skips to it)."""
    with connector.open() as stream:
        reader = dialect.reader(dialect.lines(stream, ProblemCollector()))
        for row in reader:
            if any(cell.strip() for cell in row):
                if any("\n" in cell or "\r" in cell for cell in row):
                    raise Declined("the header spans lines")
                return [cell.strip() for cell in row], reader.line_num
    raise Declined("no header")


def _stripped(x: str) -> str:
    return f"coalesce({strip_sql(x)}, '')"


def _list(values: frozenset[str]) -> str:
    return ", ".join(sql_str(v) for v in sorted(values))


# ---------------------------------------------------------------- encodings


@contextmanager
def _utf8(connector: FileConnector[CsvOptions]) -> Iterator[Path]:
    """The file itself when it is UTF-8, else a temporary UTF-8 copy (removed afterwards)."""
    with connector.open() as stream:
        head = stream.read(4)
        codec = codecs.lookup(codec_for(head, connector.options.encoding)).name
        if codec in ("utf-8", "utf-8-sig"):
            yield connector.file
            return
        stream.seek(0)
        handle, name = tempfile.mkstemp(prefix="omnisync-", suffix=".csv")
        try:
            with os.fdopen(handle, "wb") as out:
                _transcode(stream, codec, out)
            yield Path(name)
        finally:
            os.unlink(name)


def _transcode(stream: BinaryIO, codec: str, out: BinaryIO, chunk: int = 1 << 22) -> None:
    """Copy ``stream`` from ``codec`` to UTF-8; UnicodeError for a byte it cannot decode."""
    single = _single_byte(codec)
    if single is not None:
        # latin-1 decodes every byte to the character of the same number, fast; the few
        # bytes the code page means otherwise are then rewritten in the UTF-8.
        pattern, replace = single
        while data := stream.read(chunk):
            text = data.decode("latin-1").encode("utf-8")
            out.write(pattern.sub(replace, text) if pattern and replace else text)
        return
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    while data := stream.read(chunk):
        out.write(decoder.decode(data).encode("utf-8"))
    out.write(decoder.decode(b"", final=True).encode("utf-8"))


_Replace = Callable[[re.Match[bytes]], bytes]


@cache
def _single_byte(codec: str) -> tuple[re.Pattern[bytes] | None, _Replace | None] | None:
    """For a code page that maps each byte to one character and ASCII to itself: a pattern
    of the UTF-8 of latin-1 characters it means otherwise, and their replacement."""
    try:
        ascii_ok = bytes(range(128)).decode(codec) == bytes(range(128)).decode("ascii")
    except UnicodeError:
        return None
    if not ascii_ok:
        return None
    table: dict[bytes, bytes | None] = {}
    for byte in range(128, 256):
        try:
            char = bytes([byte]).decode(codec)
        except UnicodeError:
            char = None
        if char is not None and len(char) != 1:
            return None
        if char != chr(byte):
            table[chr(byte).encode("utf-8")] = None if char is None else char.encode("utf-8")
    if not table:
        return None, None
    # One character class per UTF-8 lead byte: a literal alternation would be slow in re.
    tails: dict[int, list[int]] = {}
    for key in table:
        tails.setdefault(key[0], []).append(key[1])
    pattern = re.compile(
        b"|".join(
            re.escape(bytes([lead]))
            + b"["
            + b"".join(re.escape(bytes([t])) for t in sorted(ends))
            + b"]"
            for lead, ends in sorted(tails.items())
        )
    )

    def replace(match: re.Match[bytes]) -> bytes:
        value = table[match.group()]
        if value is None:
            raise UnicodeError(f"a byte that {codec} does not define")
        return value

    return pattern, replace
