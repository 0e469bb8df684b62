"""``omnisync init``: a first config from the files at hand.

Each file is looked at the way a person would: its format (CSV, TSV, an Excel workbook, a
JSON list of records), its encoding (UTF-8 with or without a byte-order mark, UTF-16, else the
Windows code page an ERP writes), its delimiter, whether its amounts are written ``1.299,00``
or ``1,299.00``, and whether its header is a known export (a preset: Shopify, WooCommerce,
Google, Shopware). For other headers the mapping is proposed from the column names, in
English and German (``Artikelnummer``, ``VK netto``, ``Bestand Berlin``). Every guess is
written as a comment beside its key, so the person reading the config knows what to check.

The config is validated by the same loader ``omnisync validate`` uses before it is written
(atomically); a file whose SKU column cannot be told is an error naming the columns.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from omnisync.errors import InputError, Problem, UsageError
from omnisync.sdk.connector import load_connector

#: How a spreadsheet workbook starts: a zip archive (xlsx, ods) or an OLE2 file (xls).
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Bytes of a file looked at for its encoding and dialect.
SAMPLE_BYTES = 1 << 20
#: Rows looked at for the decimal style and date formats.
SAMPLE_ROWS = 200

#: Mapping keys → normalised column names that mean them, best first. A name matches when
#: it equals one of them, or (``*``) starts with it.
NAMES: dict[str, tuple[str, ...]] = {
    "sku": (
        "sku",
        "variantsku",
        "artikelnummer",
        "artnr",
        "artikelnr",
        "articlenumber",
        "itemnumber",
        "productnumber",
        "itemno",
        "artikel",
        "article",
        "id",
    ),
    "title": ("title", "name", "productname", "bezeichnung", "artikelname", "produktname"),
    "description": ("description", "beschreibung", "body", "bodyhtml", "longdescription"),
    "gtin": ("gtin", "ean", "barcode", "variantbarcode", "upc", "isbn", "eancode"),
    "brand": ("brand", "marke", "vendor", "hersteller", "manufacturer"),
    "sale_price": ("saleprice", "aktionspreis*", "specialprice", "angebotspreis*"),
    "sale_start": ("salestart", "datesalepricestarts", "aktionvon", "specialpricefromdate"),
    "sale_end": ("saleend", "datesalepriceends", "aktionbis", "specialpricetodate"),
    "price": (
        "price",
        "priceamount",
        "pricevalue",
        "regularprice",
        "variantprice",
        "preis*",
        "vk*",
        "verkaufspreis*",
        "listprice",
        "unitprice",
    ),
    "vat_rate": ("vat*", "mwst*", "taxrate", "ust*", "steuersatz"),
    "currency": ("currency", "wahrung", "waehrung", "currencycode", "pricecurrency*"),
    "availability": ("availability", "verfugbarkeit", "instock", "lieferbar"),
}
#: The order mapping keys are written in.
ORDER = (
    "sku",
    "title",
    "description",
    "gtin",
    "brand",
    "price",
    "sale_price",
    "sale_start",
    "sale_end",
    "vat_rate",
    "currency",
    "stock",
    "availability",
)
#: Stock columns: one (``stock``) or one per location (``Bestand Berlin`` → ``berlin``).
STOCK_PREFIXES = ("stock", "bestand", "lager", "qty", "quantity", "inventory", "menge")


class NoSkuColumn(InputError):
    """No column of the file looks like its SKU; ``header`` are the columns to choose from."""

    def __init__(self, problems: Sequence[Problem], *, hint: str, header: list[str]) -> None:
        super().__init__(problems, hint=hint)
        self.header = header


@dataclass
class Source:
    """What ``init`` found out about one file: the options to read it, and why."""

    path: Path
    connector: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Option or mapping key → the comment written beside it.
    why: dict[str, str] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    #: Columns left unmapped (named in a comment).
    unmapped: list[str] = field(default_factory=list)
    #: Keys of the source's block beside ``options`` (canonical's ``prices: net``), and why.
    block: dict[str, tuple[str, str]] = field(default_factory=dict)


def detect(path: Path, *, currency: str | None = None, sku: str | None = None) -> Source:
    """How to read ``path``: its connector, options and mapping (raises InputError)."""
    if not path.is_file():
        raise InputError(
            [Problem(str(path), "no such file" if not path.exists() else "not a file")],
            hint="give the path of an export file",
        )
    head = path.read_bytes()[:SAMPLE_BYTES]
    if not head.strip():
        raise InputError([Problem(str(path), "the file is empty")], hint="export it again")
    if head.startswith((ZIP_MAGIC, OLE2_MAGIC)):
        source = Source(path, "xlsx")
        rows = _workbook_rows(path)
    elif head.lstrip().startswith((b"[", b"{")):
        source = Source(path, "json")
        rows = _json_rows(path, source)
    else:
        encoding, why, text = _encoding(head, path)
        delimiter = _delimiter(text)
        source = Source(path, "tsv" if delimiter == "\t" else "csv")
        if encoding != "utf-8":
            source.options["encoding"] = encoding
            source.why["encoding"] = why
        if delimiter not in ("\t", ","):
            source.options["delimiter"] = delimiter
            source.why["delimiter"] = "detected"
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        if len(head) == SAMPLE_BYTES and rows:
            rows.pop()  # the sample may cut the last row
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError([Problem(str(path), "no header row")], hint="export it with a header")
    source.header = [cell.strip() for cell in rows[0]]
    body = rows[1 : 1 + SAMPLE_ROWS]
    if source.connector in ("csv", "tsv") and (known := _preset(source.header)):
        source.options["preset"], mapping = known
        source.why["preset"] = "its columns are this export's"
    else:
        mapping = propose_mapping(source.header)
        if sku is not None:
            if sku not in source.header:
                raise UsageError(
                    f"{path}: no column {sku!r} (--sku)",
                    hint="the columns are: " + ", ".join(repr(c) for c in source.header[:30]),
                )
            mapping = {"sku": sku, **{k: v for k, v in mapping.items() if v != sku and k != "sku"}}
        if "sku" not in mapping:
            raise NoSkuColumn(
                [
                    Problem(
                        str(path),
                        "no column looks like the SKU; the columns are: "
                        + ", ".join(repr(c) for c in source.header[:30]),
                    )
                ],
                hint="name it with --sku COLUMN (or rename the column to SKU)",
                header=source.header,
            )
        source.options["mapping"] = mapping
    coded = _numbers(source, mapping, body)
    price_column = normalise(str(mapping.get("price", "")))
    if (
        "netto" in price_column
        or price_column.endswith("net")
        or "_net" in str(mapping.get("price"))
    ):
        source.block["prices"] = ("net", f"the price column {mapping['price']!r} says net")
    elif "brutto" in price_column or "gross" in price_column:
        source.block["prices"] = ("gross", f"the price column {mapping['price']!r} says gross")
    if currency and "currency" not in mapping and not coded:
        source.options["currency"] = currency
        source.why["currency"] = "amounts carry no currency: the one given (--currency)"
    used = set(_columns(mapping))
    source.unmapped = [c for c in source.header if c and c not in used]
    return source


# ---------------------------------------------------------------- reading the file


def _encoding(head: bytes, path: Path) -> tuple[str, str, str]:
    """The encoding, why, and the sample decoded."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", "", head.decode("utf-8-sig", errors="ignore")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "a UTF-16 byte-order mark", head.decode("utf-16", errors="ignore")
    try:
        return "utf-8", "", head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # the sample cut a character in two
            return "utf-8", "", head[: exc.start].decode("utf-8")
    text = head.decode("cp1252", errors="replace")
    if "\ufffd" not in text:
        return "cp1252", "not UTF-8; Windows-1252 reads every byte (an ERP export)", text
    return "latin-1", "neither UTF-8 nor Windows-1252", head.decode("latin-1")


