"""The report formats, rendered from hand-made check results."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from omnisync import secrets
from omnisync.errors import InputError, UsageError
from omnisync.models import ChannelReport, CheckResult, Finding, Kind
from omnisync.report import FORMATS, load_json, print_report, render

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
#: A value with everything that breaks naive CSV, XML and Markdown writers.
NASTY = 'Shirt | "red", <b>&amp; co\nsecond line'
LONG_A = "Soft organic cotton. " * 8 + "Machine wash at 30 °C."
LONG_B = "Soft organic cotton. " * 8 + "Machine wash at 40 °C."


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    secrets.forget_all()
    yield
    secrets.forget_all()


def changed(
    channel: str,
    sku: str,
    field: str,
    expected: str,
    actual: str,
    *,
    canonical: str | None = None,
    rule: str | None = None,
) -> Finding:
    return Finding(
        channel,
        Kind.CHANGED,
        sku,
        field,
        canonical=canonical,
        expected=expected,
        actual=actual,
        rule=rule,
    )


def make_result(pos_findings: list[Finding] | None = None) -> CheckResult:
    """Three channels: ``webshop`` clean, ``pos`` with every kind of finding (or
    ``pos_findings``), ``feed`` unreadable."""
    rule = "net→gross 19% VAT, round .99"
    findings = [
        changed(
            "pos", "SKU-1", "price", "11.99 EUR", "12.49 EUR", canonical="10.00 EUR", rule=rule
        ),
        changed(
            "pos", "SKU-2", "price", "23.99 EUR", "22.99 EUR", canonical="20.00 EUR", rule=rule
        ),
        changed("pos", "SKU-2", "title", NASTY, "Shirt", canonical=NASTY),
        changed("pos", "SKU-7", "description", LONG_A, LONG_B, canonical=LONG_A),
        Finding("pos", Kind.CHANGED, "SKU-3", "stock", "berlin", expected="5", actual="3"),
        Finding("pos", Kind.MISSING, "SKU-4", canonical="Wool hat"),
        Finding("pos", Kind.EXTRA, "SKU-5", actual="Old cap", ids={"product_id": "991"}),
        Finding("pos", Kind.DUPLICATE, "SKU-6", detail="listed 2 times (rows 3, 7)"),
    ]
    return CheckResult(
        started_at=START,
        evaluated_at=START,
        config_path="omnisync.yaml",
        config_fingerprint="sha256:0f3a",
        channels=[
            ChannelReport(
                "webshop", "shopify", 120, 120, fields=["title", "description", "price", "stock"]
            ),
            ChannelReport(
                "pos",
                "lightspeed",
                10,
                10,
                findings=findings if pos_findings is None else pos_findings,
                fields=["title", "description", "price", "stock"],
            ),
            ChannelReport(
                "feed",
                "google_merchant",
                error="GET https://feeds.example/products.xml: 401 Unauthorized\ncheck the token",
                error_code=3,
            ),
        ],
        finished_at=START + timedelta(seconds=3.25),
        run_id="42",
    )


def many_price_findings(n: int) -> list[Finding]:
    return [changed("pos", f"SKU-{i:03}", "price", "9.99 EUR", "8.99 EUR") for i in range(n)]


def rich_text(result: CheckResult, *, width: int = 120, limit: int | None = 20) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    print_report(console, result, limit=limit)
    return console.export_text()


# JSON


def test_json_round_trips_every_finding_regardless_of_limit() -> None:
    result = make_result()
    text = render(result, "json", limit=1)

    loaded = load_json(text)

    assert loaded == result
    assert render(loaded, "json") == text
    assert render(loaded, "junit") == render(result, "junit")


def test_json_has_the_documented_schema() -> None:
    data = json.loads(render(make_result(), "json"))

    assert data["schema"] == "omnisync.check/1"
    assert set(data) >= {
        "run_id",
        "started_at",
        "finished_at",
        "evaluated_at",
        "config",
        "config_fingerprint",
        "totals",
        "channels",
    }
    assert data["started_at"] == "2024-05-01T10:00:00+00:00"
    assert datetime.fromisoformat(data["finished_at"]) == START + timedelta(seconds=3.25)
    assert data["config"] == "omnisync.yaml"
    assert [c["name"] for c in data["channels"]] == ["webshop", "pos", "feed"]
    assert [c["status"] for c in data["channels"]] == ["ok", "mismatch", "error"]
    assert data["totals"]["findings"] == 8
    pos = data["channels"][1]
    assert pos["counts"] == {
        "canonical": 10,
        "channel": 10,
        "matched": 5,
        "missing": 1,
        "extra": 1,
        "changed": 4,
        "duplicate": 1,
        "data_quality": 0,
        "identity": 0,
    }
    assert pos["changed_fields"] == {"title": 1, "description": 1, "price": 2, "stock": 1}
    assert pos["error"] is None
    assert pos["findings"][4]["location"] == "berlin"
    assert pos["findings"][2]["expected"] == NASTY
    assert data["channels"][2]["error"].startswith("GET https://feeds.example")


def test_load_json_rejects_what_is_not_a_check_report() -> None:
    with pytest.raises(InputError, match="problem") as bad_schema:
        load_json('{"schema": "something/else"}')
    assert "omnisync.check/1" in str(bad_schema.value)

    with pytest.raises(InputError) as not_json:
        load_json("<testsuites/>")
    assert "line 1" in str(not_json.value)


# CSV


def test_csv_parses_back_to_one_row_per_finding_and_error() -> None:
    result = make_result()

    rows = list(csv.DictReader(io.StringIO(render(result, "csv", limit=1))))

    assert len(rows) == 8 + 1
    assert rows[0] == {
        "channel": "pos",
        "kind": "changed",
        "sku": "SKU-1",
        "field": "price",
        "location": "",
        "canonical": "10.00 EUR",
        "expected": "11.99 EUR",
        "actual": "12.49 EUR",
        "rule": "net→gross 19% VAT, round .99",
        "detail": "",
        "source": "",
        "origin": "",
        "severity": "fail",
    }
    assert rows[2]["expected"] == NASTY
    assert rows[3]["actual"] == LONG_B  # never shortened
    assert (rows[4]["field"], rows[4]["location"]) == ("stock", "berlin")
    assert [r["kind"] for r in rows[5:8]] == ["missing", "extra", "duplicate"]
    assert rows[8]["channel"] == "feed"
    assert rows[8]["kind"] == "error"
    assert "401 Unauthorized\ncheck the token" in rows[8]["detail"]


def test_csv_of_a_clean_run_is_just_the_header() -> None:
    result = make_result(pos_findings=[])
    result.channels.pop()

    assert render(result, "csv") == (
        "channel,kind,sku,field,location,canonical,expected,actual,rule,detail,source,origin,severity\n"
    )


# JUnit


def _suites(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    return {s.get("name", ""): s for s in root.iter("testsuite")}


def test_junit_counts_checks_failures_and_errors() -> None:
    root = ET.fromstring(render(make_result(), "junit"))
    suites = _suites(render(make_result(), "junit"))

    assert root.tag == "testsuites"
    assert root.get("name") == "omnisync check"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("21", "7", "1")
    assert root.get("time") == "3.250"
    assert list(suites) == ["omnisync.webshop", "omnisync.pos", "omnisync.feed"]
    pos = suites["omnisync.pos"]
    assert [c.get("name") for c in pos.iter("testcase")] == [
        "read",
        "missing",
        "extra",
        "duplicate",
        "data_quality",
        "identity",
        "title",
        "description",
        "price",
        "stock",
    ]
    assert {c.get("classname") for c in pos.iter("testcase")} == {"omnisync.pos"}
    assert (pos.get("tests"), pos.get("failures"), pos.get("errors")) == ("10", "7", "0")
    webshop = suites["omnisync.webshop"]
    assert (webshop.get("tests"), webshop.get("failures")) == ("10", "0")
    assert not list(webshop.iter("failure"))


def test_junit_failure_lists_each_sku_with_values_and_rule() -> None:
    pos = _suites(render(make_result(), "junit"))["omnisync.pos"]
    price = pos.find("testcase[@name='price']/failure")
    stock = pos.find("testcase[@name='stock']/failure")
    title = pos.find("testcase[@name='title']/failure")

    assert price is not None
    assert stock is not None
    assert title is not None
    assert price.get("message") == "2 SKUs differ in price"
    assert price.get("type") == "mismatch"
    assert (price.text or "").splitlines() == [
        "SKU-1 price: expected 11.99 EUR, actual 12.49 EUR "
        "(canonical 10.00 EUR; rule: net→gross 19% VAT, round .99)",
        "SKU-2 price: expected 23.99 EUR, actual 22.99 EUR "
        "(canonical 20.00 EUR; rule: net→gross 19% VAT, round .99)",
    ]
    assert stock.text == "SKU-3 stock@berlin: expected 5, actual 3"
    # The value's own line break must not split the one line per finding.
    assert title.text is not None
    assert len(title.text.splitlines()) == 1
    assert 'Shirt | "red", <b>&amp; co' in title.text


def test_junit_reports_an_unreadable_channel_as_an_error() -> None:
    feed = _suites(render(make_result(), "junit"))["omnisync.feed"]

    cases = list(feed.iter("testcase"))
    assert [c.get("name") for c in cases] == ["read"]
    error = cases[0].find("error")
    assert error is not None
    assert error.get("message") == "GET https://feeds.example/products.xml: 401 Unauthorized"
    assert "check the token" in (error.text or "")
    assert (feed.get("tests"), feed.get("failures"), feed.get("errors")) == ("1", "0", "1")


def test_junit_has_the_shape_jenkins_and_gitlab_read(tmp_path: Path) -> None:
    xml = render(make_result(), "junit")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml)

    # The de-facto schema (Jenkins' junit.xsd, GitLab's parser): testsuites > testsuite >
    # testcase > failure | error, counts as integers that agree with the children.
    assert root.tag == "testsuites"
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root:
        assert suite.tag == "testsuite"
        assert suite.get("name")
        cases = suite.findall("testcase")
        assert {child.tag for child in suite} <= {"properties", "testcase"}
        counts = {
            "tests": len(cases),
            "failures": sum(len(c.findall("failure")) for c in cases),
            "errors": sum(len(c.findall("error")) for c in cases),
            "skipped": 0,
        }
        assert {k: int(suite.get(k, "-1")) for k in counts} == counts
        for case in cases:
            assert case.get("name")
            assert case.get("classname") == suite.get("name")
            assert len(case) <= 1
            for outcome in case:
                assert outcome.tag in {"failure", "error"}
                assert outcome.get("message")
                assert outcome.get("type")
        for key in totals:
            totals[key] += counts[key]
    assert {k: int(root.get(k, "-1")) for k in totals} == totals
    float(root.get("time", "x"))

    try:  # a real JUnit reader too, when the environment happens to have one
        from junitparser import JUnitXml
    except ImportError:
        return
    path = tmp_path / "junit.xml"
    path.write_text(xml, encoding="utf-8")
    parsed = JUnitXml.fromfile(str(path))
    assert sum(s.failures for s in parsed) == totals["failures"]


def test_junit_stays_parseable_with_control_characters_in_values() -> None:
    findings = [changed("pos", "SKU-1", "description", "tab\there", "vertical\x0btab\x00")]

    xml = render(make_result(pos_findings=findings), "junit")

    failure = _suites(xml)["omnisync.pos"].find("testcase[@name='description']/failure")
    assert failure is not None
    assert "vertical\\x0btab\\x00" in (failure.text or "")


# Markdown


def _cells(row: str) -> list[str]:
    """The cells of a GFM table row, splitting only on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_markdown_has_verdict_summary_table_and_findings() -> None:
    md = render(make_result(), "markdown")
    lines = md.splitlines()

    assert lines[0].startswith("## ❌")
    assert "run 42" in lines[0]
    header = lines.index(
        "| Channel | Status | Canonical | In channel | Matched | Missing | Extra | Changed "
        "| Duplicates | Quality | Identity |"
    )
    assert _cells(lines[header + 2]) == [
        "webshop",
        "✅ ok",
        "120",
        "120",
        "120",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]
    assert _cells(lines[header + 3]) == [
        *("pos", "❌ mismatch", "10", "10", "5", "1", "1", "4", "1", "0", "0")
    ]
    assert _cells(lines[header + 4])[:2] == ["feed", "⚠️ error"]
    assert any("**feed** could not be read" in line and "401" in line for line in lines)
    assert md.count("<details>") == 1  # only the channel with findings
    assert "<summary><b>pos (lightspeed)</b>" in md


