"""The diff engine and expectation rules, driven with plain records and plain tables of examples."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from omnisync.config import ChannelConfig
from omnisync.diff import ChannelComparison, DiffEngine
from omnisync.expect import PriceBasis, severity_of
from omnisync.models import Availability, Field, Finding, Kind, Money, Record
from omnisync.sdk.values import money

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALL = frozenset(Field)


def eur(amount: str) -> Money:
    return Money(D(amount), "EUR")


def run(
    canonical: list[Record],
    channel: list[Record],
    expect: dict[str, Any] | None = None,
    *,
    basis: PriceBasis = PriceBasis.NET,
    canonical_fields: frozenset[Field] = ALL,
    channel_fields: frozenset[Field] = ALL,
    at: datetime = NOW,
    timezone: str = "Europe/Berlin",
) -> list[Finding]:
    config = ChannelConfig.model_validate({"connector": "csv", "expect": expect or {}})
    engine = DiffEngine(timezone=timezone)
    try:
        c = engine.load("canonical", canonical, canonical_fields)
        a = engine.load("chan", channel, channel_fields)
        findings, _ = engine.diff(ChannelComparison("shop", c, a, config, basis, at))
        return findings
    finally:
        engine.close()


def changed(findings: list[Finding], field: str) -> list[Finding]:
    return [f for f in findings if f.kind is Kind.CHANGED and f.field == field]


PRICE_ONLY = frozenset({Field.PRICE})


@pytest.mark.parametrize(
    ("net", "vat", "rules", "shown"),
    [
        ("10.00", None, {"vat": 19}, "11.90"),  # net→gross, cents
        ("10.00", "7", {"vat": 19}, "10.70"),  # the record's own VAT rate wins over the default
        (
            "41.93",
            None,
            {"vat": 19, "rounding": {"mode": "ending", "ending": 0.99}},
            "49.99",
        ),  # 49.8967 → .99
        (
            "41.00",
            None,
            {"vat": 19, "rounding": {"mode": "ending", "ending": 0.99}},
            "48.99",
        ),  # 48.79 → nearest
        (
            "41.00",
            None,
            {"vat": 19, "rounding": {"mode": "ending", "ending": 0.99, "direction": "up"}},
            "48.99",
        ),
        (
            "42.10",
            None,
            {"vat": 19, "rounding": {"mode": "ending", "ending": 0.95, "direction": "down"}},
            "49.95",
        ),
        ("10.00", None, {"vat": 19, "rounding": {"mode": "step", "step": 0.05}}, "11.90"),
        (
            "10.02",
            None,
            {"vat": 19, "rounding": {"mode": "step", "step": 0.05}},
            "11.90",
        ),  # 11.9238
        (
            "10.03",
            None,
            {"vat": 19, "rounding": {"mode": "step", "step": 0.05}},
            "11.95",
        ),  # 11.9357
        ("10.00", None, {"vat": 19, "markup": 10}, "13.09"),
        (
            "10.00",
            None,
            {"vat": 19, "currency": "CHF", "rate": "0.95"},
            "11.31",
        ),  # 11.305 → half up
        ("10.00", None, {"vat": 0}, "10.00"),
        ("10.004", None, {"vat": 0, "rounding": {"mode": "none"}}, "10.004"),
        ("10.01", None, {"vat": 0, "rounding": {"mode": "cents", "direction": "up"}}, "10.01"),
        ("10.001", None, {"vat": 0, "rounding": {"mode": "cents", "direction": "up"}}, "10.01"),
    ],
)
def test_price_expectation(net: str, vat: str | None, rules: dict[str, Any], shown: str) -> None:
    currency = rules.get("currency", "EUR")
    canonical = [Record("A", price=eur(net), vat_rate=D(vat) if vat else None)]
    # The channel shows a deliberately wrong price so the finding reveals the expectation.
    findings = run(
        canonical,
        [Record("A", price=Money(D("999"), currency))],
        {"price": rules},
        channel_fields=PRICE_ONLY,
    )
    (finding,) = changed(findings, "price")
    assert finding.expected == f"{shown} {currency}"
    assert finding.canonical == money(D(net), "EUR")
    # And a channel showing exactly that price has no finding.
    ok = run(
        canonical,
        [Record("A", price=Money(D(shown), currency))],
        {"price": rules},
        channel_fields=PRICE_ONLY,
    )
    assert ok == []


def test_gross_to_net_uses_exact_decimal_factor() -> None:
    canonical = [Record("A", price=eur("11.90"))]
    findings = run(
        canonical,
        [Record("A", price=eur("11.00"))],
        {"price": {"vat": 19, "shows": "net"}},
        basis=PriceBasis.GROSS,
        channel_fields=PRICE_ONLY,
    )
    (finding,) = changed(findings, "price")
    assert finding.expected == "10.00 EUR"
    assert "gross→net 19% VAT" in (finding.rule or "")


@pytest.mark.parametrize(
    ("textual", "equal"),
    [("19.90", True), ("19.9", True), ("19.91", False)],
)
def test_equal_values_in_other_forms_are_equal(textual: str, equal: bool) -> None:
    findings = run(
        [Record("A", price=eur("19.90"))],
        [Record("A", price=eur(textual))],
        channel_fields=PRICE_ONLY,
    )
    assert (findings == []) is equal


def test_price_tolerance() -> None:
    canonical = [Record("A", price=eur("10.00")), Record("B", price=eur("10.00"))]
    channel = [Record("A", price=eur("10.01")), Record("B", price=eur("10.02"))]
    findings = run(canonical, channel, {"tolerance": {"price": "0.01"}}, channel_fields=PRICE_ONLY)
    assert [f.sku for f in findings] == ["B"]
    assert findings[0].detail == "differs by +0.02"


@pytest.mark.parametrize(
    ("tolerance", "flagged"),
    [
        ("0.5%", ["C"]),  # 0.5% of 100.00 is 0.50: B (+0.50) passes, C (+0.51) does not
        ({"percent": 0.5}, ["C"]),
        ({"amount": "0.60", "percent": 0.5}, []),  # the larger of the two applies
        ("0.50", ["C"]),
        (0.5, ["C"]),
        ("0", ["A", "B", "C"]),
    ],
)
def test_relative_and_absolute_price_tolerance(tolerance: Any, flagged: list[str]) -> None:
    canonical = [Record(s, price=eur("100.00")) for s in "ABC"]
    channel = [
        Record("A", price=eur("99.99")),
        Record("B", price=eur("100.50")),
        Record("C", price=eur("100.51")),
    ]
    findings = run(
        canonical, channel, {"tolerance": {"price": tolerance}}, channel_fields=PRICE_ONLY
    )
    assert sorted(f.sku for f in findings) == flagged


def test_sale_price_has_its_own_tolerance_and_defaults_to_the_price_one() -> None:
    sale = {"sale_price": eur("50.00"), "sale_start": None, "sale_end": None}
    canonical = [Record("A", price=eur("100.00"), **sale)]
    channel = [Record("A", price=eur("100.40"), sale_price=eur("50.40"))]
    fields = frozenset({Field.PRICE, Field.SALE_PRICE})
    same = run(canonical, channel, {"tolerance": {"price": "1%"}}, channel_fields=fields)
    assert same == []  # 0.40 is within 1% of both 100.00 and 50.00
    own = run(
        canonical,
        channel,
        {"tolerance": {"price": "1%", "sale_price": "0.5%"}},
        channel_fields=fields,
    )
    assert [(f.sku, f.field) for f in own] == [("A", "sale_price")]  # 0.40 > 0.5% of 50.00


@pytest.mark.parametrize("bad", ["abc%", "five", "-1", "101%", True, {"amount": 1, "cents": 2}])
def test_a_bad_tolerance_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        ChannelConfig.model_validate({"connector": "csv", "expect": {"tolerance": {"price": bad}}})


def test_currency_difference_is_a_price_mismatch() -> None:
    findings = run(
        [Record("A", price=eur("10"))],
        [Record("A", price=Money(D("10"), "USD"))],
        channel_fields=PRICE_ONLY,
    )
    (finding,) = findings
    assert (finding.expected, finding.actual) == ("10.00 EUR", "10.00 USD")


SALE = {
    "price": eur("10.00"),
    "sale_price": eur("8.00"),
    "sale_start": datetime(2026, 11, 20, 0, 0),  # Berlin local time
    "sale_end": datetime(2026, 11, 24, 0, 0),
}


@pytest.mark.parametrize(
    ("at", "active"),
    [
        (datetime(2026, 11, 23, 12, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 19, 22, 59, tzinfo=UTC), False),  # 23:59 Berlin on the 19th: not yet
        (datetime(2026, 11, 19, 23, 0, tzinfo=UTC), True),  # midnight Berlin: starts
        (datetime(2026, 11, 23, 23, 0, tzinfo=UTC), False),  # midnight Berlin on the 24th: over
    ],
)
def test_sale_window_in_configured_time_zone(at: datetime, active: bool) -> None:
    canonical = [Record("A", **SALE)]
    effective = {"price": {"sale": "effective"}}
    shows_regular = run(
        canonical,
        [Record("A", price=eur("10.00"))],
        effective,
        at=at,
        basis=PriceBasis.GROSS,
        channel_fields=PRICE_ONLY,
    )
    shows_sale = run(
        canonical,
        [Record("A", price=eur("8.00"))],
        effective,
        at=at,
        basis=PriceBasis.GROSS,
        channel_fields=PRICE_ONLY,
    )
    assert (shows_regular == []) is not active
    assert (shows_sale == []) is active


def test_separate_sale_price_field() -> None:
    canonical = [Record("A", **SALE), Record("B", price=eur("5.00"))]
    channel = [
        Record("A", price=eur("10.00"), sale_price=None),  # sale not shown
        Record("B", price=eur("5.00"), sale_price=eur("4.00")),  # a sale canonical does not have
    ]
    fields = frozenset({Field.PRICE, Field.SALE_PRICE})
    findings = run(canonical, channel, basis=PriceBasis.GROSS, channel_fields=fields)
    by_sku = {f.sku: f for f in changed(findings, "sale_price")}
    assert by_sku["A"].expected == "8.00 EUR"
    assert by_sku["A"].actual is None
    assert by_sku["B"].expected is None
    assert by_sku["B"].actual == "4.00 EUR"
    assert by_sku["B"].rule == "no sale in canonical"


STOCK_ONLY = frozenset({Field.STOCK})


@pytest.mark.parametrize(
    ("stock", "rules", "expected"),
    [
        ({"lager": 10, "laden": 5}, {}, 15),  # no mapping: totals
        ({"lager": 10}, {"buffer": 2}, 8),
        ({"lager": 1}, {"buffer": 2}, 0),  # floor 0
        ({"lager": -4}, {}, 0),  # oversold ERP stock is shown as 0
        ({"lager": 10}, {"allocation": 50}, 5),
        ({"lager": 9}, {"allocation": 50}, 4),  # rounded down
        ({"lager": 500}, {"max": 100}, 100),
        ({"lager": 10}, {"buffer": 1, "allocation": 50, "max": 3}, 3),
    ],
)
def test_stock_expectation(stock: dict[str, int], rules: dict[str, Any], expected: int) -> None:
    findings = run(
        [Record("A", stock=stock)],
        [Record("A", stock={"default": 9999})],
        {"stock": rules},
        channel_fields=STOCK_ONLY,
    )
    (finding,) = findings
    assert finding.expected == str(expected)
    assert (
        run(
            [Record("A", stock=stock)],
            [Record("A", stock={"default": expected})],
            {"stock": rules},
            channel_fields=STOCK_ONLY,
        )
        == []
    )


def test_stock_per_location_mapping_and_tolerance() -> None:
    canonical = [Record("A", stock={"lager": 10, "berlin": 3, "hamburg": 4})]
    channel = [Record("A", stock={"web": 10, "stores": 6})]
    rules = {"stock": {"locations": {"web": ["lager"], "stores": ["berlin", "hamburg"]}}}
    findings = run(canonical, channel, rules, channel_fields=STOCK_ONLY)
    assert [(f.location, f.expected, f.actual) for f in findings] == [("stores", "7", "6")]
    tolerant = run(
        canonical, channel, {**rules, "tolerance": {"stock": 1}}, channel_fields=STOCK_ONLY
    )
    assert tolerant == []


def test_without_a_mapping_both_sides_compare_their_totals() -> None:
    canonical = [Record("A", stock={"lager": 10, "laden": 5}), Record("B", stock={"lager": 3})]
    channel = [Record("A", stock={"web": 9, "app": 6}), Record("B", stock={"web": 2, "app": 0})]
    findings = run(canonical, channel, {}, channel_fields=STOCK_ONLY)
    assert [(f.sku, f.expected, f.actual) for f in findings] == [("B", "3", "2")]


def test_missing_stock_level_in_channel() -> None:
    rules = {"stock": {"locations": {"web": ["lager"], "berlin": ["berlin"]}}}
    findings = run(
        [Record("A", stock={"lager": 2, "berlin": 1})],
        [Record("A", stock={"web": 2})],
        rules,
        channel_fields=STOCK_ONLY,
    )
    (finding,) = findings
    assert (finding.location, finding.actual, finding.detail) == (
        "berlin",
        None,
        "no stock level in channel",
    )


@pytest.mark.parametrize(
    ("qty", "rules", "shown"),
    [
        (5, {}, "in_stock"),
        (0, {}, "out_of_stock"),
        (3, {"buffer": 3}, "out_of_stock"),
        (3, {"availability": {"in_stock_min": 5}}, "out_of_stock"),
        (0, {"availability": {"otherwise": "backorder"}}, "backorder"),
    ],
)
def test_availability_from_expected_stock(qty: int, rules: dict[str, Any], shown: str) -> None:
    fields = frozenset({Field.AVAILABILITY})
    wrong = Availability.PREORDER
    (finding,) = run(
        [Record("A", stock={"lager": qty})],
        [Record("A", availability=wrong)],
        {"stock": rules},
        channel_fields=fields,
    )
    assert finding.expected == shown
    assert (
        run(
            [Record("A", stock={"lager": qty})],
            [Record("A", availability=Availability(shown))],
            {"stock": rules},
            channel_fields=fields,
        )
        == []
    )


TEXT = frozenset({Field.TITLE, Field.DESCRIPTION, Field.BRAND, Field.GTIN})


@pytest.mark.parametrize(
    ("canonical", "rules", "shown"),
    [
        (
            Record("A", title="Kaffeemühle  Bella "),
            {},
            "Kaffeemühle Bella",
        ),  # whitespace is not a difference
        (
            Record("A", title="Mühle", brand="Bellarom"),
            {"title": {"template": "{brand} {title}"}},
            "Bellarom Mühle",
        ),
        (
            Record("A", title="Mühle"),
            {"title": {"template": "{brand} {title}"}},
            "Mühle",
        ),  # no brand: no stray space
        (
            Record("A", title="Espressokocher aus Aluminium für sechs Tassen"),
            {"title": {"max_length": 20}},
            "Espressokocher aus",
        ),
        (Record("A", title="Donaudampfschifffahrt"), {"title": {"max_length": 10}}, "Donaudampf"),
    ],
)
def test_title_expectation(canonical: Record, rules: dict[str, Any], shown: str) -> None:
    fields = frozenset({Field.TITLE})
    (finding,) = run(
        [canonical], [Record("A", title="something else")], rules, channel_fields=fields
    )
    assert " ".join((finding.expected or "").split()) == shown
    assert run([canonical], [Record("A", title=shown)], rules, channel_fields=fields) == []


def test_gtin_leading_zeros_are_equal() -> None:
    fields = frozenset({Field.GTIN})
    assert (
        run(
            [Record("A", gtin="4006381333931")],
            [Record("A", gtin="04006381333931")],
            channel_fields=fields,
        )
        == []
    )
    (finding,) = run(
        [Record("A", gtin="4006381333931")],
        [Record("A", gtin="4006381333948")],
        channel_fields=fields,
    )
    assert finding.field == "gtin"


def test_attributes_difference_is_explained() -> None:
    fields = frozenset({Field.ATTRIBUTES})
    canonical = [Record("A", attributes={"farbe": "rot", "größe": "M"})]
    channel = [Record("A", attributes={"farbe": "blau", "größe": "M", "material": "Baumwolle"})]
    (finding,) = run(canonical, channel, channel_fields=fields)
    assert "'rot' → 'blau'" in (finding.detail or "")
    assert "material" in (finding.detail or "")


def test_texts_that_differ_only_in_form_are_equal_and_real_changes_are_found() -> None:
    """The screen compares hashes of the stored texts; a differing hash is only a candidate,
    which the exact (normalising) comparison confirms or drops."""
    texts = frozenset({Field.TITLE, Field.DESCRIPTION, Field.BRAND, Field.ATTRIBUTES})
    canonical = [
        Record("SAME", title="Kaffeemühle", description="Aus Holz.", brand="Ösi"),
        Record("SPACES", title="Kaffee Mühle", description="Aus Holz. Mahlt fein."),
        Record("NFD", title="Kaffeem\u00fchle", brand="\u00d6si"),
        Record("EMPTY", title="x", description=None, attributes=None),
        Record("REAL", title="a", description="b", brand="c", attributes={"k": "v"}),
    ]
    channel = [
        Record("SAME", title="Kaffeemühle", description="Aus Holz.", brand="Ösi"),
        Record("SPACES", title="Kaffee\tMühle", description="Aus Holz.\n  Mahlt fein."),
        Record("NFD", title="Kaffeemu\u0308hle", brand="O\u0308si"),
        Record("EMPTY", title="x", description="   ", attributes=None),
        Record("REAL", title="A", description="B", brand="C", attributes={"k": "w"}),
    ]
    findings = run(canonical, channel, channel_fields=texts)
    # (Canonical's blank texts are unknown: data-quality findings, see test_quality.py.)
    assert [(f.sku, f.field) for f in findings if f.kind is Kind.CHANGED] == [
        ("REAL", "title"),
        ("REAL", "description"),
        ("REAL", "brand"),
        ("REAL", "attributes"),
    ]


STOCK_CASES = (
    [
        Record("EQUAL", stock={"lager": 12}),
        Record("LOW", stock={"lager": 5}),
        Record("NONE_IN_CHANNEL", stock={"lager": 7}),
        Record("NONE_IN_CANONICAL"),
        Record("NEGATIVE", stock={"lager": -3}),
        Record("WITHIN_TOLERANCE", stock={"lager": 20}),
        Record("MISSING", stock={"lager": 1}),
        Record("TWICE", stock={"lager": 4}),
    ],
    [
        Record("EQUAL", stock={"web": 10}),
        Record("LOW", stock={"web": 1}),
        Record("NONE_IN_CHANNEL"),
        Record("NONE_IN_CANONICAL", stock={"web": 4}),
        Record("NEGATIVE", stock={"web": 2}),
        Record("WITHIN_TOLERANCE", stock={"web": 19}),
        Record("EXTRA", stock={"web": 3}),
        Record("TWICE", stock={"web": 1}, origin="shop.csv:9"),
        Record("TWICE", stock={"web": 2}, origin="shop.csv:10"),
    ],
)


def test_per_sku_stock_compares_in_the_items_join_as_the_location_join_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one location per side, stock rides along in the items comparison; the general
    per-location comparison must find exactly the same."""
    from omnisync import diff

    rules = {"stock": {"buffer": 2}, "tolerance": {"stock": 1}}
    folded = run(*STOCK_CASES, rules, channel_fields=STOCK_ONLY)
    monkeypatch.setattr(diff._ChannelDiff, "_stock_per_sku", lambda self, c, a: False)
    general = run(*STOCK_CASES, rules, channel_fields=STOCK_ONLY)
    assert folded == general
    assert [(f.sku, f.kind.value, f.expected, f.actual, f.detail) for f in folded] == [
        ("EXTRA", "extra", None, None, "in channel, not in canonical"),
        ("LOW", "changed", "3", "1", None),
        ("MISSING", "missing", None, None, "in canonical, not in channel"),
        ("NEGATIVE", "changed", "0", "2", None),
        # A blank canonical stock is unknown: reported, never compared (nor written as 0).
        (
            "NONE_IN_CANONICAL",
            "data_quality",
            None,
            None,
            "stock is blank in canonical (no quantity at any location): unknown, so stock "
            "and availability are not compared and never written",
        ),
        ("NONE_IN_CHANNEL", "changed", "5", None, "no stock level in channel"),
        (
            "TWICE",
            "duplicate",
            None,
            None,
            "listed 2 times (shop.csv:9, shop.csv:10); not compared",
        ),
    ]