def _delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        header = lines[0] if lines else ""
        counts = {d: header.count(d) for d in ",;\t|"}
        return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _workbook_rows(path: Path) -> list[list[str]]:
    import python_calamine

    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        rows = sheet.to_python(nrows=SAMPLE_ROWS + 1)
    except Exception as exc:  # calamine raises its own error types
        raise InputError(
            [Problem(str(path), f"cannot read the workbook: {exc}")],
            hint="open it in Excel or LibreOffice and save it again as .xlsx",
        ) from None
    return [["" if cell is None else str(cell) for cell in row] for row in rows]


def _json_rows(path: Path, source: Source) -> list[list[str]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            [Problem(str(path), f"not a JSON document: {exc}")], hint="export it again"
        ) from None
    records, where = document, None
    if isinstance(document, dict):
        lists = [k for k, v in document.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(
                [Problem(str(path), "no single list of records at its top level")],
                hint="write this source's `records:` option by hand (see README, Connectors)",
            )
        where = lists[0]
        records = document[where]
    objects = [r for r in records if isinstance(r, dict)]
    if not objects:
        raise InputError([Problem(str(path), "holds no records (JSON objects)")], hint="")
    if where:
        source.options["records"] = where
        source.why["records"] = "the list of records"
    flat = [_flat(r) for r in objects[:SAMPLE_ROWS]]
    keys: list[str] = list(dict.fromkeys(k for r in flat for k in r))
    return [keys] + [[_text(r.get(k)) for k in keys] for r in flat]


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting as dotted keys (``price.amount``), as the JSON connector maps."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            out[key] = value
    return out


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


# ---------------------------------------------------------------- the mapping


def normalise(name: str) -> str:
    """``VK netto`` → ``vknetto``, ``Währung`` → ``wahrung``: letters and digits only."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in folded if ch.isalnum() and not unicodedata.combining(ch))


def propose_mapping(header: Sequence[str]) -> dict[str, Any]:
    """The mapping the column names suggest: each key its best column, each column once."""
    taken: set[str] = set()
    mapping: dict[str, Any] = {}
    by_name = {normalise(c): c for c in reversed(header) if c}
    for key, names in NAMES.items():
        for wanted in names:
            prefix = wanted.endswith("*")
            stem = wanted.rstrip("*")
            found = next(
                (
                    column
                    for norm, column in by_name.items()
                    if column not in taken and (norm.startswith(stem) if prefix else norm == stem)
                ),
                None,
            )
            if found is not None:
                mapping[key] = found
                taken.add(found)
                break
    stock = {
        _location(normalise(c), prefix): c
        for c in header
        if c not in taken
        for prefix in STOCK_PREFIXES
        if normalise(c).startswith(prefix)
    }
    if len(stock) == 1 and next(iter(stock)) == "default":
        mapping["stock"] = stock["default"]
    elif stock:
        mapping["stock"] = dict(stock.items())
    return {key: mapping[key] for key in ORDER if key in mapping}


def _location(norm: str, prefix: str) -> str:
    rest = norm[len(prefix) :].lstrip("_")
    return rest or "default"


def _preset(header: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """The known export this header is (asked of the csv connector, which knows the
    presets), with what its preset maps here; None when it is none of them."""
    recognise = getattr(load_connector("csv"), "recognise", None)
    return recognise(header) if recognise is not None else None


def _columns(mapping: dict[str, Any]) -> Iterable[str]:
    for value in mapping.values():
        if isinstance(value, dict):
            yield from value.values()
        else:
            yield value


# ---------------------------------------------------------------- values


_COMMA = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d{1,4}(\s*\D{0,4})?$|^-?\d+,\d{1,4}(\s*\D{0,4})?$")
_POINT = re.compile(r"^-?\d{1,3}(,\d{3})*\.\d{1,4}(\s*\D{0,4})?$|^-?\d+\.\d{1,4}(\s*\D{0,4})?$")
_DOTTED_DATE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}$")
_SLASHED_DATE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")


_CODED = re.compile(r"[A-Z]{3}\b|[€$£¥]")


def _numbers(source: Source, mapping: dict[str, Any], body: list[list[str]]) -> bool:
    """The decimal style of the amounts and the date format of the sale dates; whether the
    amounts carry their currency (``49.99 EUR``)."""
    if source.connector == "xlsx":  # cells are typed: numbers are numbers
        return False
    index = {c: n for n, c in enumerate(source.header)}

    def values(key: str) -> list[str]:
        column = mapping.get(key)
        if not isinstance(column, str) or column not in index:
            return []
        at = index[column]
        return [row[at].strip() for row in body if at < len(row) and row[at].strip()]

    amounts = values("price") + values("sale_price")
    comma = sum(1 for v in amounts if _COMMA.match(v))
    point = sum(1 for v in amounts if _POINT.match(v))
    preset_decimal = "preset" in source.options
    if comma > point:
        source.options["decimal"] = ","
        example = next(v for v in amounts if _COMMA.match(v))
        source.why["decimal"] = f"amounts are written like {example}"
        if any("." in v for v in amounts if _COMMA.match(v)):
            source.options["thousands"] = "."
            source.why["thousands"] = "as in 1.299,00"
    elif point and not preset_decimal:
        source.options["decimal"] = "."
        example = next(v for v in amounts if _POINT.match(v))
        source.why["decimal"] = f"amounts are written like {example}"
    dates = values("sale_start") + values("sale_end")
    if dates and all(_DOTTED_DATE.match(v) for v in dates):
        source.options["date_format"] = "%d.%m.%Y"
        source.why["date_format"] = f"dates are written like {dates[0]}"
    elif dates and all(_SLASHED_DATE.match(v) for v in dates):
        source.options["date_format"] = "%m/%d/%Y"
        source.why["date_format"] = f"dates like {dates[0]}: month first assumed, check it"
    return bool(amounts) and all(_CODED.search(v) for v in amounts)


# ---------------------------------------------------------------- the config text


def render(
    canonical: Source,
    channels: dict[str, Source],
    base: Path,
    *,
    timezone: str,
    today: date,
) -> str:
    """The commented config for ``canonical`` and ``channels`` (paths relative to ``base``)."""
    lines = [
        f"# omnisync config written by `omnisync init` on {today.isoformat()}.",
        "# Every guess has a comment: read them, then `omnisync validate` and `omnisync check`.",
        "# Every key is explained in config.example.yaml and the README.",
        "version: 1",
        "settings:",
        f"  timezone: {_scalar(timezone)}",
        "  state: .omnisync/state.db       # run history (SQLite, beside this file)",
        "",
        "canonical:                        # the source of truth (ERP / PIM export)",
    ]
    lines += _source_lines(canonical, base, "  ", canonical=True)
    lines += ["", "channels:"]
    for name, source in channels.items():
        lines.append(f"  {_key(name)}:")
        lines += _source_lines(source, base, "    ")
        lines += [
            "    # expect:                     # how this channel's values derive from canonical",
            "    #   price: {shows: gross, vat: 19, rounding: {mode: cents}}",
            "    #   stock: {buffer: 0}",
        ]
    return "\n".join(lines) + "\n"


def _source_lines(source: Source, base: Path, indent: str, *, canonical: bool = False) -> list[str]:
    try:
        shown = source.path.resolve().relative_to(base.resolve())
    except ValueError:
        shown = source.path.resolve()
    out = [f"{indent}connector: {source.connector}"]
    for key, (value, why) in (source.block if canonical else {}).items():
        out.append(_commented(f"{indent}{key}: {_scalar(value)}", why))
    out.append(f"{indent}options:")
    options = {"path": str(shown), **source.options}
    for key, value in options.items():
        if key == "mapping":
            continue
        out.append(_commented(f"{indent}  {key}: {_scalar(value)}", source.why.get(key, "")))
    mapping = source.options.get("mapping")
    if mapping:
        out.append(f"{indent}  mapping:                     # omnisync field: column")
        for key, value in mapping.items():
            if isinstance(value, dict):
                out.append(f"{indent}    {key}:                       # location: column")
                for loc, column in value.items():
                    out.append(f"{indent}      {_key(loc)}: {_scalar(column)}")
            else:
                out.append(f"{indent}    {key}: {_scalar(value)}")
    if source.unmapped:
        shown_cols = ", ".join(source.unmapped[:12]) + (" ..." if len(source.unmapped) > 12 else "")
        out.append(f"{indent}  # not mapped: {shown_cols}")
    return out


def _commented(line: str, why: str) -> str:
    return f"{line.ljust(40)} # {why}" if why else line


def _scalar(value: Any) -> str:
    """``value`` as a YAML scalar (JSON strings are valid YAML)."""
    if (
        isinstance(value, str)
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", value)
        and (value.lower() not in ("yes", "no", "on", "off", "true", "false", "null", "y", "n"))
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


def _key(name: str) -> str:
    return _scalar(name)


def channel_name(path: Path, taken: Iterable[str]) -> str:
    """A channel name from a file name (``webshop_woocommerce.csv`` → ``webshop_woocommerce``)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_").lower() or "channel"
    name, n, used = stem, 2, set(taken)
    while name in used:
        name, n = f"{stem}_{n}", n + 1
    return name
