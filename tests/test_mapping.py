"""Rows to Records: the mapping every tabular connector shares."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from omnisync.errors import InputError, Problem
from omnisync.models import Availability, Field, Money
from omnisync.sdk.mapping import (
    FieldMapping,
    ParseOptions,
    ProblemCollector,
    RowMapper,
    missing_columns_error,
)

D = Decimal


def mapper(parse: dict[str, Any] | None = None, **mapping: Any) -> RowMapper:
    return RowMapper(
        FieldMapping.model_validate(mapping), ParseOptions.model_validate(parse or {}), "test"
    )


def convert(row: dict[str, Any], parse: dict[str, Any] | None = None, **mapping: Any):
    problems: list[Problem] = []
    record = mapper(parse, **mapping).to_record(row, "f.csv:2", problems)
    return record, problems


# -- the mapping model ---------------------------------------------------------------------


def test_sku_is_required():
    with pytest.raises(ValidationError, match="sku"):
        FieldMapping.model_validate({"title": "Name"})


def test_unknown_keys_are_rejected():
    with pytest.raises(ValidationError, match="prise"):
        FieldMapping.model_validate({"sku": "SKU", "prise": "Preis"})


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"price": "P", "sale_price": "S", "compare_at_price": "C"}, "not both"),
        ({"compare_at_price": "C"}, "compare_at_price needs price"),
        ({"sale_window": "W", "sale_start": "S"}, "sale_window or sale_start"),
        ({"stock": {}}, "at least one column"),
        ({"title": ""}, "at least 1 character"),
    ],
)
def test_inconsistent_mappings_are_rejected(mapping: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        FieldMapping.model_validate({"sku": "SKU", **mapping})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"currency": "EURO"}, "not a currency code"),
        ({"decimal": ";"}, "decimal"),
        ({"thousands": "ab"}, "one separator character"),
        ({"decimal": ",", "thousands": ","}, "must be different"),
    ],
)
def test_parse_options_are_validated(options: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        ParseOptions.model_validate(options)


def test_parse_options_upper_case_the_currency():
    assert ParseOptions.model_validate({"currency": "eur"}).currency == "EUR"


@pytest.mark.parametrize(
    ("mapping", "fields"),
    [
        ({}, set()),
        ({"title": "T", "gtin": "G"}, {Field.TITLE, Field.GTIN}),
        ({"price": "P"}, {Field.PRICE}),
        ({"price": "P", "compare_at_price": "C"}, {Field.PRICE, Field.SALE_PRICE}),
        ({"price": "P", "sale_window": "W"}, {Field.PRICE, Field.SALE_PRICE}),
        ({"stock": {"a": "A"}, "availability": "V"}, {Field.STOCK, Field.AVAILABILITY}),
        ({"ids": {"id": "ID"}, "vat_rate": "V", "currency": "C"}, set()),
    ],
)
def test_fields_say_what_the_mapping_provides(mapping: dict[str, Any], fields: set[Field]):
    assert mapper(sku="SKU", **mapping).fields() == fields


def test_required_and_missing_columns():
    m = mapper(
        sku="SKU", title="Name", stock={"berlin": "Lager", "hamburg": "Lager HH"}, ids={"x": "SKU"}
    )
    assert m.required_columns() == ["SKU", "Name", "Lager", "Lager HH"]
    assert m.missing_columns(["SKU", "Name", "Lager"]) == ["Lager HH"]


# -- values --------------------------------------------------------------------------------


def test_a_full_row():
    record, problems = convert(
        {
            "SKU": " A-1 ",
            "Name": "Hemd",
            "Text": "",
            "EAN": "4006381333931",
            "Preis": "1.299,00",
            "Aktion": "999,00",
            "Von": "01.12.2026",
            "Bis": "24.12.2026",
            "MwSt": "19 %",
            "Lager": "1.204",
            "Farbe": "rot",
            "Status": "in stock",
            "ID": "17",
        },
        {"decimal": ",", "thousands": ".", "currency": "EUR"},
        sku="SKU",
        title="Name",
        description="Text",
        gtin="EAN",
        price="Preis",
        sale_price="Aktion",
        sale_start="Von",
        sale_end="Bis",
        vat_rate="MwSt",
        stock="Lager",
        attributes={"color": "Farbe"},
        availability="Status",
        ids={"erp_id": "ID"},
    )
    assert problems == []
    assert record is not None
    assert record.sku == "A-1"
    assert record.title == "Hemd"
    assert record.description is None
    assert record.gtin == "04006381333931"
    assert record.price == Money(D("1299.00"), "EUR")
    assert record.sale_price == Money(D("999.00"), "EUR")
    assert record.sale_start == datetime(2026, 12, 1)
    assert record.sale_end == datetime(2026, 12, 24, 23, 59, 59)
    assert record.vat_rate == D("19")
    assert record.stock == {"default": 1204}
    assert record.attributes == {"color": "rot"}
    assert record.availability is Availability.IN_STOCK
    assert record.ids == {"erp_id": "17"}
    assert record.origin == "f.csv:2"


@pytest.mark.parametrize(
    ("price", "compare", "regular", "sale"),
    [
        ("19.99", "24.99", "24.99", "19.99"),  # compare-at above price: on sale
        ("19.99", "", "19.99", None),
        ("19.99", "19.99", "19.99", None),
        ("19.99", "9.99", "19.99", None),  # a compare-at below the price is no sale
    ],
)
def test_compare_at_price(price: str, compare: str, regular: str, sale: str | None):
    record, problems = convert(
        {"SKU": "A", "P": price, "C": compare},
        {"currency": "EUR"},
        sku="SKU",
        price="P",
        compare_at_price="C",
    )
    assert problems == []
    assert record is not None
    assert record.price == Money(D(regular), "EUR")
    assert record.sale_price == (Money(D(sale), "EUR") if sale else None)


def test_currency_column_supplies_the_currency():
    record, _ = convert(
        {"SKU": "A", "P": "12.50", "Cur": "chf"}, sku="SKU", price="P", currency="Cur"
    )
    assert record is not None
    assert record.price == Money(D("12.50"), "CHF")


def test_sale_window_and_stock_per_location():
    record, problems = convert(
        {
            "id": "A",
            "w": "2026-12-01T00:00+01:00/2026-12-24",
            "b": "3",
            "h": "",
        },
        sku="id",
        sale_window="w",
        stock={"berlin": "b", "hamburg": "h"},
    )
    assert problems == []
    assert record is not None
    assert record.sale_start is not None
    assert record.sale_start.utcoffset() is not None
    assert record.sale_end == datetime(2026, 12, 24, 23, 59, 59)
    assert record.stock == {"berlin": 3}  # a blank location is not tracked there


def test_json_values_and_nested_paths():
    row = {
        "id": 1042,
        "offer": {"price": D("19.9"), "sale": {"amount": "15.00", "currency": "EUR"}},
        "inventory": {"berlin": 4, "hamburg": 0},
        "attrs": {"size": 42, "tags": ["a", "b"], "organic": True},
        "gtin": 4006381333931,
    }
    record, problems = convert(
        row,
        {"currency": "EUR"},
        sku="id",
        price="offer.price",
        sale_price="offer.sale",
        stock="inventory",
        attributes="attrs",
        gtin="gtin",
    )
    assert problems == []
    assert record is not None
    assert record.sku == "1042"
    assert record.price == Money(D("19.9"), "EUR")
    assert record.sale_price == Money(D("15.00"), "EUR")
    assert record.stock == {"berlin": 4, "hamburg": 0}
    assert record.attributes == {"size": "42", "tags": ["a", "b"], "organic": "true"}
    assert record.gtin == "04006381333931"


def test_attributes_from_a_json_text_column():
    record, problems = convert(
        {"SKU": "A", "A": '{"color": "red", "size": 42}'}, sku="SKU", attributes="A"
    )
    assert problems == []
    assert record is not None
    assert record.attributes == {"color": "red", "size": "42"}


def test_a_dotted_column_name_is_first_a_plain_column():
    record, _ = convert(
        {"SKU": "A", "Preis inkl. MwSt": "5 EUR"}, sku="SKU", price="Preis inkl. MwSt"
    )
    assert record is not None
    assert record.price == Money(D("5"), "EUR")


# -- problems ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "mapping", "message"),
    [
        (
            {"SKU": "A", "P": "12,3,4"},
            {"price": "P"},
            "column 'P' (SKU A): '12,3,4' is not a number",
        ),
        ({"SKU": "A", "P": "12.50"}, {"price": "P"}, "column 'P' (SKU A): no currency"),
        ({"SKU": "A", "S": "12.5"}, {"stock": "S"}, "column 'S' (SKU A): '12.5' must be a whole"),
        ({"SKU": "A", "G": "4.00638E+12"}, {"gtin": "G"}, "Excel"),
        (
            {"SKU": "A", "V": "maybe"},
            {"availability": "V"},
            "column 'V' (SKU A): 'maybe' is not an",
        ),
        (
            {"SKU": "A", "D": "soon"},
            {"sale_start": "D"},
            "column 'D' (SKU A): 'soon' is not a date",
        ),
        ({"SKU": "A", "T": "150"}, {"vat_rate": "T"}, "not a percentage"),
        (
            {"SKU": "A", "C": "Euro", "P": "5"},
            {"price": "P", "currency": "C"},
            "not a currency code",
        ),
        (
            {"SKU": "A", "C": "EUR", "P": "5 USD"},
            {"price": "P", "currency": "C"},
            "'5 USD' is in USD, the currency column says EUR",
        ),
        ({"SKU": "A", "A": "[1]"}, {"attributes": "A"}, "expected a JSON object"),
        ({"SKU": "A", "A": "{oops"}, {"attributes": "A"}, "not a JSON object"),
        ({"SKU": "A", "T": {"de": "Hemd"}}, {"title": "T"}, "expected text, got an object"),
        ({"SKU": "  "}, {}, "column 'SKU': the SKU is blank"),
        ({"SKU": None}, {}, "the SKU is blank"),
        ({}, {}, "the SKU is blank"),
        ({"SKU": ["A"]}, {}, "column 'SKU': SKU: expected text, got a list"),
    ],
)
def test_bad_values_are_located_problems(
    row: dict[str, Any], mapping: dict[str, Any], message: str
):
    record, problems = convert(row, sku="SKU", **mapping)
    assert record is None
    assert len(problems) == 1
    assert problems[0].where == "f.csv:2"
    assert message in problems[0].message


def test_every_bad_value_of_a_row_is_reported():
    record, problems = convert(
        {"SKU": "A", "P": "x", "S": "y"}, {"currency": "EUR"}, sku="SKU", price="P", stock="S"
    )
    assert record is None
    assert [p.message.split(":")[0] for p in problems] == [
        "column 'P' (SKU A)",
        "column 'S' (SKU A)",
    ]


def test_unseen_columns_reveal_typos_in_headerless_sources():
    m = mapper(sku="id", title="titel", price="offer.price", parse={"currency": "EUR"})
    problems: list[Problem] = []
    m.to_record({"id": "A", "offer": {"price": "1"}}, "x", problems)
    m.to_record({"id": "B", "title": "B"}, "y", problems)
    assert m.unseen_columns() == ["titel"]


def test_problem_collector_keeps_the_first_and_counts_the_rest():
    problems = ProblemCollector(limit=3)
    for line in range(2, 12):
        problems.add(f"f.csv:{line}", "bad")
    error = problems.error(where="f.csv", hint="fix it")
    assert isinstance(error, InputError)
    assert len(problems) == 10
    assert [str(p) for p in error.problems] == [
        "f.csv:2: bad",
        "f.csv:3: bad",
        "f.csv:4: bad",
        "... and 7 more",
    ]
    assert str(error).startswith("f.csv: 10 problems in the input data — fix it")


def test_problem_collector_without_problems_does_not_raise():
    problems = ProblemCollector()
    assert not problems
    problems.raise_if_any()


def test_missing_columns_suggest_close_matches():
    error = missing_columns_error(
        ["Prise", "sku"],
        ["SKU", "Price", "Title"],
        where="f.csv:1",
        mapping=FieldMapping(sku="sku", price="Prise"),
    )
    messages = [p.message for p in error.problems]
    assert messages == [
        "no column 'Prise' (wanted by mapping.price); did you mean 'Price'?",
        "no column 'sku' (wanted by mapping.sku); did you mean 'SKU'?",
    ]
    assert "'SKU', 'Price', 'Title'" in error.hint
