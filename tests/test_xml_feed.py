"""The xml connector: Google Merchant feeds in RSS 2.0 and Atom, streamed, read only."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from typer.testing import CliRunner

import omnisync_connectors.files.xml as xml_module
from omnisync.cli import app
from omnisync.errors import InputError
from omnisync.models import Availability, Field, Record
from omnisync.sdk.connector import Connector, ConnectorContext
from omnisync.sdk.testing import ConnectorContract
from omnisync_connectors.files.xml import XmlConnector

from .test_real_files import REAL, _require_real_files

RSS = """\
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0" xmlns:my="urn:example:my">
  <channel>
    <title>Example store</title>
    <link>https://example.com</link>
    <item>
      <g:id>TS-1</g:id>
      <title>Plain title</title>
      <g:title>Tee &amp; more</g:title>
      <g:description>Soft cotton tee</g:description>
      <g:price>19.90 EUR</g:price>
      <g:sale_price>15.00 EUR</g:sale_price>
      <g:sale_price_effective_date>2026-11-01T00:00+01:00/2026-11-30T23:59+01:00</g:sale_price_effective_date>
      <g:availability>in_stock</g:availability>
      <g:gtin>4006381333931</g:gtin>
      <g:brand>Acme</g:brand>
      <my:colour>blue</my:colour>
      <g:shipping><g:country>DE</g:country><g:price>4.90 EUR</g:price></g:shipping>
      <g:shipping><g:country>AT</g:country><g:price>6.90 EUR</g:price></g:shipping>
    </item>
    <item>
      <g:id>CAP-1</g:id>
      <g:title><![CDATA[Cap <wool>]]></g:title>
      <g:price>9.90 EUR</g:price>
      <g:availability>out_of_stock</g:availability>
    </item>
  </channel>
</rss>
"""

ATOM = """\
<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
  <title>Example store</title>
  <entry>
    <id>tag:example.com,2026:TS-1</id>
    <g:id>TS-1</g:id>
    <title>Tee</title>
    <summary>Soft cotton tee</summary>
    <link href="https://example.com/tee"/>
    <g:price>19.90 EUR</g:price>
    <g:availability>in stock</g:availability>
  </entry>
