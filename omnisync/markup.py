"""HTML descriptions as text, and text as HTML: how a shop's rich description compares with
the ERP's plain one.

Shops store descriptions as HTML (Shopify's ``Body (HTML)`` and ``descriptionHtml``,
WooCommerce, Shopware 6); ERPs and PIMs hand out text. Compared as text, ``<p>Soft cotton
tee.</p>`` differs from ``Soft cotton tee.`` on every product. A source whose description is
HTML (``description_format: html``, set by the shop presets and the shop connectors) is
therefore read through :func:`html_text`: the words a customer reads, with markup, comments,
scripts and styles dropped, entities decoded and block elements as line breaks. The diff then
compares text with text (whitespace runs count as one space, as for every text).

Writing canonical text into such a field goes through :func:`text_html`, which escapes
``& < >`` and marks line breaks and paragraphs, so that the shop shows the text as written
and reading it back gives the same text: ``html_text(text_html(t))`` equals ``t`` up to
whitespace. Text without those characters or line breaks is written unchanged.

The parser is the standard library's :class:`html.parser.HTMLParser` (the tolerant HTML5-ish
tokenizer CPython maintains), never regular expressions: it copes with unclosed tags,
attributes holding ``>``, comments and character references.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Literal

from omnisync.normalize import clean_text

#: How a source writes descriptions.
DescriptionFormat = Literal["text", "html"]

#: Elements that end a line of text where they open or close.
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
#: Elements whose content is never shown.
_HIDDEN = frozenset(
    ["head", "script", "style", "template", "noscript", "iframe", "object", "svg", "math"]
)
_SPACES = re.compile(r"[ \t\n\r\f\v\u00a0]+")
_PARAGRAPHS = re.compile(r"\n[ \t]*\n\s*")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.hidden = 0

    def _break(self) -> None:
        text = _SPACES.sub(" ", "".join(self.line)).strip()
        if text:
            self.lines.append(text)
        self.line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self._break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.line.append(data)


#: A tag without attributes (``<p>``, ``</li>``, ``<br/>``): all most shop descriptions hold.
_PLAIN_TAG = re.compile(
    r"<(?:/([A-Za-z][A-Za-z0-9]*)[ \t\n\r\f]*|([A-Za-z][A-Za-z0-9]*)[ \t\n\r\f]*/?)>"
)


def html_text(value: str) -> str:
    """The text a reader of the HTML ``value`` sees: one line per block, words separated by
    single spaces, entities decoded (``&amp;`` is ``&``, ``&nbsp;`` a space). Text with
    neither ``<`` nor ``&`` holds no markup and is returned as it is (its line breaks too:
    the diff counts any whitespace run as one space anyway)."""
    if "<" not in value and "&" not in value:
        return value
    simple = _plain_text(value)
    if simple is not None:
        return simple
    parser = _Text()
    parser.feed(value)
    parser.close()
    parser._break()
    return "\n".join(parser.lines)


def _plain_text(value: str) -> str | None:
    """:func:`html_text` of markup made only of tags without attributes, outside hidden
    elements, and no entities: the parser's result without the parser (a tenth of its time,
    which a pull of a large shop's descriptions notices). None for anything else."""
    if "&" in value:
        return None
    lines: list[str] = []
    line: list[str] = []

    def end_line() -> None:
        text = _SPACES.sub(" ", "".join(line)).strip()
        if text:
            lines.append(text)
        line.clear()

    at = 0
    for tag in _PLAIN_TAG.finditer(value):
        data = value[at : tag.start()]
        if "<" in data:
            return None  # a "<" that starts no plain tag: a comment, attributes, text
        line.append(data)
        name = (tag.group(1) or tag.group(2)).lower()
        if name in _HIDDEN:
            return None
        if name in _BLOCKS:
            end_line()
        at = tag.end()
    rest = value[at:]
    if "<" in rest:
        return None
    line.append(rest)
    end_line()
    return "\n".join(lines)


def text_html(text: str) -> str:
    """Plain ``text`` as HTML that shows it: ``& < >`` escaped, blank-line separated
    paragraphs as ``<p>``, single line breaks as ``<br>``. One line of ordinary text is
    returned as it is."""
    escaped = html.escape(text.replace("\r\n", "\n").replace("\r", "\n").strip(), quote=False)
    if "\n" not in escaped:
        return escaped
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(escaped) if p.strip()]
    body = ["<br>\n".join(line.strip() for line in p.split("\n")) for p in paragraphs]
    if len(body) == 1:
        return body[0]
    return "\n".join(f"<p>{p}</p>" for p in body)


def read_html(value: object) -> str | None:
    """A connector's HTML description field as the text compared (blank: ``None``)."""
    return clean_text(html_text(value)) if isinstance(value, str) else None


def write_html(value: object) -> str:
    """A change's description value (text or ``None``) as the HTML field a shop stores."""
    return text_html(str(value)) if value is not None else ""
