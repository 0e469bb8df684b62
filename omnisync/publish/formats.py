"""The feed formats ``omnisync publish`` writes, each streaming items to a text handle.

An :class:`Item` is one SKU's expected record (what the check expects the channel to show,
in the JSON form of :mod:`omnisync.sdk.values`) with the feed's own values around it (URLs
from templates, condition). A :class:`FeedFormat` names the values it requires, checks each
item (:meth:`FeedFormat.problems`) and writes a header, the items and a footer.

Google Merchant Center (product data specification): ``id``, ``title``, ``description``,
``link``, ``image_link``, ``availability`` and ``price`` are required; a price is a number
with a ``.`` decimal point, a space and the ISO 4217 code (``15.00 EUR``); a sale's window is
one ISO 8601 ``start/end`` value; ``identifier_exists`` says ``no`` for a product with
neither GTIN nor MPN. The XML feed is RSS 2.0 with the attributes in the ``g:`` namespace
``http://base.google.com/ns/1.0``; the text feed is tab-separated with the English attribute
names as its first row. Meta's catalogue CSV takes the same attribute names, with
availability in words (``in stock``). idealo's CSV (its csv-importer documentation) names
columns ``sku``, ``title``, ``url``, ``price`` (gross, a plain number), ``deliveryTime``,
``deliveryCosts_<carrier>``, ``eans``, ``brand``, ``description`` and ``imageUrls``.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TextIO
from urllib.parse import quote
from xml.sax.saxutils import escape

from omnisync.normalize import minor_units
from omnisync.publish.settings import PublishRules

GOOGLE_NS = "http://base.google.com/ns/1.0"
#: Characters XML 1.0 cannot carry at all (C0 controls but tab, line feed, carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPACE = re.compile(r"[\t\r\n]+")
#: Meta's availability words for Google's values.
_META_AVAILABILITY = {
    "in_stock": "in stock",
    "out_of_stock": "out of stock",
    "backorder": "available for order",
    "preorder": "preorder",
}


def amount_text(amount: str | Decimal, currency: str) -> str:
    """An amount with at least the currency's minor-unit places (``15`` EUR → ``15.00``);
    more places are kept, never rounded away (the check compares exact amounts)."""
    value = Decimal(str(amount))
    places = minor_units(currency)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:f}"


@functools.lru_cache(maxsize=64)
def _parsed(template: str) -> tuple[list[tuple[str, str | None, str | None, str | None]], bool]:
    """A template's pieces (parsed once per feed, not per item) and whether one placeholder
    is the whole of it."""
    parts = list(string.Formatter().parse(template))
    return parts, len(parts) == 1 and not parts[0][0] and parts[0][1] is not None


@dataclass
class Item:
    """One SKU of a feed: its expected record and the feed's rules."""

    record: dict[str, Any]
    rules: PublishRules
    zone: Any  # ZoneInfo of settings.timezone: sale windows are written in it

    @property
    def sku(self) -> str:
        return str(self.record["sku"])

    def canonical(self, name: str) -> str | None:
        """A template value: a record field or ``attributes.<name>``."""
        if name.startswith("attributes."):
            value = (self.record.get("attributes") or {}).get(name.split(".", 1)[1])
        else:
            value = self.record.get(name)
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def template(self, template: str | None, *, url: bool = False) -> str | None:
        """``template`` filled in; None when a placeholder has no value. In a URL the values
        are percent-encoded, unless one placeholder is the whole template (a URL itself)."""
        if template is None:
            return None
        parts, whole = _parsed(template)
        out = []
        for literal, name, _, _ in parts:
            out.append(literal)
            if name is None:
                continue
            value = self.canonical(name)
            if value is None:
                return None
            out.append(quote(value, safe="") if url and not whole else value)
        return "".join(out)

    def money(self, key: str, *, code: bool = True) -> str | None:
        value = self.record.get(key)
        if not value:
            return None
        text = amount_text(value["amount"], value["currency"])
        return f"{text} {value['currency']}" if code else text

    def window(self) -> str | None:
        """Google's ``sale_price_effective_date``: ``start/end`` to the minute with the
        offset of ``settings.timezone`` (an open end stays empty)."""
        sale = self.record.get("sale_price")
        if not sale or not (sale.get("start") or sale.get("end")):
            return None
        return "/".join(self._moment(sale.get(end)) for end in ("start", "end"))

    def _moment(self, value: str | None) -> str:
        if not value:
            return ""
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M%z")

    def value(self, name: str) -> str | None:
        """The text of a value name (:data:`~omnisync.publish.settings.VALUES`)."""
        record = self.record
        match name:
            case "price" | "sale_price":
                return self.money(name, code=False)
            case "currency":
                price = record.get("price") or record.get("sale_price")
                return str(price["currency"]) if price else None
            case "sale_start" | "sale_end":
                sale = record.get("sale_price") or {}
                moment = sale.get(name.removeprefix("sale_"))
                return self._moment(moment) or None
            case "stock":
                stock = record.get("stock")
                return str(sum(stock.values())) if stock else None
            case "link":
                return self.template(self.rules.link, url=True)
            case "image_link":
                return self.template(self.rules.image_link, url=True)
        return self.canonical(name)


