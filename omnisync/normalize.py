"""Where textual forms become typed values: one place, pure functions, tested with tables.

Every source speaks its own dialect: ``19,90``, ``1.299,00``, ``"15.00 EUR"``, ``€19,99``,
``24.12.2026``, ``in stock``. Connectors hand raw values to these functions so that values that
mean the same become the same value before anything is compared. Each function raises
:class:`ValueError` with a short message a user can act on (``'12,3,4' is not a number``);
callers add where the value came from.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time
from decimal import Decimal
from typing import Literal

from omnisync.models import Availability, Money

DecimalSeparator = Literal[".", ",", "auto"]

#: Characters that only ever group thousands (never a decimal separator): space, NBSP,
#: narrow NBSP (French/Swiss typography), thin space, apostrophes (Swiss ``1'299.00``).
_SPACE_GROUPING = frozenset(" \u00a0\u202f\u2009'’")
_MINUS = "-\u2212"  # ASCII hyphen-minus and the Unicode minus sign
_DIGITS = frozenset("0123456789")
# re.ASCII: Python's \d also matches the digits of other scripts ("\u0663" is 3 to int() and
# Decimal()); a price or a stock written that way is a mistake to report, never a number.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+", re.ASCII)
_PLAIN = re.compile(r"[+-]?\d+(?:([.,])(\d+))?", re.ASCII)
_GROUPED = re.compile(r"\d{1,3}(?:\|\d{3})+", re.ASCII)  # "|" stands for any grouping mark

#: The largest amounts and quantities the diff engine holds: DECIMAL(18,6) keeps 12 integer
#: digits, stock is a BIGINT (kept to 18 digits, so sums and buffers stay in range).
MAX_AMOUNT_DIGITS = 12
MAX_QUANTITY_DIGITS = 18
_AMOUNT_LIMIT = Decimal(10) ** MAX_AMOUNT_DIGITS
_QUANTITY_LIMIT = 10**MAX_QUANTITY_DIGITS


def parse_decimal(
    text: str | Decimal | int | float,
    decimal: DecimalSeparator = "auto",
    thousands: str | None = None,
) -> Decimal:
    """A number from its written form: ``19.9``, ``19,90``, ``1.299,00``, ``1'299.00``, ``-5``.

    ``decimal="auto"`` decides per value: with both ``.`` and ``,`` the last one is the decimal
    separator; a single separator followed by exactly three digits (``1,299``) is ambiguous and
    rejected; otherwise a single separator is the decimal one. Thousands groupings are checked
    (``19.99`` is not read as 1999 when ``decimal=","``), so a wrong setting fails loudly.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number")
    if isinstance(text, int):
        return Decimal(text)
    if isinstance(text, float):
        # A float from a driver: its shortest repr is what was written, its binary value is not.
        text = Decimal(repr(text))
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise ValueError(f"'{text}' is not a number")
        return text
    if not isinstance(text, str):
        raise ValueError(f"expected a number, got {_kind(text)}")
    raw = text
    body = text.strip()
    if not body:
        raise ValueError("the value is empty")
    if plain := _PLAIN.fullmatch(body):
        # Fast path for the common forms "12", "-19.99", "19,99" (when that reading is certain).
        mark, fraction = plain.groups()
        if mark is None:
            return Decimal(body)
        if mark == decimal or (decimal == "auto" and thousands != mark and len(fraction) != 3):
            return Decimal(body.replace(",", "."))
    if _SCIENTIFIC.fullmatch(body):
        raise ValueError(
            f"{raw!r} is in scientific notation (a spreadsheet probably reformatted it); "
            "export the column as text"
        )
    sign = ""
    if body[0] in _MINUS or body[0] == "+":
        sign = "-" if body[0] in _MINUS else ""
        body = body[1:]
    allowed = _DIGITS | {".", ","} | _SPACE_GROUPING | ({thousands} if thousands else set())
    if foreign := next((c for c in body if c.isdigit() and c not in _DIGITS), None):
        raise ValueError(
            f"{raw!r} is not a number: U+{ord(foreign):04X} is a digit of another script "
            "(write the digits 0-9)"
        )
    if not any(c in _DIGITS for c in body) or any(c not in allowed for c in body):
        raise ValueError(f"{raw!r} is not a number")

    point = _decimal_char(raw, body, decimal, thousands)
    grouping = set(_SPACE_GROUPING)
    if thousands is not None:
        grouping.add(thousands)
    else:
        # Without an explicit thousands separator the other punctuation mark may group digits;
        # the grouping check below rejects it when it does not look like a grouping.
        grouping |= {".", ","} - {point}
    integer, fraction = body, ""
    if point is not None:
        if body.count(point) > 1:
            raise ValueError(f"{raw!r} is not a number")
        integer, _, fraction = body.partition(point)
    if not fraction.isdigit() and fraction:
        raise ValueError(_not_a_number(raw, decimal))
    if any(c in grouping for c in integer):
        marked = "".join("|" if c in grouping else c for c in integer)
        if not _GROUPED.fullmatch(marked):
            raise ValueError(_not_a_number(raw, decimal))
        integer = marked.replace("|", "")
    if not integer.isdigit() and integer:
        raise ValueError(_not_a_number(raw, decimal))
    if not integer and not fraction:
        raise ValueError(f"{raw!r} is not a number")
    return Decimal(f"{sign}{integer or '0'}.{fraction}" if fraction else sign + integer)


