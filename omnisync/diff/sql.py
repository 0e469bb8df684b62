"""SQL and value helpers of the diff: expected text, normalised comparisons, the screen builder, nested explanations."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from omnisync import expect
from omnisync.expect import TextRule
from omnisync.models import Field, Money
from omnisync.sdk.values import money_json, sale_json

#: Finding order within one SKU.
FIELD_ORDER = {f.value: i for i, f in enumerate(Field)}


def _mj(amount: Decimal | None, currency: str | None) -> dict[str, str] | None:
    return money_json(Money(amount, currency)) if amount is not None and currency else None


def _sj(
    amount: Decimal | None, currency: str | None, start: datetime | None, end: datetime | None
) -> dict[str, Any] | None:
    if amount is None or not currency:
        return None
    return sale_json(Money(amount, currency), start, end)


def _stamp(value: datetime | None, zone: ZoneInfo) -> str:
    """A stored (naive UTC) moment shown in the configured zone: ``2026-11-01 00:00 CET``."""
    if value is None:
        return "…"
    local = value.replace(tzinfo=UTC).astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


COMPOSED_LATER = frozenset({"title", "description", "brand"})


def _nfc(value: str | None) -> str | None:
    return None if value is None else unicodedata.normalize("NFC", value)


def _composed(name: str) -> str:
    """SQL of canonical field ``name`` in NFC (only text that can change is normalised)."""
    column = f"c.{name}"
    if name not in COMPOSED_LATER:
        return column
    return (
        f"(CASE WHEN strlen({column}) <> length({column}) "
        f"AND regexp_matches({column}, '[\\x{{300}}-\\x{{10FFFF}}]') "
        f"THEN nfc_normalize({column}) ELSE {column} END)"
    )


def _expected_text(field: str, rule: TextRule) -> str:
    """The expected text SQL; a template or a length cut measures composed text."""
    if rule.template is None and rule.max_length is None:
        return f"c.{field}"
    return expect.text_sql(field, rule, _composed)


def _norm_text(expr: str) -> str:
    return f"nullif(trim(regexp_replace(nfc_normalize({expr}), '\\s+', ' ', 'g')), '')"


def _norm_gtin(expr: str) -> str:
    return f"lpad({expr}, 14, '0')"


def _text_differs(expected: str, actual: str) -> str:
    """Whether two texts differ once normalised; equal texts skip the (costly) normalising,
    which only ever makes equal texts equal."""
    return (
        f"(CASE WHEN {expected} IS NOT DISTINCT FROM {actual} THEN false "
        f"ELSE {_norm_text(expected)} IS DISTINCT FROM {_norm_text(actual)} END)"
    )


#: Fields whose blank canonical value is unknown (a blank sale price means "no sale").
_BLANKABLE = (
    Field.TITLE,
    Field.DESCRIPTION,
    Field.GTIN,
    Field.BRAND,
    Field.ATTRIBUTES,
    Field.PRICE,
)


@dataclass
class _Screen:
    """The SQL of both steps of :meth:`_ChannelDiff._items`, collected field by field."""

    #: What the channel should show, derived once per canonical row (CTE ``x``).
    pre: dict[str, str]
    #: Step 2's select list.
    select: list[str]
    #: Step 1's columns of ``_cand``: ``s_<field>`` is true where the field may differ.
    screens: list[str] = dataclass_field(default_factory=list)
    #: Step 2's exact verdicts (``d_<field>``) of the fields whose screen is a hash.
    confirmed: list[str] = dataclass_field(default_factory=list)
    #: The channel's text hashes, computed before the join like the canonical ones in ``pre``
    #: (the join then carries 8 bytes per text, not the text).
    hashed: list[str] = dataclass_field(default_factory=list)

    def add(
        self,
        field: Field,
        columns: list[str],
        flag: str,
        texts: tuple[str, str] | None = None,
        known: str | None = None,
    ) -> None:
        """``flag``: SQL that is true where ``field`` differs. ``texts``: the SQL of the
        expected text (over the canonical row) and of the channel's column: screened by
        hash in step 1, confirmed by ``flag`` in step 2. ``known``: SQL over the
        canonical row, false where its value is blank, i.e. unknown: never a difference
        (:meth:`_ChannelDiff._blanks` reports it)."""
        name = field.value
        only = f"{known} AND " if known else ""
        # A field's values only travel to Python for the rows where it may differ.
        for column in columns:
            sql, alias = column.rsplit(" AS ", 1)
            self.select.append(f"CASE WHEN k.s_{name} THEN {sql} END AS {alias}")
        if texts is None:
            self.screens.append(f"({only}({flag})) AS s_{name}")
            self.select.append(f"k.s_{name} AS d_{name}")
            return
        expected, actual = texts
        self.pre[f"_h_{name}"] = f"hash({expected})"
        self.hashed.append(f"hash({actual}) AS _h_{name}")
        self.screens.append(f"({only}c._h_{name} <> a._h_{name}) AS s_{name}")
        self.select.append(f"(CASE WHEN k.s_{name} THEN {flag} ELSE false END) AS d_{name}")
        self.confirmed.append(f"d_{name}")


def explain_nested(canonical: str | None, actual: str | None) -> str:
    """A short human explanation of how two nested values (JSON objects) differ."""
    from deepdiff import DeepDiff

    left = json.loads(canonical) if canonical else {}
    right = json.loads(actual) if actual else {}
    diff = DeepDiff(left, right, ignore_order=True, verbose_level=2)
    parts = []
    for key, label in (
        ("values_changed", "changed"),
        ("dictionary_item_added", "only in channel"),
        ("dictionary_item_removed", "missing in channel"),
        ("type_changes", "type changed"),
        ("iterable_item_added", "only in channel"),
        ("iterable_item_removed", "missing in channel"),
    ):
        entries = diff.get(key)
        if not entries:
            continue
        items = entries.items() if isinstance(entries, dict) else ((e, None) for e in entries)
        for path, change in items:
            name = str(path).removeprefix("root")
            if isinstance(change, dict) and "old_value" in change:
                parts.append(f"{name}: {change['old_value']!r} → {change['new_value']!r}")
            else:
                parts.append(f"{name} {label}")
    return "; ".join(parts) or "differs"