def test_missing_extra_duplicate_and_unchanged() -> None:
    canonical = [Record("A", title="a"), Record("B", title="b"), Record("C", title="c")]
    channel = [
        Record("A", title="a", origin="shop.csv:2"),
        Record("C", title="c", origin="shop.csv:3"),
        Record("C", title="c2", origin="shop.csv:4"),
        Record("Z", title="z", ids={"product_id": "77"}, origin="shop.csv:5"),
    ]
    findings = run(canonical, channel, channel_fields=frozenset({Field.TITLE}))
    summary = [(f.sku, f.kind) for f in findings]
    assert summary == [("B", Kind.MISSING), ("C", Kind.DUPLICATE), ("Z", Kind.EXTRA)]
    dup = findings[1]
    assert "shop.csv:3" in (dup.detail or "")
    assert "shop.csv:4" in (dup.detail or "")
    assert findings[2].ids == {"product_id": "77"}


def test_only_fields_both_sides_carry_are_compared() -> None:
    canonical = [Record("A", title="a", price=eur("1"))]
    channel = [Record("A", title="different")]  # channel has no price column
    findings = run(canonical, channel, channel_fields=frozenset({Field.TITLE}))
    assert [f.field for f in findings] == ["title"]
    none = run(
        canonical,
        channel,
        {"check": ["price"]},
        channel_fields=frozenset({Field.TITLE, Field.PRICE}),
    )
    assert [f.field for f in none] == [
        "price"
    ]  # check: narrows to price, where the channel shows none