def test_markdown_escapes_cells_so_the_table_keeps_its_columns() -> None:
    md = render(make_result(), "markdown")
    rows = [line for line in md.splitlines() if line.startswith("| SKU-")]

    assert len(rows) == 8
    assert all(len(_cells(row)) == 8 for row in rows)
    title = next(row for row in rows if "| title |" in row)
    assert r"Shirt \| " in title
    assert "&lt;b&gt;&amp;amp; co<br>second line" in title
    assert "<b>" not in title


def test_markdown_caps_findings_at_limit_with_a_more_line() -> None:
    result = make_result(pos_findings=many_price_findings(25))

    capped = render(result, "markdown", limit=20)
    everything = render(result, "markdown", limit=0)

    assert sum(1 for line in capped.splitlines() if line.startswith("| SKU-")) == 20
    assert "…and 5 more (use `--limit 0` or `--format csv` for all)" in capped
    assert sum(1 for line in everything.splitlines() if line.startswith("| SKU-")) == 25
    assert "more (use" not in everything
    assert render(result, "markdown", limit=None) == everything


def test_markdown_heading_is_green_when_every_channel_is_consistent() -> None:
    result = make_result(pos_findings=[])
    result.channels.pop()

    md = render(result, "markdown")

    assert md.startswith("## ✅ omnisync check run 42: all channels consistent")
    assert "<details>" not in md


