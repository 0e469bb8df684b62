"""The ``publish:`` block of a channel: which feed format ``omnisync publish`` writes and the
values a feed needs that canonical does not carry (landing page and image URLs, condition)."""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from omnisync.expect import Strict

#: The formats ``publish`` writes (see :mod:`omnisync.publish.formats`).
FeedFormat = Literal["google_xml", "google_tsv", "meta_csv", "idealo_csv", "csv", "json"]

#: Values a template or a ``columns`` entry may name, besides ``attributes.<name>``.
VALUES = (
    "sku",
    "title",
    "description",
    "brand",
    "gtin",
    "price",
    "currency",
    "sale_price",
    "sale_start",
    "sale_end",
    "availability",
    "stock",
    "link",
    "image_link",
)
#: Canonical values a URL or ``extra`` template may use (the computed ones are not text).
TEMPLATE_VALUES = ("sku", "title", "brand", "gtin")


def template_names(template: str) -> list[str]:
    """The placeholders of ``template``; ValueError for unknown ones."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid template {template!r}: {exc}") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_VALUES and not name.startswith("attributes."):
            raise ValueError(
                f"unknown placeholder {{{name}}} (use {', '.join(TEMPLATE_VALUES)} "
                "or attributes.<name>)"
            )
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} cannot have a format spec or conversion")
        names.append(name)
    return names


class PublishRules(Strict):
    """What ``omnisync publish`` writes for this channel: the file its connector reads
    (``options.path``), in ``format``, with the channel's expected values."""

    format: FeedFormat
    #: Landing page URL template, e.g. ``https://shop.example/p/{sku}`` (values URL-encoded);
    #: or ``{attributes.url}`` for a URL canonical carries.
    link: str | None = None
    #: Main image URL template, like ``link``.
    image_link: str | None = None
    #: Google/Meta ``condition`` of every item: new, refurbished or used.
    condition: Literal["new", "refurbished", "used"] = "new"
    #: More columns with a template each, e.g. ``{mpn: "{attributes.mpn}",
    #: google_product_category: "Home & Garden"}``.
    extra: dict[str, str] = Field(default_factory=dict)
    #: ``csv``/``json``: the columns, in order: value names (``sku``, ``price``, ...,
    #: ``attributes.colour``), or ``{column header: value name}``.
    columns: list[str] | dict[str, str] | None = None
    #: An item without a value the format requires: ``refuse`` the whole feed (naming each
    #: item) or ``skip`` the item (named in the output) and publish the rest.
    on_invalid: Literal["refuse", "skip"] = "refuse"
    #: RSS channel title and description of the Google XML feed.
    title: str = "Products"
    #: idealo: delivery time shown (``"1-3 working days"``) and delivery costs per carrier
    #: (``{dhl: "4.95"}`` becomes the column ``deliveryCosts_dhl``).
    delivery_time: str | None = None
    delivery_costs: dict[str, str] = Field(default_factory=dict)
    #: Refuse a feed with fewer than this share of the items of the last publish (or of the
    #: file now), as a truncated canonical export would make it; ``--force`` overrides.
    min_ratio: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.5")

    @field_validator("link", "image_link")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            template_names(value)
        return value

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: dict[str, str]) -> dict[str, str]:
        for template in value.values():
            template_names(template)
        return value

    @field_validator("columns")
    @classmethod
    def _columns(
        cls, value: list[str] | dict[str, str] | None
    ) -> list[str] | dict[str, str] | None:
        names = value.values() if isinstance(value, dict) else value or []
        for name in names:
            if name not in VALUES and not name.startswith("attributes."):
                raise ValueError(
                    f"unknown column value {name!r} (use {', '.join(VALUES)} or attributes.<name>)"
                )
        if value is not None and not value:
            raise ValueError("list at least one column")
        return value

    @model_validator(mode="after")
    def _columns_for_generic(self) -> PublishRules:
        if self.format in ("csv", "json") and self.columns is None:
            raise ValueError(f"format {self.format!r} needs `columns` (e.g. [sku, title, price])")
        if self.format not in ("csv", "json") and self.columns is not None:
            raise ValueError(
                f"format {self.format!r} has its own columns; `columns` is for csv and json"
            )
        return self

    def headers(self) -> list[tuple[str, str]]:
        """``csv``/``json``: (column header, value name) in order."""
        if isinstance(self.columns, dict):
            return list(self.columns.items())
        return [(name, name) for name in self.columns or []]
