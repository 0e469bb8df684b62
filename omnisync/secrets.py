"""Secret masking: every value that came from ``${ENV}``/``${file:...}`` or a secret-looking key
is registered here, and every piece of text that leaves omnisync (console, logs, reports, the
state store) is passed through :func:`mask` first.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

#: Option names whose values are secrets even when written literally in the config.
SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|auth|credential)", re.IGNORECASE)
#: ``scheme://user:password@host`` — the password part of URLs.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)", re.I
)


def register(value: str) -> None:
    """Remember ``value`` as a secret. Very short values are ignored: masking ``1`` everywhere
    would destroy reports while protecting nothing."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def forget_all() -> None:
    """Clear the registry (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def mask(text: str) -> str:
    """``text`` with every registered secret and every URL password replaced by ``***``."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "://" not in text:  # no URL, no URL password: skip the regex (reports mask every value)
        return text
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
