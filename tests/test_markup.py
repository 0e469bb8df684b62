"""HTML descriptions (shop exports and shop APIs) compare as the text they show, and canonical
text written into them is HTML that reads back as the same text."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from omnisync.cli import app
from omnisync.markup import html_text, text_html

from .test_real_files import REAL, _require_real_files


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Soft cotton tee.</p>", "Soft cotton tee."),
        ("<p>Soft cotton,\nmade in Portugal.</p>", "Soft cotton, made in Portugal."),
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("Line<br>next<br/>last", "Line\nnext\nlast"),
        ("<ul><li>Cotton</li><li>Wool &amp; silk</li></ul>", "Cotton\nWool & silk"),
        ("<strong>Bold</strong> and <em>light</em>", "Bold and light"),
        ("Caf&eacute; &#8364;5 &lt;b&gt;", "Café €5 <b>"),
        ("a&nbsp;&nbsp;b", "a b"),
        ("<script>alert(1)</script><style>p{}</style>Shown", "Shown"),
        ("<!-- hidden -->Shown", "Shown"),
        ('<a href="x>y">link</a>', "link"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("3 < 4 and 5 > 4", "3 < 4 and 5 > 4"),
        ("Plain text\n\nwith  its   spacing", "Plain text\n\nwith  its   spacing"),
        ("<p> </p>", ""),
    ],
)
def test_html_reads_as_the_text_it_shows(html: str, text: str) -> None:
    assert html_text(html) == text


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("Soft cotton tee.", "Soft cotton tee."),
        ("Salt & pepper <3", "Salt &amp; pepper &lt;3"),
        ("one\ntwo", "one<br>\ntwo"),
        ("para one\nline\n\npara two", "<p>para one<br>\nline</p>\n<p>para two</p>"),
    ],
)
def test_text_is_written_as_html_that_shows_it(text: str, html: str) -> None:
    assert text_html(text) == html


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("<>&;\n ")))
def test_text_written_as_html_reads_back_as_the_same_text(text: str) -> None:
    # Whitespace runs compare as one space (the diff's text rule), so that is the measure.
    assert _words(html_text(text_html(text))) == _words(text.replace("\xa0", " "))


_TAGS = ("p", "P", "br", "li", "ul", "b", "strong", "em", "div", "h2", "span", "script", "style")


@st.composite
def _markup(draw: st.DrawFn) -> str:
    """Descriptions of plain tags and text, with now and then what takes the parser: an
    attribute, a comment, an entity, a lone "<", a hidden element."""
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["text", "open", "close", "empty", "odd"]))
        name = draw(st.sampled_from(_TAGS))
        space = draw(st.sampled_from(["", " ", "\n"]))
        if kind == "text":
            parts.append(draw(st.text(st.sampled_from("ab \n\t>\xa0é"), max_size=8)))
        elif kind == "open":
            parts.append(f"<{name}{space}>")
        elif kind == "close":
            parts.append(f"</{name}{space}>")
        elif kind == "empty":
            parts.append(f"<{name}{space}/>")
        else:
            parts.append(
                draw(st.sampled_from(['<p class="x">', "<!-- c -->", "&amp;", "<", "< b", "<1>"]))
            )
    return "".join(parts)


@settings(max_examples=500, deadline=None)
@given(_markup())
def test_plain_markup_reads_as_the_parser_reads_it(value: str) -> None:
    from omnisync import markup

    parser = markup._Text()
    parser.feed(value)
    parser.close()
    parser._break()
    expected = "\n".join(parser.lines)
    if "<" not in value and "&" not in value:
        expected = value  # returned as it is, without the parser
    assert html_text(value) == expected


# -- end to end: a text canonical against an HTML shop export ---------------------------------

SHOP = (
    "Handle,Title,Body (HTML),Vendor,Variant SKU,Variant Price,Variant Inventory Qty\n"
    'tee,Tee,"<p>Soft <strong>cotton</strong> tee.</p>\n<p>Made in Portugal.</p>",Acme,T-1,19.90,5\n'
    'cap,Cap,"<p>Wool &amp; silk cap</p>",Acme,C-1,9.90,2\n'
    "mug,Mug,<p>A mug.</p>,Acme,M-1,4.90,1\n"
)
ERP = (
    "sku,title,description,price,stock\n"
    'T-1,Tee,"Soft cotton tee.\nMade in Portugal.",19.90,5\n'
    "C-1,Cap,Wool & silk cap,9.90,2\n"
    "M-1,Mug,A mug with a handle.,4.90,1\n"
)


def _project(tmp_path: Path, shop: str = SHOP, erp: str = ERP) -> Path:
    (tmp_path / "shop.csv").write_text(shop, encoding="utf-8")
    (tmp_path / "erp.csv").write_text(erp, encoding="utf-8")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        """\
