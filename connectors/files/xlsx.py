"""Spreadsheet workbooks: ``connector: xlsx`` (also .xlsm, .xlsb, legacy .xls and .ods).

::

    connector: xlsx
    options:
      path: exports/prices.xlsx
      sheet: Preise              # a sheet's name, or its 0-based position (0: the first sheet)
      header_row: 3              # the header's row number as Excel shows it (default 1)
      currency: EUR
      mapping: {sku: Artikelnummer, title: Bezeichnung, price: VK, stock: Bestand, gtin: EAN}

The sheet is read with python-calamine (Rust's calamine): about ten times quicker than
openpyxl's read-only mode on 100,000 rows (``bench/xlsx.py``). Rows above ``header_row`` are
ignored, blank rows are skipped, and columns without a header name are not read. A record's
origin is ``path[sheet] row N`` with Excel's row number, so ``prices.xlsx[Preise] row 14`` is
the row to look at; bad values and duplicate SKUs are reported there.

Cells keep what Excel stores, turned into what omnisync compares:

* a number is Excel's double; it is read at Excel's own precision, 15 significant digits, and
  becomes an exact decimal: ``19.99`` is ``19.99`` (not 19.989999999999998437...), a price
  computed by a formula is the value Excel displays, and a whole number (``5.0``) is the
  integer ``5`` — a stock level, or a GTIN typed as a number (``4006381333931``, never
  ``4.00638E+12``). A GTIN stored as text keeps its leading zeros;
* a date or date-time cell is ISO text (``2026-12-24``, ``2026-12-24T18:00:00``), so sale
  dates need no ``date_format``; a date without a time ends a sale at the end of that day;
* TRUE/FALSE are the text ``true``/``false``;
* a formula is its value as last saved by the spreadsheet program; an error value
  (``#N/A``) or a formula never calculated is read as blank.

The workbook is read only: omnisync never rewrites it (a push to an xlsx channel is refused
when the config is validated). A CSV export of the same sheet takes ``connector: csv``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

import python_calamine
from pydantic import Field as PydanticField
from pydantic import StrictInt

from omnisync.errors import InputError, Problem
from omnisync.models import Entity, Record
from omnisync.sdk.mapping import ProblemCollector, RowMapper, missing_columns_error

from .base import (
    WORKBOOK_HEAD,
    FileConnector,
    FileOptions,
    ReadOnlyCapabilities,
    blank_problem,
    workbook_kind,
)

__all__ = ["XlsxConnector", "XlsxOptions", "cell_value"]

REEXPORT_HINT = "open the file in Excel or LibreOffice and save it again as .xlsx"


class XlsxOptions(FileOptions):
    """Options of the xlsx connector (``encoding`` is not used: a workbook stores Unicode)."""

    #: The sheet: its name, or its 0-based position in the workbook; unset: the first sheet.
    sheet: StrictInt | str | None = None
    #: The row holding the column names, numbered as Excel shows it (1 is the first row).
    header_row: Annotated[int, PydanticField(ge=1)] = 1


def cell_value(value: Any) -> Any:
    """A cell as python-calamine gives it, as the row mapper reads it: text stays text,
    numbers become exact (an ``int`` when whole, else a ``Decimal`` of Excel's 15 significant
    digits), dates become ISO text, booleans ``true``/``false``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Excel keeps 15 significant digits and shows no more; the double's further digits
        # are binary noise (0.1 + 0.2 is 0.30000000000000004), not part of the value.
        number = Decimal(f"{value:.15g}")
        return int(number) if number == number.to_integral_value() else number
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, int):
        return value
    return str(value)  # a duration (timedelta): text, which no value parser mistakes