def test_many_records_stream_in_batches() -> None:
    n = 45_000  # more than two engine batches
    canonical = [Record(f"S{i:06d}", price=eur("1.00"), stock={"l": i % 7}) for i in range(n)]
    channel = [
        Record(f"S{i:06d}", price=eur("1.00" if i % 1000 else "2.00"), stock={"l": i % 7})
        for i in range(n)
    ]
    findings = run(
        canonical,
        channel,
        basis=PriceBasis.GROSS,
        channel_fields=frozenset({Field.PRICE, Field.STOCK}),
    )
    assert len(findings) == n // 1000
    assert all(f.field == "price" and f.actual == "2.00 EUR" for f in findings)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (D("11.990000"), "EUR", "11.99 EUR"),
        (D("5"), "EUR", "5.00 EUR"),
        (D("12.5"), "JPY", "12.5 JPY"),
        (D("0.125"), "EUR", "0.125 EUR"),
    ],
)
def test_money_display(amount: D, currency: str, text: str) -> None:
    assert money(amount, currency) == text


def test_scheduled_sale_compares_price_and_window() -> None:
    canonical = [Record("A", **SALE), Record("B", price=eur("5.00"))]
    future = {"price": {"sale": "scheduled"}}
    fields = frozenset({Field.PRICE, Field.SALE_PRICE})
    at = datetime(2026, 11, 1, tzinfo=UTC)  # before the window: a scheduled sale is still listed
    same = [
        Record(
            "A",
            price=eur("10.00"),
            sale_price=eur("8.00"),
            sale_start=SALE["sale_start"],
            sale_end=SALE["sale_end"],
        ),
        Record("B", price=eur("5.00")),
    ]
    assert run(canonical, same, future, basis=PriceBasis.GROSS, channel_fields=fields, at=at) == []
    shifted = [
        Record(
            "A",
            price=eur("10.00"),
            sale_price=eur("8.00"),
            sale_start=SALE["sale_start"],
            sale_end=datetime(2026, 11, 30),
        ),
        Record("B", price=eur("5.00")),
    ]
    (finding,) = run(
        canonical, shifted, future, basis=PriceBasis.GROSS, channel_fields=fields, at=at
    )
    assert finding.field == "sale_price"
    assert "2026-11-24 00:00 CET" in (finding.expected or "")
    assert "2026-11-30 00:00 CET" in (finding.actual or "")