# Rich table


def test_rich_report_shows_counts_per_channel_and_caps_details() -> None:
    text = rich_text(make_result(), limit=5)

    assert re.search(r"webshop\s+ok\s+120\s+120\s+120\s+0\s+0\s+0\s+0", text)
    assert re.search(r"pos\s+mismatch\s+10\s+10\s+5\s+1\s+1\s+4\s+1", text)
    assert re.search(r"feed\s+error(\s+—){7}", text)
    assert "feed: could not be read: GET https://feeds.example/products.xml: 401" in text
    assert "SKU-1" in text
    assert "stock@berlin" in text
    assert "SKU-5" not in text  # beyond the cap
    assert "…and 3 more (use --limit 0 or --format csv for all)" in text
    assert "2 of 3 channels not consistent" in text


def test_rich_report_without_limit_shows_every_finding() -> None:
    text = rich_text(make_result(pos_findings=many_price_findings(25)), limit=None)

    assert all(f"SKU-{i:03}" in text for i in range(25))
    assert "more (use" not in text


@pytest.mark.parametrize("width", [80, 100])
def test_rich_report_is_plain_and_uncut_when_not_a_terminal(width: int) -> None:
    # 80 is what rich assumes for a pipe (cron mail, CI logs) when COLUMNS is not set.
    out = io.StringIO()
    print_report(Console(file=out, width=width), make_result())
    text = out.getvalue()

    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert "Duplicates" in text
    assert re.search(r"pos\s+mismatch\s+10\s+10\s+5\s+1\s+1\s+4\s+1", text)
    assert re.search(r"SKU-3\s+changed\s+stock@berlin\s+5\s+3", text)
    assert "1 missing, 1 extra, 1 duplicate" in " ".join(text.split())