class XlsxConnector(FileConnector[XlsxOptions]):
    """Reads one sheet of a spreadsheet workbook (xlsx, xlsm, xlsb, xls, ods)."""

    description = "Excel workbook (.xlsx/.xlsm/.xlsb/.xls, .ods): one sheet; read only"
    Options = XlsxOptions
    capabilities = ReadOnlyCapabilities(frozenset({Entity.CONTENT, Entity.PRICE, Entity.STOCK}))
    reads_text = False

    #: The sheet's name once the workbook was opened (for origins).
    sheet_name: str = ""

    def origin(self, line: int | str) -> str:
        """``path[sheet] row N``: Excel's row number on the sheet it is on."""
        return f"{self.options.path}[{self.sheet_name}] row {line}"

    def check(self) -> None:
        """The file is a workbook with the configured sheet (the sheet is not loaded)."""
        self._sheet_name(self._workbook())

    def read(self) -> Iterator[Record]:
        self.notes = []
        sheet = self._sheet(self._workbook())
        problems = ProblemCollector()
        rows = self._rows(sheet)
        header = self._header(sheet, rows)
        mapper = self.mapper()
        self._check_header(header, mapper)
        columns = [(i, name) for i, name in enumerate(header) if name]
        for number, cells in rows:
            row = {name: cell_value(cells[i]) if i < len(cells) else "" for i, name in columns}
            if all(isinstance(v, str) and not v.strip() for v in row.values()):
                continue  # blank rows, and rows with values only in unnamed columns
            record = mapper.to_record(row, self.origin(number), problems, self.notes)
            if record is not None:
                yield self.localized(record)
        problems.raise_if_any()

    # -- reading ---------------------------------------------------------------------------

    def _workbook(self) -> python_calamine.CalamineWorkbook:
        path = self.options.path
        with self.open() as stream:
            head = stream.read(WORKBOOK_HEAD)
        if not head:
            raise blank_problem(path)
        if workbook_kind(head) is None:
            raise InputError(
                [Problem(path, "is not a spreadsheet workbook (.xlsx, .xlsm, .xlsb, .xls, .ods)")],
                hint="a CSV, JSON or XML export takes connector: csv, json or xml",
            )
        with _reading(path):
            return python_calamine.CalamineWorkbook.from_path(str(self.file))

    def _sheet(self, workbook: python_calamine.CalamineWorkbook) -> python_calamine.CalamineSheet:
        """The configured sheet, loaded (the whole sheet is parsed here, in Rust)."""
        name = self._sheet_name(workbook)
        with _reading(f"{self.options.path}[{name}]"):
            return workbook.get_sheet_by_name(name)

    def _sheet_name(self, workbook: python_calamine.CalamineWorkbook) -> str:
        """The configured sheet's name; an :class:`InputError` listing the sheets when the
        workbook has no such sheet."""
        path = self.options.path
        names = list(workbook.sheet_names)
        if not names:
            raise InputError([Problem(path, "the workbook has no sheets")], hint=REEXPORT_HINT)
        wanted = self.options.sheet
        if isinstance(wanted, int) and not 0 <= wanted < len(names) and str(wanted) in names:
            wanted = str(wanted)  # `sheet: 2024` in YAML names the sheet "2024"
        if wanted is None:
            wanted = 0
        if isinstance(wanted, int):
            if not 0 <= wanted < len(names):
                listed = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))
                raise InputError(
                    [Problem(path, f"has no sheet {wanted} (0-based); its sheets are {listed}")],
                    hint="set options.sheet to a sheet's name or 0-based position",
                )
            name = names[wanted]
        else:
            if wanted not in names:
                listed = ", ".join(repr(n) for n in names)
                folded = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
                hint = (
                    f"did you mean {folded[0]!r}? sheet names are matched exactly"
                    if folded
                    else "set options.sheet to one of these names (or a 0-based position)"
                )
                raise InputError(
                    [Problem(path, f"has no sheet {wanted!r}; its sheets are {listed}")],
                    hint=hint,
                )
            name = wanted
        self.sheet_name = name
        return name

    def _rows(self, sheet: python_calamine.CalamineSheet) -> Iterator[tuple[int, list[Any]]]:
        """(Excel row number, cells) from the header row on."""
        if sheet.start is None:  # nothing in any cell
            return
        # iter_rows starts at the sheet's first row (rows above its used range come as
        # blanks), so the n-th row it yields is Excel's row n.
        for number, cells in enumerate(sheet.iter_rows(), start=1):
            if number >= self.options.header_row:
                yield number, cells

    def _header(
        self, sheet: python_calamine.CalamineSheet, rows: Iterator[tuple[int, list[Any]]]
    ) -> list[str]:
        where = f"{self.options.path}[{self.sheet_name}]"
        wanted = self.options.header_row
        first = next(rows, None)
        if first is None:
            if sheet.start is None:
                raise InputError(
                    [Problem(where, "the sheet is empty")],
                    hint="check options.sheet: the data may be on another sheet",
                )
            last = sheet.total_height + 1
            raise InputError(
                [
                    Problem(
                        where, f"header_row {wanted} is below the last row ({last}) of the sheet"
                    )
                ],
                hint="set options.header_row to the row with the column names",
            )
        number, cells = first
        header = [str(cell_value(cell)).strip() for cell in cells]
        if not any(header):
            raise InputError(
                [Problem(self.origin(number), "the header row is blank")],
                hint="set options.header_row to the row with the column names "
                "(numbered as Excel shows it)",
            )
        return header

    def _check_header(self, header: list[str], mapper: RowMapper) -> None:
        where = self.origin(self.options.header_row)
        wanted = mapper.required_columns()
        counts = Counter(header)
        duplicates = [name for name in wanted if counts[name] > 1]
        if duplicates:
            names = ", ".join(repr(name) for name in duplicates)
            raise InputError(
                [Problem(where, f"the header names {names} more than once")],
                hint="rename the duplicate columns so that the mapping is unambiguous",
            )
        missing = [name for name in wanted if name not in counts]
        if missing:
            found = [name for name in header if name]
            raise missing_columns_error(missing, found, where=where, mapping=mapper.mapping)


@contextmanager
def _reading(where: str) -> Iterator[None]:
    """Errors of the reader as :class:`InputError` at ``where``."""
    try:
        yield
    except python_calamine.PasswordError:
        raise InputError(
            [Problem(where, "the workbook is password-protected")],
            hint="save an unprotected copy for omnisync to read",
        ) from None
    except (python_calamine.CalamineError, OSError, ValueError) as exc:
        raise _corrupt(where, exc) from None
    except BaseException as exc:
        # A Rust panic inside the reader (a workbook broken in a way it does not expect)
        # arrives as pyo3's PanicException, which derives from BaseException.
        if type(exc).__name__ != "PanicException":
            raise
        raise _corrupt(where, exc) from None


def _corrupt(where: str, exc: BaseException) -> InputError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        [Problem(where, f"cannot read the workbook: it is damaged or truncated ({detail})")],
        hint=REEXPORT_HINT,
    )