@pytest.mark.parametrize("mode", ["scheduled", "separate"])
def test_no_sale_stays_no_sale_under_ending_rounding(mode: str) -> None:
    rules = {"price": {"sale": mode, "rounding": {"mode": "ending", "ending": 0.99}}}
    fields = frozenset({Field.PRICE, Field.SALE_PRICE})
    findings = run(
        [Record("A", price=eur("9.99"))],
        [Record("A", price=eur("9.99"))],
        rules,
        basis=PriceBasis.GROSS,
        channel_fields=fields,
    )
    assert findings == []


def test_findings_carry_json_values_for_plans() -> None:
    canonical = [Record("A", title="Mühle", price=eur("10.00"), stock={"lager": 7})]
    channel = [Record("A", title="Muehle", price=eur("11.00"), stock={"default": 3})]
    findings = run(
        canonical,
        channel,
        {"price": {"vat": 19}},
        channel_fields=frozenset({Field.TITLE, Field.PRICE, Field.STOCK}),
    )
    by_field = {f.field: f for f in findings}
    assert by_field["price"].before == {"amount": "11", "currency": "EUR"}
    assert by_field["price"].after == {"amount": "11.9", "currency": "EUR"}
    assert (by_field["title"].before, by_field["title"].after) == ("Muehle", "Mühle")
    assert (by_field["stock"].before, by_field["stock"].after) == (3, 7)