</feed>
"""


def make(tmp_path: Path, text: str | bytes, name: str = "feed.xml", **options: Any) -> Any:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    options = {"path": name, "preset": "google", **options}
    return XmlConnector(
        XmlConnector.Options.model_validate(options), ConnectorContext("feed", tmp_path)
    )


def read(connector: XmlConnector) -> list[Record]:
    with connector:
        return list(connector.read())


class TestXmlContract(ConnectorContract):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Connector:
        return make(tmp_path, RSS)


def test_rss_items_read_by_local_name_with_google_values_winning(tmp_path: Path) -> None:
    tee, cap = read(make(tmp_path, RSS))
    assert (tee.sku, tee.title, tee.description, tee.brand) == (
        "TS-1",
        "Tee & more",  # <g:title> wins over RSS <title>
        "Soft cotton tee",
        "Acme",
    )
    assert tee.price is not None
    assert tee.price.amount == Decimal("19.90")
    assert tee.price.currency == "EUR"
    assert tee.sale_price is not None
    assert tee.sale_price.amount == Decimal("15.00")
    assert tee.sale_start is not None
    assert tee.sale_start.isoformat() == "2026-11-01T00:00:00+01:00"
    assert tee.availability is Availability.IN_STOCK
    assert tee.gtin == "04006381333931"
    assert tee.origin == "feed.xml:6"
    assert (cap.title, cap.availability, cap.origin) == (
        "Cap <wool>",
        Availability.OUT_OF_STOCK,
        "feed.xml:21",
    )


def test_nested_elements_other_namespaces_and_repeats(tmp_path: Path) -> None:
    mapping = {"sku": "id", "title": "my:colour", "price": "shipping.price"}
    (tee, cap) = read(make(tmp_path, RSS, preset=None, mapping=mapping))
    assert tee.title == "blue"
    # A repeated element keeps its first value.
    assert tee.price is not None
    assert tee.price.amount == Decimal("4.90")
    assert cap.title is None
    assert cap.price is None


def test_atom_entries_with_summary_as_description(tmp_path: Path) -> None:
    connector = make(tmp_path, ATOM, mapping={"ids": {"link": "link.href"}})
    (tee,) = read(connector)
    assert (tee.sku, tee.title, tee.description) == ("TS-1", "Tee", "Soft cotton tee")
    assert tee.ids == {"link": "https://example.com/tee"}
    assert tee.availability is Availability.IN_STOCK
    # the preset's optional fields the feed lacks are not compared
    assert Field.GTIN not in connector.fields()
    assert not connector.capabilities.writes


def test_the_feed_is_streamed_across_block_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = "".join(
        f"<item><g:id>S-{n}</g:id><g:title>Tée {n} &amp; co</g:title>"
        f"<g:price>{n}.50 EUR</g:price></item>\n"
        for n in range(2000)
    )
    text = RSS.split("<item>")[0] + items + "</channel></rss>\n"
    whole = [(r.sku, r.title, r.price, r.origin) for r in read(make(tmp_path, text))]
    monkeypatch.setattr(xml_module, "_CHUNK", 7)  # every tag split across reads
    pieces = [(r.sku, r.title, r.price, r.origin) for r in read(make(tmp_path, text))]
    assert pieces == whole
    assert len(whole) == 2000
    assert whole[1999][1] == "Tée 1999 & co"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
            '"&lol;&lol;&lol;">]>\n<rss><channel><item><g:id>&lol2;</g:id></item></channel></rss>',
            "feed.xml:2: a document type declaration (<!DOCTYPE …>) is refused",
        ),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            "<rss><item><id>&x;</id></item></rss>",
            "is refused",
        ),
        (
            '<rss xmlns:g="http://base.google.com/ns/1.0"><channel>\n<item><g:id>A</g:id>\n'
            "<g:price>1 EUR</g:pri></item></channel></rss>",
            "feed.xml:3: not well-formed XML: mismatched tag",
        ),
        ("", "feed.xml: the file is empty"),
        ("<products><product><id>A</id></product></products>", "no <item> or <entry> elements"),
        (
            '<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>A</g:id>'
            "<g:price>12,3,4 EUR</g:price></item></channel></rss>",
            "feed.xml:1: column 'price' (SKU A)",
        ),
    ],
    ids=["billion-laughs", "external-entity", "malformed", "empty", "not-a-feed", "bad-price"],
)
def test_broken_feeds_are_refused_with_their_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read(make(tmp_path, text))
    assert message in str(caught.value)


def test_undecodable_bytes_are_an_input_error(tmp_path: Path) -> None:
    data = RSS.replace("Soft cotton tee", "Soft \xe9 tee").encode("latin-1")
    with pytest.raises(InputError, match=r"feed\.xml:10: not well-formed XML"):
        read(make(tmp_path, data))
    # declared as what it is, it reads
    declared = data.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    assert read(make(tmp_path, declared))[0].description == "Soft \xe9 tee"


def test_a_custom_record_element(tmp_path: Path) -> None:
    text = "<products>\n<product><id>A</id><price>2.50</price></product>\n</products>"
    (record,) = read(make(tmp_path, text, records="product", currency="EUR"))
    assert (record.sku, record.origin) == ("A", "feed.xml:2")


def test_a_mapped_element_no_record_has_is_a_missing_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gtn"):
        read(make(tmp_path, RSS, preset=None, mapping={"sku": "id", "gtin": "gtn"}))


# -- the real Google feed, as TSV and as XML ------------------------------------------------


def _feed_as_xml(tsv: str, atom: bool) -> str:
    rows = list(csv.DictReader(io.StringIO(tsv), delimiter="\t"))
    record = "entry" if atom else "item"
    parts = []
    for row in rows:
        fields = "".join(
            f"<g:{key}>{escape(value)}</g:{key}>" for key, value in row.items() if value
        )
        parts.append(f"  <{record}>{fields}</{record}>\n")
    body = "".join(parts)
    if atom:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
            f'xmlns:g="http://base.google.com/ns/1.0">\n<title>x</title>\n{body}</feed>\n'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        f'xmlns:g="http://base.google.com/ns/1.0"><channel>\n{body}</channel></rss>\n'
    )


@pytest.mark.parametrize("atom", [False, True], ids=["rss", "atom"])
def test_the_real_google_feed_reads_the_same_as_tsv_and_xml(tmp_path: Path, atom: bool) -> None:
    """The Wix feed (TSV) against the same feed in XML with the same `google` preset: no
    findings; one hand edit in the XML is exactly what is reported."""
    _require_real_files()
    name = "google_wix_products-feed.tsv"
    tsv = (REAL / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(tsv, encoding="utf-8")
    xml = _feed_as_xml(tsv, atom)
    (tmp_path / "feed.xml").write_text(xml, encoding="utf-8")
    first = next(csv.DictReader(io.StringIO(tsv), delimiter="\t"))
    edited = xml.replace(f"<g:price>{first['price']}</g:price>", "<g:price>1.23 USD</g:price>", 1)
    (tmp_path / "edited.xml").write_text(edited, encoding="utf-8")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        f"""\
settings: {{state: state.db}}
canonical:
  connector: tsv
  options: {{path: {name}, preset: google}}
channels:
  same: {{connector: xml, options: {{path: feed.xml, preset: google}}}}
  edited: {{connector: xml, options: {{path: edited.xml, preset: google}}}}
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["check", "-c", str(config), "-f", "json"])
    assert result.exit_code == 1, result.stdout + result.stderr
    channels = {c["name"]: c for c in json.loads(result.stdout)["channels"]}
    assert channels["same"]["findings"] == []
    assert channels["same"]["counts"]["channel"] == channels["same"]["counts"]["canonical"] > 0
    assert {"price", "title", "availability"} <= set(channels["same"]["fields"])
    assert [(f["sku"], f["field"]) for f in channels["edited"]["findings"]] == [
        (first["id"], "price")
    ]


def test_a_push_to_a_feed_is_refused_at_validate(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_text(RSS, encoding="utf-8")
    (tmp_path / "erp.csv").write_text("sku,price\nTS-1,19.90\n", encoding="utf-8")
    config = tmp_path / "omnisync.yaml"
    config.write_text(
        """\
canonical:
  connector: csv
  options: {path: erp.csv, currency: EUR, mapping: {sku: sku, price: price}}
channels:
  google:
    connector: xml
    options: {path: feed.xml, preset: google}
    push: {fields: [price]}
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", "-c", str(config)])
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "google" in result.stderr + result.stdout
