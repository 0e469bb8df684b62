"""Spans of time as people write them in a config or on the command line: ``90s``, ``15m``,
``12h``, ``30d``, ``2w``, and combinations such as ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WHOLE = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*[smhdw])+\s*")
EXAMPLES = "e.g. 90s, 15m, 12h, 30d, 2w or 1h30m"


def parse_duration(text: str) -> timedelta:
    """``"15m"`` → 15 minutes. ValueError, naming the forms, for anything else (a bare number
    has no unit: minutes or days would be a guess)."""
    value = text.strip().lower()
    if not value or not _WHOLE.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration ({EXAMPLES})")
    span = timedelta()
    for amount, unit in _PART.findall(value):
        span += timedelta(**{_UNITS[unit]: float(amount)})
    return span


def format_duration(span: timedelta) -> str:
    """``timedelta(minutes=90)`` → ``1h30m``: the form :func:`parse_duration` reads."""
    seconds = int(span.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{value!r} needs a unit ({EXAMPLES})")
    return parse_duration(value)


#: A config value that is a duration (written ``15m``, held as a :class:`~datetime.timedelta`).
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^(\s*\d+(\.\d+)?\s*[smhdwSMHDW])+\s*$", "examples": ["15m"]}
    ),
]