def test_missing_finding_carries_the_record_to_create() -> None:
    canonical = [
        Record(
            "A", title="Mühle", brand="Bellarom", price=eur("10.00"), stock={"lager": 7, "laden": 2}
        ),
        Record("B", title="x", price=eur("1.00"), stock={"lager": 1}),
    ]
    rules = {
        "price": {"vat": 19, "rounding": {"mode": "ending", "ending": 0.99}},
        "title": {"template": "{brand} {title}"},
        "stock": {"buffer": 1, "locations": {"web": ["lager"]}},
    }
    fields = frozenset({Field.TITLE, Field.PRICE, Field.STOCK})
    (missing,) = run(
        canonical,
        [Record("B", title="x", price=eur("0.99"), stock={"web": 0})],
        rules,
        channel_fields=fields,
    )
    assert missing.kind is Kind.MISSING
    assert missing.after == {
        "sku": "A",
        "title": "Bellarom Mühle",
        "price": {"amount": "11.99", "currency": "EUR"},
        "stock": {"web": 6},
    }


@pytest.mark.parametrize(
    ("rules", "finding", "severity"),
    [
        ({}, Finding("shop", Kind.CHANGED, "A", field="title"), "fail"),
        ({"title": "warn"}, Finding("shop", Kind.CHANGED, "A", field="title"), "warn"),
        ({"changed": "info"}, Finding("shop", Kind.CHANGED, "A", field="price"), "info"),
        # A changed field's own entry beats `changed`.
        (
            {"changed": "info", "price": "fail"},
            Finding("shop", Kind.CHANGED, "A", field="price"),
            "fail",
        ),
        ({"missing": "warn"}, Finding("shop", Kind.MISSING, "A"), "warn"),
        ({"title": "info"}, Finding("shop", Kind.MISSING, "A"), "fail"),
        # Other kinds: their kind's entry beats their field's.
        (
            {"data_quality": "warn", "gtin": "info"},
            Finding("shop", Kind.DATA_QUALITY, "A", field="gtin"),
            "warn",
        ),
        ({"gtin": "info"}, Finding("shop", Kind.DATA_QUALITY, "A", field="gtin"), "info"),
    ],
)
def test_severity_of_a_finding(rules: dict[str, str], finding: Finding, severity: str) -> None:
    config = ChannelConfig.model_validate({"connector": "csv", "expect": {"severity": rules}})
    assert severity_of(finding, config.expect.severity) == severity


