"""How a file writes a value, learnt from the cell it replaces or from the column's other cells:
``1.299,00`` or ``1299.00``, ``29.99 EUR`` or ``€29,99``, ``24.12.2026`` or
``2026-12-24T23:59+0100``, ``in stock`` or ``in_stock``. Pure functions and small value
classes; :mod:`.row_writer` decides which example a value follows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from omnisync.errors import ChangeRejected
from omnisync.models import Availability
from omnisync.normalize import CURRENCY_SYMBOLS


class _Missing:
    """A JSON key that is absent (as opposed to ``null``)."""

    def __repr__(self) -> str:
        return "MISSING"


#: What a row returns for a column it does not have.
MISSING: Any = _Missing()


def blank(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str) and not value.strip())


_SYMBOL_OF = {code: symbol for symbol, code in CURRENCY_SYMBOLS.items()}
_NUMBER = re.compile(r"[-+\u2212]?\d(?:[\d.,'’ \u00a0\u202f\u2009]*\d)?")


@dataclass(frozen=True)
class AmountStyle:
    """How a cell writes an amount: text around the number, and its separators when shown."""

    prefix: str = ""
    suffix: str = ""
    decimal: str | None = None
    thousands: str | None = None

    @property
    def marked(self) -> bool:
        """Whether the cell names its currency (``EUR``, ``€``)."""
        around = self.prefix + self.suffix
        return any(c.isalpha() for c in around) or any(s in around for s in CURRENCY_SYMBOLS)

    @classmethod
    def of(cls, text: str) -> AmountStyle | None:
        match = _NUMBER.search(text)
        if match is None:
            return None
        number = match.group()
        marks = [c for c in number if not c.isdigit() and c not in "+-\u2212"]
        decimal = thousands = None
        if marks:
            last = marks[-1]
            fraction = number.rsplit(last, 1)[1]
            if last in ".," and (len(set(marks)) > 1 or (len(marks) == 1 and len(fraction) != 3)):
                decimal = last
                thousands = marks[0] if len(marks) > 1 else None
            elif len(marks) > 1 or last not in ".,":
                thousands = last  # "1.299.000" or "1 299": grouping only
        return cls(text[: match.start()], text[match.end() :], decimal, thousands)


def format_amount(
    amount: Decimal, places: int, decimal: str = ".", thousands: str | None = None
) -> str:
    """``amount`` with at least ``places`` decimals (never rounded), in the given separators."""
    value = amount.normalize() if amount == amount.to_integral_value() else amount
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        value = value.quantize(Decimal(1).scaleb(-places))
    whole, _, fraction = f"{abs(value):f}".partition(".")
    if thousands:
        head = len(whole) % 3 or 3
        whole = thousands.join(
            [whole[:head], *(whole[i : i + 3] for i in range(head, len(whole), 3))]
        )
    sign = "-" if value < 0 else ""
    return sign + whole + (decimal + fraction if fraction else "")


def recode(affix: str, currency: str) -> str:
    """``affix`` naming ``currency`` instead of the currency it names."""
    affix = re.sub(r"[A-Za-z]{3}", currency, affix)
    for symbol in CURRENCY_SYMBOLS:
        if symbol in affix:
            affix = affix.replace(symbol, _SYMBOL_OF.get(currency, currency))
    return affix


_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%X", "%c", "%T")
_GERMAN = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:([ T])(\d{1,2}):(\d{2})(:\d{2})?)?")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:([ T])(\d{2}):(\d{2})(:\d{2})?(\.\d+)?)?\s*"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)


@dataclass(frozen=True)
class DateStyle:
    """How a cell writes a moment: a strftime format for the wall-clock part and the form of
    its offset (``None``: no offset, the file's zone applies)."""

    fmt: str
    #: ``"Z"``, ``"+HH:MM"``, ``"+HHMM"``, ``"+HH"`` or ``None``.
    offset: str | None = None
    #: The sample's own offset, used when no zone is configured.
    fixed: tzinfo | None = None

    @property
    def date_only(self) -> bool:
        return not any(d in self.fmt for d in _TIME_DIRECTIVES)

    @classmethod
    def of(cls, text: str) -> DateStyle | None:
        body = text.strip()
        if match := _GERMAN.fullmatch(body):
            fmt = "%d.%m.%Y"
            if match.group(4):
                fmt += match.group(4) + "%H:%M" + (":%S" if match.group(7) else "")
            return cls(fmt)
        if match := _ISO.fullmatch(body):
            fmt = "%Y-%m-%d"
            if match.group(4):
                fmt += match.group(4) + "%H:%M" + (":%S" if match.group(7) else "")
            offset = match.group(9)
            if offset is None:
                return cls(fmt)
            if offset == "Z":
                return cls(fmt, "Z", UTC)
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            form = "+HH:MM" if ":" in offset else "+HHMM" if len(digits) == 4 else "+HH"
            return cls(fmt, form, timezone(-delta if offset[0] == "-" else delta))
        return None

    def format(self, moment: datetime, zone: tzinfo | None, *, end: bool, column: str) -> str:
        """``moment`` as this style writes it; :class:`ChangeRejected` when a date-only column
        cannot hold it (a start that is not midnight, an end that is not the end of a day)."""
        if self.offset == "Z":
            target: tzinfo = UTC
        elif self.offset is not None:
            target = zone or self.fixed or UTC
        else:
            target = zone or UTC
        local = moment.astimezone(target)
        if self.date_only and (local.hour, local.minute) != ((23, 59) if end else (0, 0)):
            what = "ends" if end else "starts"
            raise ChangeRejected(
                f"the sale {what} at {local:%Y-%m-%d %H:%M}, but column {column!r} holds dates "
                f"only (a sale {what} {'at the end' if end else 'at the start'} of a day there)"
            )
        text = local.strftime(self.fmt)
        if self.offset == "Z":
            return text + "Z"
        if self.offset is not None:
            minutes = int((local.utcoffset() or timedelta()).total_seconds() // 60)
            sign, minutes = ("-" if minutes < 0 else "+"), abs(minutes)
            hours, rest = divmod(minutes, 60)
            if self.offset == "+HH:MM":
                text += f"{sign}{hours:02d}:{rest:02d}"
            elif self.offset == "+HHMM":
                text += f"{sign}{hours:02d}{rest:02d}"
            else:
                text += f"{sign}{hours:02d}" + (f":{rest:02d}" if rest else "")
        return text


#: Dates in a column with no example to follow: ISO 8601 with the offset, unambiguous.
DEFAULT_DATE = DateStyle("%Y-%m-%dT%H:%M:%S", "+HH:MM")
#: Google's documented ``sale_price_effective_date`` form.
DEFAULT_WINDOW = DateStyle("%Y-%m-%dT%H:%M", "+HHMM")

_SCHEMA_ORG = {
    Availability.IN_STOCK: "InStock",
    Availability.OUT_OF_STOCK: "OutOfStock",
    Availability.BACKORDER: "BackOrder",
    Availability.PREORDER: "PreOrder",
}


def availability_text(value: Availability, sample: str | None) -> str:
    """``value`` in the vocabulary of ``sample``: ``in_stock``, ``in stock``, ``In Stock``,
    ``instock``, ``https://schema.org/InStock``."""
    if not sample:
        return value.value
    body = sample.strip()
    lowered = body.lower()
    if "schema.org/" in lowered:
        return body[: lowered.index("schema.org/") + len("schema.org/")] + _SCHEMA_ORG[value]
    words = value.value.split("_")
    joiner = next((c for c in "_ -" if c in body), "")
    if body.isupper():
        words = [w.upper() for w in words]
    elif body.istitle():
        words = [w.capitalize() for w in words]
    elif body[:1].isupper():
        words[0] = words[0].capitalize()
    return joiner.join(words)


def gtin_text(value: str, old: Any) -> str:
    """A normalised (14-digit) GTIN as wide as the cell wrote it (13 digits, EAN, by default)."""
    digits = value.lstrip("0") or "0"
    previous = re.sub(r"[\s\-]", "", str(old)) if not blank(old) else ""
    width = len(previous) if previous.isdigit() else 13
    return digits.zfill(max(width, len(digits)))


def parse_moment(value: Any) -> datetime | None:
    """A moment from its JSON form (ISO 8601; no offset means UTC, as in omnisync.sdk.values)."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def minute(moment: datetime | None, zone: tzinfo | None) -> datetime | None:
    """``moment`` in UTC to the minute (naive values are in ``zone``), as :func:`same` compares."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
