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
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from omnisync.errors import OmnisyncError
from omnisync.models import Record
from omnisync.sdk.connector import ConnectorContext, ConnectorOptions, TableTarget
from omnisync.sdk.mapping import ProblemCollector, RowMapper

from .base import FileConnector
from .columnar import read_table
from .csv_dialect import CsvDialect, CsvOptions, TsvOptions
from .csv_document import CsvDocument
from .presets import presets

__all__ = ["CsvConnector", "CsvOptions", "TsvConnector", "TsvOptions"]

log = logging.getLogger(__name__)


class CsvConnector(FileConnector[CsvOptions]):
    """Reads a CSV export (ERP, shop, POS) through a column mapping or a preset."""

    description = "CSV file export (ERP, shop or POS); column mapping or preset"
    Options = CsvOptions

    def __init__(self, options: ConnectorOptions, context: ConnectorContext) -> None:
        super().__init__(options, context)
        #: How the file is read, shared by the row path, the columnar path and the document.
        self.dialect = CsvDialect(self.options, self.name)

    @staticmethod
    def recognise(header: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
        """The preset whose export ``header`` is (its required columns present, the most of
        its others matched, at least three), with the columns it maps in this header; None
        when the header is no known export (``omnisync init`` asks)."""
        present = set(header)
        best: tuple[int, str, dict[str, Any]] | None = None
        for name, preset in presets().items():
            found = {
                key: next(c for c in candidates if c in present)
                for key, candidates in preset.mapping.items()
                if isinstance(candidates, list) and any(c in present for c in candidates)
            }
            if not preset.required <= set(found) or len(found) < 3:
                continue
            if best is None or len(found) > best[0]:
                best = (len(found), name, found)
        return (best[1], best[2]) if best else None

    def mapper(self) -> RowMapper:
        """The mapper; with a preset, its columns are matched to the file's header."""
        dialect = self.dialect
        if dialect.preset is None:
            return super().mapper()
        if dialect.resolved is None:
            try:
                with self.open() as stream:
                    lines = dialect.lines(stream, ProblemCollector())
                    header = dialect.header(dialect.reader(lines))[0]
                dialect.resolved = dialect.preset.resolve(self.options.mapping, header)
            except (OmnisyncError, csv.Error):
                # read() reports these with context; the unresolved mapping is a fair answer.
                return super().mapper()
        return self.narrowed(RowMapper(dialect.resolved, self.options, self.name))

    def read(self) -> Iterator[Record]:
        dialect = self.dialect
        problems = ProblemCollector()
        self.notes = []
        with self.open() as stream:
            reader = dialect.reader(dialect.lines(stream, problems))
            try:
                header, header_line = dialect.header(reader)
            except csv.Error as exc:
                raise dialect.malformed(exc, reader.line_num or 1, problems) from None
            mapper, group = dialect.setup(header, header_line)
            self.narrowed(mapper)
            yield from self._rows(reader, header, header_line, mapper, group, problems)
        problems.raise_if_any()

    def read_table(self, target: TableTarget) -> bool:
        """The columnar fast path: DuckDB parses the file and SQL normalises it
        (:mod:`.columnar` says when it declines and :meth:`read` runs instead)."""
        return read_table(self, self.dialect, target)

    def document(self) -> CsvDocument:
        """The file parsed for editing, every record's raw text kept."""
        return CsvDocument(self.dialect, self.load(), self.localized)

    # -- reading ---------------------------------------------------------------------------

    def _rows(
        self,
        reader: Any,
        header: list[str],
        header_line: int,
        mapper: RowMapper,
        group: str | None,
        problems: ProblemCollector,
    ) -> Iterator[Record]:
        layout = self.dialect.layout(header, mapper, group)
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
                raise self.dialect.malformed(exc, start, problems) from None
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


class TsvConnector(CsvConnector):
    """Reads a tab-separated export; otherwise exactly the csv connector."""

    description = "Tab-separated file export; column mapping or preset"
    Options = TsvOptions