def test_the_diff_gives_findings_their_severity() -> None:
    findings = run(
        [
            Record("A", title="Shirt", price=eur("10.00")),
            Record("B", title="Cap", price=eur("5.00")),
        ],
        [Record("A", title="Shirt!", price=eur("11.00"))],
        {"severity": {"title": "info", "missing": "warn"}},
        channel_fields=frozenset({Field.TITLE, Field.PRICE}),
    )
    assert {(f.sku, f.field, f.severity) for f in findings} == {
        ("A", "title", "info"),
        ("A", "price", "fail"),
        ("B", None, "warn"),
    }


def test_lag_holds_back_what_the_channel_changed_within_it() -> None:
    from datetime import timedelta

    wall = datetime.now(UTC)  # lag counts from the wall clock, not from the check's --at
    recent, old = wall - timedelta(minutes=5), wall - timedelta(hours=2)
    canonical = [Record(s, price=eur("10.00")) for s in ("A", "B", "C")]
    channel = [
        Record("A", price=eur("11.00"), modified_at=recent),  # being edited: held back
        Record("B", price=eur("11.00"), modified_at=old),  # stale: reported
        Record("X", price=eur("5.00"), modified_at=recent),  # just added in the channel
    ]
    config = ChannelConfig.model_validate({"connector": "csv", "expect": {"lag": "15m"}})
    engine = DiffEngine(timezone="UTC")
    try:
        c = engine.load("canonical", canonical, ALL)
        a = engine.load("chan", channel, PRICE_ONLY)
        comparison = ChannelComparison("shop", c, a, config, PriceBasis.NET, NOW)
        findings, _ = engine.diff(comparison)
    finally:
        engine.close()
    # C is missing (the channel never had it); A and X are in flight.
    assert sorted((f.sku, f.kind.value) for f in findings) == [
        ("B", "changed"),
        ("C", "missing"),
    ]
    assert comparison.notes == [
        "not compared: 2 SKUs the channel changed in the last 15m (expect.lag): A, X"
    ]
    # Without a lag everything is compared.
    everything = run(canonical, channel, channel_fields=PRICE_ONLY)
    assert sorted(f.sku for f in everything) == ["A", "B", "C", "X"]


