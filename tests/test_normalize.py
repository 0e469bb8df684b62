"""The textual forms sources use, and the one value each becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from omnisync.models import Availability, Money
from omnisync.normalize import (
    clean_text,
    minor_units,
    normalize_gtin,
    parse_availability,
    parse_datetime,
    parse_decimal,
    parse_int,
    parse_money,
    parse_sale_window,
)

D = Decimal


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "expected"),
    [
        ("19.9", "auto", None, D("19.9")),
        ("19,90", "auto", None, D("19.90")),
        ("1.299,00", "auto", None, D("1299.00")),
        ("1.299,00", ",", ".", D("1299.00")),
        ("1,299.00", "auto", None, D("1299.00")),
        ("1'299.00", "auto", None, D("1299.00")),
        ("1’299.00", "auto", None, D("1299.00")),
        ("1\u00a0299,50", "auto", None, D("1299.50")),
        ("1\u202f299,50", "auto", None, D("1299.50")),
        ("  19.99 ", "auto", None, D("19.99")),
        ("-5", "auto", None, D("-5")),
        ("+5,5", "auto", None, D("5.5")),
        ("\u22123,5", "auto", None, D("-3.5")),
        ("0,125", "auto", None, D("0.125")),
        ("1,234,567", "auto", None, D("1234567")),
        ("1.234.567,89", "auto", None, D("1234567.89")),
        (".5", "auto", None, D("0.5")),
        ("1.299", ",", None, D("1299")),
        ("1,299", ".", None, D("1299")),
        ("1,299", "auto", ".", D("1.299")),
        ("1234,567", "auto", None, D("1234.567")),
        (D("4.5"), "auto", None, D("4.5")),
        (7, "auto", None, D("7")),
    ],
)
def test_parse_decimal_accepts(text: str, decimal: str, thousands: str | None, expected: Decimal):
    value = parse_decimal(text, decimal, thousands)
    assert value == expected
    assert str(value) == str(expected)  # exact digits, not just an equal number


@pytest.mark.parametrize(
    ("text", "decimal", "message"),
    [
        ("12,3,4", "auto", "'12,3,4' is not a number"),
        ("1,299", "auto", "ambiguous"),
        ("1.299", "auto", "set the `decimal` option"),
        ("19.99", ",", "not a number with decimal separator ','"),
        ("1.299,00", ".", "not a number"),
        ("NaN", "auto", "not a number"),
        ("Infinity", "auto", "not a number"),
        ("4.00638E+12", "auto", "scientific notation"),
        ("1e5", "auto", "scientific notation"),
        ("abc", "auto", "not a number"),
        ("12 €", "auto", "not a number"),
        ("", "auto", "empty"),
        ("-", "auto", "not a number"),
        ("1.2.3,4", "auto", "not a number"),
        (Decimal("NaN"), "auto", "not a number"),
        (True, "auto", "not a number"),
    ],
)
def test_parse_decimal_rejects(text: str, decimal: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_decimal(text, decimal)


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("19.99 EUR", None, Money(D("19.99"), "EUR")),
        ("EUR 19.99", None, Money(D("19.99"), "EUR")),
        ("19,99 €", None, Money(D("19.99"), "EUR")),
        ("€19,99", None, Money(D("19.99"), "EUR")),
        ("-€5", None, Money(D("-5"), "EUR")),
        ("$19.99", None, Money(D("19.99"), "USD")),
        ("£5", None, Money(D("5"), "GBP")),
        ("¥1200", None, Money(D("1200"), "JPY")),
        ("CHF 12.50", None, Money(D("12.50"), "CHF")),
        ("12.50chf", None, Money(D("12.50"), "CHF")),
        ("19.99", "EUR", Money(D("19.99"), "EUR")),
        ("15.00 USD", "EUR", Money(D("15.00"), "USD")),  # the value's own currency wins
        (D("19.9"), "eur", Money(D("19.9"), "EUR")),
        (20, "EUR", Money(D("20"), "EUR")),
    ],
)
def test_parse_money_accepts(text: str, default: str | None, expected: Money):
    assert parse_money(text, decimal="auto", thousands=None, default_currency=default) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("19.99", "no currency: .* set options.currency"),
        (D("19.99"), "no currency"),
        ("19.99 EURO", "must be 3 letters"),
        ("€19.99 USD", "two currencies"),
        ("EUR", "no amount"),
        ("19.99 EUR EUR", "not a number"),
        ("$5 €", "not an amount"),
        # A placeholder is not a currency code "N" (it used to say "must be 3 letters").
        ("N/A", r"'N/A' has no amount \(no digits\).*leave the cell blank"),
        ("tbd", "has no amount"),
    ],
)
def test_parse_money_rejects(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_money(text, decimal="auto", thousands=None, default_currency=None)


def test_parse_money_uses_the_separators_given():
    assert parse_money("1.299,00 €", decimal=",", thousands=".", default_currency=None) == Money(
        D("1299.00"), "EUR"
    )


@pytest.mark.parametrize(
    ("text", "thousands", "expected"),
    [
        ("12", None, 12),
        (" 12 ", None, 12),
        ("-3", None, -3),
        ("12.0", None, 12),
        ("1.234", ".", 1234),
        ("1,234", ",", 1234),
        ("1,234", None, 1234),
        (7, None, 7),
        (D("5"), None, 5),
    ],
)
def test_parse_int_accepts(text: str, thousands: str | None, expected: int):
    assert parse_int(text, thousands) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12.5", "must be a whole number"),
        ("1.234", "must be a whole number"),  # without thousands=".", a decimal
        ("many", "not a number"),
        (True, "not a whole number"),
        ("", "empty"),
    ],
)
def test_parse_int_rejects(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_int(text)


PLUS_ONE = timezone(timedelta(hours=1))
MINUS_EIGHT = timezone(timedelta(hours=-8))


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("2026-12-24", None, datetime(2026, 12, 24)),
        ("2026-12-24T18:00", None, datetime(2026, 12, 24, 18, 0)),
        ("2026-12-24 18:00:30", None, datetime(2026, 12, 24, 18, 0, 30)),
        ("2026-12-24T18:00+01:00", None, datetime(2026, 12, 24, 18, 0, tzinfo=PLUS_ONE)),
        ("2016-02-24T13:00-0800", None, datetime(2016, 2, 24, 13, 0, tzinfo=MINUS_EIGHT)),
        ("2026-12-24T18:00Z", None, datetime(2026, 12, 24, 18, 0, tzinfo=UTC)),
        ("24.12.2026", None, datetime(2026, 12, 24)),
        ("24.12.2026 18:00", None, datetime(2026, 12, 24, 18, 0)),
        ("1.2.2026 08:05:09", None, datetime(2026, 2, 1, 8, 5, 9)),
        ("12/24/2026", "%m/%d/%Y", datetime(2026, 12, 24)),
    ],
)
def test_parse_datetime_accepts(text: str, fmt: str | None, expected: datetime):
    assert parse_datetime(text, fmt) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-24", datetime(2026, 12, 24, 23, 59, 59)),
        ("24.12.2026", datetime(2026, 12, 24, 23, 59, 59)),
        ("2026-12-24T18:00", datetime(2026, 12, 24, 18, 0)),  # a time is kept as given
    ],
)
def test_parse_datetime_end_of_day(text: str, expected: datetime):
    assert parse_datetime(text, end_of_day=True) == expected


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("24/12/2026", None, "is not a date .* set date_format"),
        ("31.02.2026", None, "not a valid date"),
        ("tomorrow", None, "is not a date"),
        ("2026-12-24", "%d.%m.%Y", "does not match date_format"),
    ],
)
def test_parse_datetime_rejects(text: str, fmt: str | None, message: str):
    with pytest.raises(ValueError, match=message):
        parse_datetime(text, fmt)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (
            "2016-02-24T13:00-0800/2016-02-29T15:30-0800",
            datetime(2016, 2, 24, 13, 0, tzinfo=MINUS_EIGHT),
            datetime(2016, 2, 29, 15, 30, tzinfo=MINUS_EIGHT),
        ),
        (
            "2026-12-01T00:00+01:00 / 2026-12-24T18:00+01:00",
            datetime(2026, 12, 1, tzinfo=PLUS_ONE),
            datetime(2026, 12, 24, 18, 0, tzinfo=PLUS_ONE),
        ),
        ("2026-12-01/2026-12-24", datetime(2026, 12, 1), datetime(2026, 12, 24, 23, 59, 59)),
        ("2026-12-01/", datetime(2026, 12, 1), None),
    ],
)
def test_parse_sale_window_accepts(text: str, start: datetime, end: datetime | None):
    assert parse_sale_window(text) == (start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12-01", "not a date range"),
        ("2026-12-24/2026-12-01", "ends before it starts"),
        ("soon/later", "is not a date"),
    ],
)
def test_parse_sale_window_rejects(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_sale_window(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in stock", Availability.IN_STOCK),
        ("in_stock", Availability.IN_STOCK),
        ("InStock", Availability.IN_STOCK),
        (" Available ", Availability.IN_STOCK),
        ("https://schema.org/InStock", Availability.IN_STOCK),
        ("out of stock", Availability.OUT_OF_STOCK),
        ("OUT_OF_STOCK", Availability.OUT_OF_STOCK),
        ("outofstock", Availability.OUT_OF_STOCK),
        ("Sold out", Availability.OUT_OF_STOCK),
        ("backorder", Availability.BACKORDER),
        ("onbackorder", Availability.BACKORDER),
        ("on backorder", Availability.BACKORDER),
        ("preorder", Availability.PREORDER),
        ("Pre-order", Availability.PREORDER),
    ],
)
def test_parse_availability_accepts(text: str, expected: Availability):
    assert parse_availability(text) == expected


@pytest.mark.parametrize("text", ["true", "2", "yes", "limited", ""])
def test_parse_availability_rejects_unclear_words(text: str):
    with pytest.raises(ValueError, match="accepted: in stock"):
        parse_availability(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Hemd  ", "Hemd"),
        ("", None),
        ("   ", None),
        (None, None),
        ("Cafe\u0301", "Café"),  # decomposed é becomes the composed one
        ("line 1\r\nline 2", "line 1\nline 2"),
        (12345, "12345"),
        (D("12.50"), "12.50"),
    ],
)
def test_clean_text(value: object, expected: str | None):
    assert clean_text(value) == expected


@pytest.mark.parametrize("value", [{"a": 1}, [1], True])
def test_clean_text_rejects_non_text(value: object):
    with pytest.raises(ValueError, match="expected text"):
        clean_text(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4006381333931", "04006381333931"),
        ("04006381333931", "04006381333931"),
        (" 400-6381 333931 ", "04006381333931"),
        (4006381333931, "04006381333931"),
        ("12345670", "00000012345670"),
        ("012345678905", "00012345678905"),
        ("12345678905", "00012345678905"),  # a UPC whose leading zero a spreadsheet dropped
        ("", None),
        (None, None),
    ],
)
def test_normalize_gtin_accepts(text: str | None, expected: str | None):
    assert normalize_gtin(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4.00638E+12", "Excel"),
        ("4,00638E+12", "scientific notation"),
        ("1234567", "8 to 14 digits"),
        ("123456789012345", "8 to 14 digits"),
        ("ABC12345678", "not a GTIN"),
    ],
)
def test_normalize_gtin_rejects(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        normalize_gtin(text)


@pytest.mark.parametrize(
    ("currency", "units"),
    [("EUR", 2), ("usd", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0), ("KWD", 3), ("BHD", 3)],
)
def test_minor_units(currency: str, units: int):
    assert minor_units(currency) == units