Getter = Callable[[Item], str | None]


def _template(template: str) -> Getter:
    return lambda item: item.template(template)


def _constant(value: str) -> Getter:
    return lambda item: value


def _value(name: str) -> Getter:
    return lambda item: item.value(name)


def gtin(item: Item) -> str | None:
    """The GTIN at its natural length: one that reads 14 digits with a leading zero (how
    omnisync pads GTINs to compare them) is the EAN-13 behind it."""
    value = item.value("gtin")
    if value and len(value) == 14 and value.startswith("0") and value.isdigit():
        return value[1:]
    return value


class FeedFormat:
    """A feed format: its columns (name → value), what it requires, how it is written."""

    #: The file's columns or elements, in order.
    columns: dict[str, Getter]
    #: Columns every item must have.
    required: tuple[str, ...] = ()
    #: Longest values Google or the marketplace accepts.
    limits: ClassVar[dict[str, int]] = {}

    def __init__(self, rules: PublishRules) -> None:
        self.rules = rules
        self.columns = dict(self.columns_of(rules))
        for name, template in rules.extra.items():
            self.columns[name] = _template(template)

    def columns_of(self, rules: PublishRules) -> dict[str, Getter]:
        raise NotImplementedError

    def row(self, item: Item) -> dict[str, str | None]:
        return {name: get(item) for name, get in self.columns.items()}

    def problems(self, row: dict[str, str | None]) -> list[str]:
        """What an item lacks or exceeds, for the message that names it."""
        out = [f"no {name}" for name in self.required if not row.get(name)]
        out += [
            f"{name} longer than {limit} characters"
            for name, limit in self.limits.items()
            if len(row.get(name) or "") > limit
        ]
        return out

    def header(self, handle: TextIO) -> None:
        pass

    def write(self, handle: TextIO, row: dict[str, str | None]) -> None:
        raise NotImplementedError

    def footer(self, handle: TextIO) -> None:
        pass


def _google_columns(rules: PublishRules, availability: Callable[[str], str]) -> dict[str, Getter]:
    def avail(item: Item) -> str | None:
        value = item.record.get("availability")
        return availability(value) if value else None

    def identifier_exists(item: Item) -> str | None:
        mpn = "mpn" in rules.extra and item.template(rules.extra["mpn"])
        return None if item.record.get("gtin") or mpn else "no"

    return {
        "id": lambda item: item.sku,
        "title": lambda item: item.value("title"),
        "description": lambda item: item.value("description"),
        "link": lambda item: item.value("link"),
        "image_link": lambda item: item.value("image_link"),
        "availability": avail,
        "price": lambda item: item.money("price"),
        "sale_price": lambda item: item.money("sale_price"),
        "sale_price_effective_date": Item.window,
        "condition": lambda item: rules.condition,
        "brand": lambda item: item.value("brand"),
        "gtin": gtin,
        "identifier_exists": identifier_exists,
    }


class _Tabular(FeedFormat):
    """A delimited text file with a header row."""

    delimiter = ","

    def header(self, handle: TextIO) -> None:
        self.writer = csv.writer(handle, delimiter=self.delimiter, lineterminator="\n")
        self.writer.writerow(list(self.columns))

    def write(self, handle: TextIO, row: dict[str, str | None]) -> None:
        # One item, one line: a line break inside a cell is read as a space anyway.
        self.writer.writerow([_SPACE.sub(" ", value or "") for value in row.values()])