def test_lag_says_when_the_channel_reports_no_modification_times() -> None:
    config = ChannelConfig.model_validate({"connector": "csv", "expect": {"lag": "1h30m"}})
    engine = DiffEngine(timezone="UTC")
    try:
        c = engine.load("canonical", [Record("A", price=eur("10.00"))], ALL)
        a = engine.load("chan", [Record("A", price=eur("11.00"))], PRICE_ONLY)
        comparison = ChannelComparison("shop", c, a, config, PriceBasis.NET, NOW)
        findings, _ = engine.diff(comparison)
    finally:
        engine.close()
    assert [f.sku for f in findings] == ["A"]
    assert comparison.notes == [
        "expect.lag 1h30m not applied: the csv connector reports no modification times "
        "for this channel"
    ]


@pytest.mark.parametrize("bad", ["15", 15, "15 minutes", "m", "-5m", True])
def test_a_lag_without_a_unit_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="lag"):
        ChannelConfig.model_validate({"connector": "csv", "expect": {"lag": bad}})


def test_one_gtin_on_several_canonical_skus_is_an_identity_finding() -> None:
    canonical = [
        Record("A", gtin="4006381333931", price=eur("1.00")),
        Record("B", gtin="04006381333931", price=eur("1.00")),  # the same GTIN, zero-padded
        Record("C", gtin="4006381333948", price=eur("1.00")),
        Record("D", gtin="0000000000000", price=eur("1.00")),  # a placeholder, not a product
        Record("E", gtin="0000000000000", price=eur("1.00")),
    ]
    findings = run(canonical, canonical, channel_fields=frozenset({Field.GTIN, Field.PRICE}))
    (finding,) = findings
    assert (finding.kind, finding.sku, finding.field, finding.canonical) == (
        Kind.IDENTITY,
        "A",
        "gtin",
        "4006381333931",
    )
    assert "on 2 canonical SKUs: A, B" in (finding.detail or "")