def _decimal_char(
    raw: str, body: str, decimal: DecimalSeparator, thousands: str | None
) -> str | None:
    """The decimal separator of ``body``, or ``None`` when it has no fractional part."""
    if decimal != "auto":
        return decimal
    if thousands in (".", ","):
        return "," if thousands == "." else "."
    dot, comma = body.rfind("."), body.rfind(",")
    if dot >= 0 and comma >= 0:
        return "." if dot > comma else ","
    if dot < 0 and comma < 0:
        return None
    mark = "." if dot >= 0 else ","
    if body.count(mark) > 1:
        return None  # "1,234,567": a decimal separator appears once, so these group thousands
    before, _, after = body.partition(mark)
    if re.fullmatch(r"[1-9]\d{0,2}", before) and re.fullmatch(r"\d{3}", after):
        raise ValueError(
            f"{raw!r} is ambiguous (a thousands or a decimal separator?): "
            "set the `decimal` option to '.' or ','"
        )
    return mark


def _not_a_number(raw: str, decimal: DecimalSeparator) -> str:
    if decimal == "auto":
        return f"{raw!r} is not a number"
    return f"{raw!r} is not a number with decimal separator {decimal!r}"


#: Currency symbols that name one currency unambiguously enough for shop exports.
CURRENCY_SYMBOLS: dict[str, str] = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY"}


def parse_money(
    text: str | Decimal | int | float,
    *,
    decimal: DecimalSeparator = "auto",
    thousands: str | None = None,
    default_currency: str | None = None,
) -> Money:
    """An amount with its currency: ``19.99 EUR``, ``EUR 19.99``, ``19,99 €``, ``$19.99``.

    A value without a currency (also a number from JSON) takes ``default_currency``.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not an amount")
    if isinstance(text, Decimal | int | float):
        return Money(parse_decimal(text), _need_currency(None, default_currency, str(text)))
    if not isinstance(text, str):
        raise ValueError(f"expected an amount, got {_kind(text)}")
    body = text.strip()
    if body and not re.search(r"[0-9]", body):
        # "N/A", "tbd", "-": a placeholder, not an amount with an odd currency code.
        raise ValueError(
            f"{text!r} has no amount (no digits): write one such as 19.99 EUR,"
            " or leave the cell blank when the price is unknown"
        )
    currency: str | None = None
    symbols = [symbol for symbol in CURRENCY_SYMBOLS if symbol in body]
    if symbols:
        if len(symbols) > 1 or body.count(symbols[0]) > 1:
            raise ValueError(f"{text!r} is not an amount")
        currency = CURRENCY_SYMBOLS[symbols[0]]
        body = body.replace(symbols[0], "").strip()
    code: str | None = None
    if match := re.fullmatch(r"([A-Za-z]+)\s*(.*)", body):
        code, body = match.groups()
    elif match := re.fullmatch(r"(.*?)\s*([A-Za-z]+)", body):
        body, code = match.groups()
    if code is not None:
        code = _currency_code(code, text)
        if currency is not None and currency != code:
            raise ValueError(f"{text!r} names two currencies ({currency} and {code})")
        currency = code
    body = re.sub(r"^([+\-\u2212])\s+", r"\1", body)  # "- €5" leaves "- 5"
    if not body:
        raise ValueError(f"{text!r} has no amount")
    amount = parse_decimal(body, decimal, thousands)
    return Money(amount, _need_currency(currency, default_currency, text))


def _currency_code(code: str, text: str) -> str:
    if len(code) != 3:
        raise ValueError(f"{text!r}: currency code {code!r} must be 3 letters (ISO 4217)")
    return code.upper()


def _need_currency(currency: str | None, default: str | None, text: str) -> str:
    if currency:
        return currency
    if default:
        return default.upper()
    raise ValueError(f"no currency: {text!r} names none; set options.currency")


def parse_int(text: str | int | Decimal | float, thousands: str | None = None) -> int:
    """A whole number: ``12``, ``-3``, ``12.0``, ``1.234`` with ``thousands="."``."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a whole number")
    if isinstance(text, int):
        return text
    point: DecimalSeparator = "," if thousands == "." else "."
    value = parse_decimal(text, point, thousands)
    if value != value.to_integral_value():
        raise ValueError(f"{str(text).strip()!r} must be a whole number")
    return int(value)