settings: {state: state.db}
canonical:
  connector: csv
  options:
    path: erp.csv
    currency: USD
    mapping: {sku: sku, title: title, description: description, price: price, stock: stock}
channels:
  shop:
    connector: csv
    options: {path: shop.csv, preset: shopify, currency: USD}
    push: {fields: [description], guard: {max_records_pct: 100}}
""",
        encoding="utf-8",
    )
    return config


def _check(config: Path) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["check", "-c", str(config), "-f", "json"])
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    return [f for c in json.loads(result.stdout)["channels"] for f in c["findings"]]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "row-path"])
def test_html_descriptions_differ_only_where_the_words_do(
    tmp_path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import omnisync_connectors.files.columnar as csv_columnar

    monkeypatch.setattr(csv_columnar, "MIN_BYTES", 0 if fast else 1 << 62)
    found = _check(_project(tmp_path))
    assert [(f["sku"], f["field"]) for f in found] == [("M-1", "description")]
    assert found[0]["actual"] == "A mug."
    assert found[0]["expected"] == "A mug with a handle."


def test_a_pushed_description_is_html_in_the_file_and_converges(tmp_path: Path) -> None:
    erp = ERP.replace("A mug with a handle.", '"Mugs & cups <large>\n\nDishwasher safe"')
    config = _project(tmp_path, erp=erp)
    result = CliRunner().invoke(app, ["sync", "-c", str(config)])
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "shop.csv").read_text(encoding="utf-8"))))
    body = {r["Variant SKU"]: r["Body (HTML)"] for r in rows}
    assert body["M-1"] == "<p>Mugs &amp; cups &lt;large&gt;</p>\n<p>Dishwasher safe</p>"
    # untouched rows keep their markup byte for byte
    assert body["C-1"] == "<p>Wool &amp; silk cap</p>"
    assert _check(config) == []


def test_the_shopify_template_compares_its_html_as_text(tmp_path: Path) -> None:
    """Shopify's product template: Body (HTML) holds paragraphs. A canonical holding the
    same words as plain text reports no description; one changed word is reported."""
    _require_real_files()
    name = "shopify_product_template.csv"
    rows = list(csv.DictReader(io.StringIO((REAL / name).read_text(encoding="utf-8-sig"))))
    body: dict[str, str] = {}
    units = []
    for r in rows:  # a product's later rows inherit its first row's Body (HTML)
        body.setdefault(r["Handle"], r["Body (HTML)"])
        if r["Variant SKU"] and r["Variant Price"] and body[r["Handle"]]:
            units.append((r["Variant SKU"], body[r["Handle"]]))
    assert sum("<p>" in html for _, html in units) >= 2, "the template holds HTML"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sku", "description"])
    for index, (sku, html) in enumerate(units):
        # As a person would type it into the ERP: words, no markup.
        text = re.sub(r"<[^>]+>", " ", html).replace("&amp;", "&")
        writer.writerow([sku, text + " (new)" if index == 0 else text])
    (tmp_path / "erp.csv").write_text(out.getvalue(), encoding="utf-8")
    (tmp_path / name).write_bytes((REAL / name).read_bytes())
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        f"""\
settings: {{state: state.db}}
canonical:
  connector: csv
  options: {{path: erp.csv, mapping: {{sku: sku, description: description}}}}
channels:
  shop:
    connector: csv
    options: {{path: {name}, preset: shopify, currency: USD}}
""",
        encoding="utf-8",
    )
    found = [f for f in _check(config) if f["field"] == "description"]
    assert [(f["sku"], f["field"]) for f in found] == [(units[0][0], "description")]