class GoogleTsv(_Tabular):
    delimiter = "\t"
    required = ("id", "title", "description", "link", "image_link", "availability", "price")
    limits: ClassVar[dict[str, int]] = {
        "id": 50,
        "title": 150,
        "description": 5000,
        "link": 2000,
        "image_link": 2000,
    }

    def columns_of(self, rules: PublishRules) -> dict[str, Getter]:
        return _google_columns(rules, str)


class GoogleXml(GoogleTsv):
    """RSS 2.0 with one ``<item>`` per product and its attributes as ``g:`` elements."""

    def header(self, handle: TextIO) -> None:
        title = escape(_xml_text(self.rules.title))
        handle.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<rss version="2.0" xmlns:g="{GOOGLE_NS}">\n<channel>\n'
            f"<title>{title}</title>\n<description>{title}</description>\n"
        )

    def write(self, handle: TextIO, row: dict[str, str | None]) -> None:
        handle.write(
            "<item>"
            + "".join(
                f"<g:{name}>{escape(_xml_text(value))}</g:{name}>"
                for name, value in row.items()
                if value
            )
            + "</item>\n"
        )

    def footer(self, handle: TextIO) -> None:
        handle.write("</channel>\n</rss>\n")


class MetaCsv(_Tabular):
    """Meta (Facebook, Instagram) catalogue CSV: Google's names, availability in words."""

    required = (
        "id",
        "title",
        "description",
        "availability",
        "condition",
        "price",
        "link",
        "image_link",
    )
    limits: ClassVar[dict[str, int]] = {"id": 100, "title": 200, "description": 9999}

    def columns_of(self, rules: PublishRules) -> dict[str, Getter]:
        columns = _google_columns(rules, lambda value: _META_AVAILABILITY.get(value, value))
        del columns["identifier_exists"]
        return columns

    def problems(self, row: dict[str, str | None]) -> list[str]:
        out = super().problems(row)
        if not (row.get("brand") or row.get("gtin") or row.get("mpn")):
            out.append("none of brand, gtin, mpn")
        return out


class IdealoCsv(_Tabular):
    """idealo's offer CSV: the price customers pay (gross, no code), delivery time and costs."""

    required = ("sku", "title", "price", "url", "deliveryTime")

    def columns_of(self, rules: PublishRules) -> dict[str, Getter]:
        columns: dict[str, Getter] = {
            "sku": lambda item: item.sku,
            "brand": lambda item: item.value("brand"),
            "title": lambda item: item.value("title"),
            "url": lambda item: item.value("link"),
            "eans": gtin,
            "description": lambda item: item.value("description"),
            "price": lambda item: item.value("price"),
            "deliveryTime": lambda item: rules.delivery_time,
            "imageUrls": lambda item: item.value("image_link"),
        }
        for carrier, cost in rules.delivery_costs.items():
            columns[f"deliveryCosts_{carrier}"] = _constant(cost)
        return columns


class GenericCsv(_Tabular):
    """A catalogue for print or social: the columns the config lists."""

    required = ()

    def columns_of(self, rules: PublishRules) -> dict[str, Getter]:
        return {header: _value(name) for header, name in rules.headers()}


class GenericJson(GenericCsv):
    """``{"products": [{column: value, ...}, ...]}``, one product a line; stock is a number."""

    def header(self, handle: TextIO) -> None:
        handle.write('{"products": [\n')
        self.first = True

    def write(self, handle: TextIO, row: dict[str, str | None]) -> None:
        values: dict[str, Any] = {}
        for (header, name), value in zip(self.rules.headers(), row.values(), strict=False):
            values[header] = int(value) if name == "stock" and value is not None else value
        for header in list(row)[len(values) :]:  # extra columns
            values[header] = row[header]
        handle.write(("" if self.first else ",\n") + json.dumps(values, ensure_ascii=False))
        self.first = False

    def footer(self, handle: TextIO) -> None:
        handle.write("\n]}\n")


FORMATS: dict[str, type[FeedFormat]] = {
    "google_xml": GoogleXml,
    "google_tsv": GoogleTsv,
    "meta_csv": MetaCsv,
    "idealo_csv": IdealoCsv,
    "csv": GenericCsv,
    "json": GenericJson,
}


def _xml_text(value: str | None) -> str:
    return _NOT_XML.sub("", value or "")