def check_amount(value: Decimal) -> Decimal:
    """``value`` when the engine holds it (fewer than 13 integer digits), else ValueError."""
    if abs(value) >= _AMOUNT_LIMIT:
        raise ValueError(
            f"{value} is too large: amounts have at most {MAX_AMOUNT_DIGITS} digits before "
            "the decimal point"
        )
    return value


def check_quantity(value: int) -> int:
    """``value`` when the engine holds it (at most 18 digits), else ValueError."""
    if abs(value) >= _QUANTITY_LIMIT:
        raise ValueError(
            f"{value} is too large: quantities have at most {MAX_QUANTITY_DIGITS} digits"
        )
    return value


_GERMAN_DATE = re.compile(
    r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", re.ASCII
)
_ISO_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}", re.ASCII)


def parse_datetime(
    text: str | datetime, fmt: str | None = None, *, end_of_day: bool = False
) -> datetime:
    """A moment from ISO 8601 (``2026-12-24``, ``2026-12-24T18:00+01:00``), German
    ``24.12.2026 [18:00[:00]]`` or the strptime format ``fmt``.

    A date without a time means midnight, or 23:59:59 with ``end_of_day`` (the last moment of
    a sale that "ends on" that day). The result is naive unless the text carries an offset.
    """
    if isinstance(text, datetime):
        return text
    body = text.strip()
    if fmt is not None:
        try:
            parsed = datetime.strptime(body, fmt)
        except ValueError:
            raise ValueError(f"{body!r} does not match date_format {fmt!r}") from None
        date_only = not any(d in fmt for d in ("%H", "%I", "%M", "%S", "%X", "%c", "%T"))
    elif match := _GERMAN_DATE.fullmatch(body):
        day, month, year, hour, minute, second = match.groups()
        date_only = hour is None
        try:
            parsed = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        except ValueError as exc:
            raise ValueError(f"{body!r} is not a valid date ({exc})") from None
    else:
        date_only = bool(_ISO_DATE_ONLY.fullmatch(body))
        try:
            parsed = datetime.fromisoformat(body)
        except ValueError:
            raise ValueError(
                f"{body!r} is not a date (expected ISO 8601 like 2026-12-24 or "
                "2026-12-24T18:00+01:00, or 24.12.2026; set date_format for other forms)"
            ) from None
    if date_only and end_of_day:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59), parsed.tzinfo)
    return parsed


