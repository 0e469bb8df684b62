"""The HTML report: escaping, self-containment, the row cap, trends from the run history, the
``report`` site, and the page itself in a real browser (headless Chromium via Playwright).

The browser test skips with a reason where Chromium or Playwright is missing, except under
``CI=true``, where it fails: CI must not pass by testing nothing. Its screenshot is kept in
``test-artefacts/html-report.png`` at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from omnisync import secrets
from omnisync.models import Finding, Kind
from omnisync.report import html as html_report
from omnisync.report import render
from omnisync.store import Store
from tests.test_cli import PLANTED, ROOT, check, edit, invoke
from tests.test_reports import START, changed, make_result, many_price_findings

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = ROOT / "test-artefacts"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example config and data, as in test_cli, its history inside tmp_path."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "omnisync.yaml")
    return tmp_path


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    secrets.forget_all()
    yield
    secrets.forget_all()


class Page(HTMLParser):
    """The parts of a page the tests read: every tag with its attributes, the text of each
    findings row and of each summary row."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append((tag, values))
        if tag == "table":
            self._table = values.get("id") or ""
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.rows.setdefault(self._table, []).append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def body_rows(self, table: str) -> list[list[str]]:
        return self.rows.get(table, [])[1:]  # the first row is the head

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)


def run_twice(project: Path, *args: str) -> Path:
    """Two recorded checks of the shipped example, the second rendered as HTML."""
    code, _, _ = check(project, "--format", "json")
    assert code == 1
    target = project / "report.html"
    code, _, err = check(project, "--format", "html", "--output", str(target), *args)
    assert code == 1, err
    return target


# ---------------------------------------------------------------- rendering


def test_every_value_is_escaped_so_markup_in_data_is_text() -> None:
    findings = [
        changed("pos", "SKU-1", "title", "Mug", SCRIPT, canonical='Mug "big" & <b>bold</b>'),
        Finding("pos", Kind.EXTRA, 'SKU-"2"><img src=x onerror=alert(2)>', actual=SCRIPT),
    ]
    text = render(make_result(pos_findings=findings), "html")
    page = Page(text)

    assert SCRIPT not in text
    assert "<b>bold</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert page.count("script") == 1  # the page's own filter script, nothing else
    assert page.count("img") == 0
    rows = page.body_rows("findings-table")
    assert [row[1] for row in rows] == ["SKU-1", 'SKU-"2"><img src=x onerror=alert(2)>']
    assert rows[0][5:8] == ["Mug", SCRIPT, 'Mug "big" & <b>bold</b>']  # expected, actual, canonical
    skus = [attrs["data-sku"] for tag, attrs in page.tags if tag == "tr" and "data-sku" in attrs]
    assert skus == ["sku-1", 'sku-"2"><img src=x onerror=alert(2)>']


def test_each_finding_shows_expected_actual_canonical_and_rule() -> None:
    page = Page(render(make_result(), "html"))
    rows = page.body_rows("findings-table")
    price = next(r for r in rows if r[1] == "SKU-1")
    assert price[:5] == ["pos", "SKU-1", "changed", "fail", "price"]
    assert price[5:9] == ["11.99 EUR", "12.49 EUR", "10.00 EUR", "net→gross 19% VAT, round .99"]
    stock = next(r for r in rows if r[1] == "SKU-3")
    assert stock[4] == "stock@berlin"
    duplicate = next(r for r in rows if r[1] == "SKU-6")
    assert duplicate[2] == "duplicate"
    assert duplicate[9] == "listed 2 times (rows 3, 7)"
    summary = {row[0]: row for row in page.body_rows("summary-table")}
    assert list(summary) == ["webshop", "pos", "feed"]
    assert summary["webshop"][2:7] == ["ok", "120", "120", "120", "100.0%"]
    assert summary["feed"][2] == "error"
    assert "401 Unauthorized" in render(make_result(), "html")


def test_the_findings_table_stops_at_the_row_cap_and_says_how_many_are_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(html_report, "ROW_CAP", 5)
    result = make_result(pos_findings=many_price_findings(12))
    text = render(result, "html")
    page = Page(text)

    assert [row[1] for row in page.body_rows("findings-table")] == [f"SKU-{i:03}" for i in range(5)]
    note = re.search(r'<p class="note" id="capped">(.*?)</p>', text)
    assert note is not None
    assert "7 more findings" in note.group(1)
    assert "at most 5" in note.group(1)
    assert "--format json" in note.group(1)
    assert "--format csv" in note.group(1)
    # The summary still counts every finding.
    pos = next(r for r in page.body_rows("summary-table") if r[0] == "pos")
    assert pos[9] == "12"  # changed


def test_under_the_cap_no_note_is_shown() -> None:
    text = render(make_result(pos_findings=many_price_findings(12)), "html")
    assert 'id="capped"' not in text
    assert len(Page(text).body_rows("findings-table")) == 12