def test_rich_report_shortens_long_values_but_shows_where_they_differ() -> None:
    text = rich_text(make_result(), width=200)
    row = next(line for line in text.splitlines() if "SKU-7" in line)

    assert LONG_A not in text
    assert "…" in row
    assert "30 °C" in row
    assert "40 °C" in row
    assert LONG_B in render(make_result(), "csv")  # the machine formats keep everything


def test_rich_report_prints_values_literally_not_as_markup() -> None:
    findings = [changed("pos", "SKU-1", "title", "[bold]Sale[/bold]", "[red]")]

    text = rich_text(make_result(pos_findings=findings))

    assert "[bold]Sale[/bold]" in text
    assert "[red]" in text


def test_render_table_is_the_plain_rich_report_without_trailing_blanks() -> None:
    text = render(make_result(), "table")

    assert "pos (lightspeed)" in text
    assert all(line == line.rstrip() for line in text.splitlines())


# Across formats


@pytest.mark.parametrize("fmt", FORMATS)
def test_registered_secrets_never_leave_in_any_format(fmt: str) -> None:
    secrets.register("s3cr3t-token")
    secrets.register('pa"ss&<word')  # would be missed if masked only after escaping
    findings = [
        changed("pos", "SKU-1", "title", "Shirt", "Shirt s3cr3t-token"),
        Finding("pos", Kind.EXTRA, "SKU-2", detail='token pa"ss&<word leaked'),
    ]
    result = make_result(pos_findings=findings)
    result.channels[2].error = "401 for token s3cr3t-token at https://bot:hunter22@feeds.example/"

    text = render(result, fmt)
    if fmt == "table":
        text += rich_text(result)

    assert "s3cr3t" not in text
    assert "pa&quot;ss" not in text
    assert 'pa\\"ss' not in text
    assert 'pa"ss' not in text
    assert 'pa""ss' not in text  # CSV doubles quotes
    assert "hunter22" not in text
    assert "***" in text


def test_render_names_the_formats_when_given_an_unknown_one() -> None:
    with pytest.raises(UsageError) as info:
        render(make_result(), "xlsx")

    assert "table, json, csv, junit, markdown" in str(info.value)