def parse_sale_window(text: str) -> tuple[datetime | None, datetime | None]:
    """Google's ``start/end`` range (``2016-02-24T13:00-0800/2016-02-29T15:30-0800``).

    A date-only end means the end of that day; an empty side means open-ended.
    """
    body = text.strip()
    if body.count("/") != 1:
        raise ValueError(
            f"{body!r} is not a date range (expected start/end, e.g. 2026-12-01/2026-12-24)"
        )
    first, _, second = (part.strip() for part in body.partition("/"))
    start = parse_datetime(first) if first else None
    end = parse_datetime(second, end_of_day=True) if second else None
    if start is not None and end is not None:
        comparable = (start.tzinfo is None) == (end.tzinfo is None)
        if comparable and end < start:
            raise ValueError(f"{body!r} ends before it starts")
    return start, end


#: Availability words, lower case with spaces (``_``/``-`` are read as spaces).
AVAILABILITY_WORDS: dict[str, Availability] = {
    "in stock": Availability.IN_STOCK,
    "instock": Availability.IN_STOCK,
    "available": Availability.IN_STOCK,
    "out of stock": Availability.OUT_OF_STOCK,
    "outofstock": Availability.OUT_OF_STOCK,
    "sold out": Availability.OUT_OF_STOCK,
    "soldout": Availability.OUT_OF_STOCK,
    "backorder": Availability.BACKORDER,
    "onbackorder": Availability.BACKORDER,
    "on backorder": Availability.BACKORDER,
    "preorder": Availability.PREORDER,
    "pre order": Availability.PREORDER,
    # The in-stock flags of WooCommerce ("In stock?") and Magento (is_in_stock) exports.
    "1": Availability.IN_STOCK,
    "0": Availability.OUT_OF_STOCK,
}
_SCHEMA_ORG = re.compile(r"^(?:https?://)?schema\.org/", re.IGNORECASE)


def parse_availability(text: str) -> Availability:
    """``in stock``/``in_stock``/``available``, ``out of stock``/``sold out``, ``backorder``,
    ``preorder``, the flags ``1``/``0`` (any case; schema.org URLs such as ``https://schema.org/InStock`` too)."""
    key = _SCHEMA_ORG.sub("", text.strip()).lower().replace("_", " ").replace("-", " ")
    key = " ".join(key.split())
    try:
        return AVAILABILITY_WORDS[key]
    except KeyError:
        accepted = "in stock, out of stock, sold out, backorder, preorder (or in_stock, ...)"
        raise ValueError(f"{text.strip()!r} is not an availability; accepted: {accepted}") from None


def clean_text(value: object) -> str | None:
    """Text as compared: Unicode NFC, line breaks as ``\\n``, stripped; blank means ``None``.

    Numbers (from JSON) become their text; objects, lists and booleans are refused.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"expected text, got {_kind(value)}")
    text = unicodedata.normalize("NFC", str(value))
    # Windows exports keep CRLF inside quoted fields; the same text must compare equal.
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class MangledValue(ValueError):
    """A value another program damaged beyond repair (a barcode a spreadsheet turned into
    ``3.65275E+11``): the value is lost, the rest of its row is still good. Readers that can
    note it per row do so (:class:`~omnisync.models.QualityNote`) instead of refusing the file."""


def normalize_gtin(text: str | int | None) -> str | None:
    """A GTIN (EAN/UPC/ISBN) as 14 digits, zero-padded as GS1 stores it, so that
    ``4006381333931``, ``04006381333931`` and a UPC that lost its leading zero in a spreadsheet
    are one value. Spaces and hyphens are ignored; blank means ``None``."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a GTIN")
    body = str(text).strip()
    if not body:
        return None
    if _SCIENTIFIC.fullmatch(body):
        raise MangledValue(
            f"{body!r} is not a GTIN: a spreadsheet (Excel) turned it into scientific notation "
            "and dropped digits; export the column as text"
        )
    digits = re.sub(r"[\s\-]", "", body)
    if not (digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 14):
        raise ValueError(f"{body!r} is not a GTIN (8 to 14 digits)")
    return digits.zfill(14)


# ISO 4217 currencies whose minor unit is not the usual cent.
_ZERO_DECIMALS = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND"}
    | {"VUV", "XAF", "XOF", "XPF"}
)
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217): 2, or 0 (JPY), or 3 (KWD)."""
    code = currency.upper()
    if code in _ZERO_DECIMALS:
        return 0
    if code in _THREE_DECIMALS:
        return 3
    return 2