def test_the_page_is_self_contained(project: Path) -> None:
    text = run_twice(project).read_text(encoding="utf-8")
    page = Page(text)

    external = [
        (tag, name, value)
        for tag, attrs in page.tags
        for name, value in attrs.items()
        if name in ("src", "href", "action", "data", "poster")
        and value
        and re.match(r"\s*(https?:)?//", value, re.IGNORECASE)
    ]
    assert external == []
    assert not any(tag == "link" for tag, _ in page.tags)
    assert "@import" not in text
    assert "url(" not in text
    assert page.count("svg") >= 5  # findings, consistency and one chart per channel


def test_a_registered_secret_is_masked_in_the_page_and_its_charts() -> None:
    secrets.register("s3cr3t-token")
    result = make_result(
        pos_findings=[changed("pos", "SKU-1", "title", "Shirt", "Shirt s3cr3t-token")]
    )
    result.channels[1] = replace(result.channels[1], name="pos-s3cr3t-token")
    text = render(result, "html")
    assert "s3cr3t" not in text
    assert "***" in text


# ---------------------------------------------------------------- trends


def test_trends_come_from_the_runs_of_the_same_config(tmp_path: Path) -> None:
    with Store.open("state.db", base_dir=tmp_path) as store:
        first = make_result()
        first.run_id = None
        store.record_check(first, exit_code=1)
        second = make_result(pos_findings=many_price_findings(3))
        second.run_id = None
        second.started_at = START + timedelta(hours=1)
        store.record_check(second, exit_code=1)
        other = make_result()
        other.run_id = None
        other.config_path = "other.yaml"
        store.record_check(other, exit_code=1)
        push = store.start_push(
            started_at=START + timedelta(hours=2),
            config_path="omnisync.yaml",
            config_fingerprint="sha256:0f3a",
            changes=[],
            plan_json="{}",
        )
        store.finish_push(push, status="partial", exit_code=4, totals={"applied": 3, "failed": 1})

        trends = store.trends("omnisync.yaml")
        capped = store.trends("omnisync.yaml", limit=1)
        before = store.trends("omnisync.yaml", until=START + timedelta(minutes=30))

    assert [point.started_at for point in trends.checks] == [START, START + timedelta(hours=1)]
    old, new = (point.channels["pos"] for point in trends.checks)
    # make_result's pos: 4 changed SKUs (price, title, description, stock), 1 missing, 1 extra.
    assert old.findings == {
        "price": 2,
        "title": 1,
        "description": 1,
        "stock": 1,
        "missing": 1,
        "extra": 1,
        "duplicate": 1,
    }
    assert (old.matched, old.consistency) == (5, 50.0)  # in both 9, 4 of them changed
    assert new.findings == {"price": 3}
    assert new.consistency == 70.0
    assert trends.checks[0].channels["feed"].error
    assert trends.checks[0].channels["feed"].consistency is None
    assert [(p.applied, p.failed) for p in trends.pushes] == [(3, 1)]
    assert [p.started_at for p in capped.checks] == [START + timedelta(hours=1)]
    assert [p.started_at for p in before.checks] == [START]
    assert before.pushes == []

    charts = "".join(html_report.trend_charts(trends))
    assert "2 recorded checks" in charts
    assert "pos, 2024-05-01 11:00: 70.0%" in charts  # a consistency point's tooltip
    assert "applied, 2024-05-01 12:00: 3" in charts
    assert "failed, 2024-05-01 12:00: 1" in charts


def test_check_without_history_says_there_are_no_trends(project: Path) -> None:
    code, out, _ = check(project, "--format", "html", "--no-history")
    assert code == 1
    assert "No trends: this run was not read from the run history." in out
    assert len(Page(out).body_rows("findings-table")) == len(PLANTED)


# ---------------------------------------------------------------- commands


def test_show_renders_a_recorded_run_as_html_with_its_trends(project: Path) -> None:
    run_twice(project)
    config = str(project / "omnisync.yaml")
    code, out, _ = invoke(project, "runs", "-c", config)
    run_ids = re.findall(r"\d{8}-\d{6}-[0-9a-f]{4}", out)
    assert len(run_ids) == 2
    first = run_ids[-1]  # `runs` lists newest first (ids of one second sort at random)

    code, out, _ = invoke(project, "show", first, "-c", config, "--format", "html")
    assert code == 0
    page = Page(out)
    assert f"run {first}" in out
    assert "1 recorded check since" in out  # the trends up to that run, not after it
    found = {(r[0], r[2], r[1], r[4] or None) for r in page.body_rows("findings-table")}
    assert {(c, k, s, f.split("@")[0] if f else None) for c, k, s, f in found} == PLANTED

    code, out, _ = invoke(project, "show", "last", "-c", config, "--format", "html")
    assert code == 0
    assert "2 recorded checks since" in out