def test_a_missing_and_an_extra_sku_with_one_gtin_are_one_product() -> None:
    canonical = [
        Record("KA-1001", gtin="4006381333931", price=eur("1.00")),
        Record("KA-1002", gtin="4006381333948", price=eur("1.00")),
    ]
    channel = [
        Record("KA-1OO1", gtin="4006381333931", price=eur("1.00")),  # letter O for zero
        Record("KA-1002", gtin="4006381333948", price=eur("1.00")),
    ]
    findings = run(canonical, channel, channel_fields=frozenset({Field.GTIN, Field.PRICE}))
    assert sorted((f.kind.value, f.sku) for f in findings) == [
        ("extra", "KA-1OO1"),
        ("identity", "KA-1001"),
        ("missing", "KA-1001"),
    ]
    identity = next(f for f in findings if f.kind is Kind.IDENTITY)
    assert (identity.field, identity.expected, identity.actual) == ("sku", "KA-1001", "KA-1OO1")


def test_a_sale_price_compared_without_the_price_names_its_canonical_amount() -> None:
    """`expect.check: [sale_price]` alone: the finding's canonical value comes from the sale
    price's own currency (it once looked for the price's, and the check failed with a bug)."""
    canonical = [Record("A", price=eur("20.00"), sale_price=eur("15.00"))]
    channel = [Record("A", price=eur("20.00"), sale_price=eur("16.00"))]
    (finding,) = run(canonical, channel, {"check": ["sale_price"]})
    assert (finding.field, finding.canonical, finding.actual) == (
        "sale_price",
        "15.00 EUR",
        "16.00 EUR",
    )


def test_a_variant_under_another_parent_in_the_channel_is_an_identity_finding() -> None:
    canonical = [
        Record("S-1", price=eur("10.00"), parent="SHIRT-RED"),
        Record("S-2", price=eur("10.00"), parent="SHIRT-RED"),
        Record("S-3", price=eur("10.00")),  # no parent known: nothing to compare
    ]
    channel = [
        Record("S-1", price=eur("10.00"), parent="SHIRT-RED"),
        Record("S-2", price=eur("10.00"), parent="SHIRT-BLUE"),
        Record("S-3", price=eur("10.00"), parent="MUG"),
    ]
    (finding,) = run(canonical, channel)
    assert (finding.kind, finding.sku, finding.field) == (Kind.IDENTITY, "S-2", "parent")
    assert (finding.expected, finding.actual) == ("SHIRT-RED", "SHIRT-BLUE")
    assert "a variant of SHIRT-RED in canonical, of SHIRT-BLUE in the channel" in (
        finding.detail or ""
    )
    # A channel that names no parents is not compared on them.
    assert run(canonical, [Record(r.sku, price=r.price) for r in channel]) == []