def test_report_writes_an_index_linking_one_page_per_run(project: Path, tmp_path: Path) -> None:
    run_twice(project)
    config = project / "omnisync.yaml"
    # A check from long ago is outside --since 30d: neither listed nor written.
    with Store.open(str(project / ".omnisync" / "state.db"), base_dir=project) as store:
        old = make_result()
        old.run_id = None
        old.started_at = datetime.now(UTC) - timedelta(days=40)
        old_id = store.record_check(old, exit_code=1)
        # A push of the same config is listed (not linked) and charted.
        push = store.start_push(
            started_at=datetime.now(UTC),
            config_path=str(config),
            config_fingerprint="sha256:0f3a",
            changes=[],
            plan_json="{}",
        )
        store.finish_push(push, status="partial", exit_code=4, totals={"applied": 5, "failed": 2})
    site = tmp_path / "site"

    code, out, err = invoke(project, "report", "-c", str(config), "--since", "30d", "-o", str(site))
    assert code == 0, err
    assert "2 check pages" in out
    index = (site / "index.html").read_text(encoding="utf-8")
    links = [attrs["href"] for tag, attrs in Page(index).tags if tag == "a"]
    assert len(links) == 2
    assert old_id not in index
    assert push in index
    assert "5 applied, 2 failed" in index
    assert "Pushes: changes applied and failed" in index
    assert not (site / f"{old_id}.html").exists()
    assert sorted(p.name for p in site.iterdir()) == sorted([*links, "index.html"])
    for link in links:
        page = (site / str(link)).read_text(encoding="utf-8")
        assert f"run {str(link).removesuffix('.html')}" in page
        assert 'href="index.html"' in page
        assert len(Page(page).body_rows("findings-table")) == len(PLANTED)


def test_report_refuses_a_span_it_cannot_read(project: Path) -> None:
    code, _, err = invoke(
        project, "report", "-c", str(project / "omnisync.yaml"), "--since", "thirty days"
    )
    assert code == 2
    assert "--since" in err
    assert "30d" in err


# ---------------------------------------------------------------- in a browser


def _browser_missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _browser_missing("no chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        _browser_missing("no chromium")


def test_the_page_in_a_real_browser_filters_and_searches(project: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _browser_missing(f"playwright is not installed ({exc}): pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        _browser_missing(f"{CHROMIUM} is missing: apt-get install chromium")
    # A title that would run as a script if the page did not escape it.
    edit(project / "examples" / "webshop_woocommerce.csv", "Kaffebohnen Crema 1 kg", SCRIPT)
    target = run_twice(project)
    dialogs: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(target.as_uri())

            summary = page.locator("#summary-table tbody tr")
            assert summary.count() == 3
            cells = [summary.nth(i).locator("th, td").all_inner_texts() for i in range(3)]
            assert [c[0] for c in cells] == ["webshop", "pos", "google"]
            assert all(c[2] == "mismatch" for c in cells)
            assert cells[0][5:7] == ["9", "64.3%"]  # webshop: 9 of 14 SKUs match

            rows = page.locator("#findings-table tbody tr:visible")
            assert rows.count() == len(PLANTED)
            assert page.inner_text("#shown-count") == "14 of 14 findings shown"
            assert page.get_by_role("cell", name=SCRIPT, exact=True).count() == 1

            # The summary's button sets the channel filter; only that channel's rows remain.
            page.locator('#summary-table button[data-channel="pos"]').click()
            assert page.input_value("#filter-channel") == "pos"
            channels = page.locator("#findings-table tbody tr:visible td:first-child")
            assert channels.all_inner_texts() == ["pos"] * 4
            page.select_option("#filter-channel", "google")
            assert channels.all_inner_texts() == ["google"] * 4
            page.select_option("#filter-kind", "changed")
            page.select_option("#filter-field", "price")
            skus = page.locator("#findings-table tbody tr:visible td.sku")
            assert skus.all_inner_texts() == ["KA-1012"]

            # Back to everything, then search by SKU (case-insensitive, part of it).
            page.select_option("#filter-channel", "")
            page.select_option("#filter-kind", "")
            page.select_option("#filter-field", "")
            page.fill("#filter-sku", "ka-1002")
            assert skus.all_inner_texts() == ["KA-1002", "KA-1002"]
            assert channels.all_inner_texts() == ["webshop", "pos"]
            assert page.inner_text("#shown-count") == "2 of 14 findings shown"
            page.fill("#filter-sku", "")
            assert rows.count() == len(PLANTED)

            # Two recorded checks: every series of the trend charts has two points.
            assert page.locator("svg.chart").count() >= 5
            points = page.locator("svg.chart g.series").first.locator("circle")
            assert points.count() == 2

            ARTEFACTS.mkdir(exist_ok=True)
            page.fill("#filter-sku", "1002")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ARTEFACTS / "html-report.png"), full_page=True)
        finally:
            browser.close()

    assert dialogs == []  # the planted <script> never ran
    assert (ARTEFACTS / "html-report.png").stat().st_size > 10_000
