"""Secret masking for text people read.

What is a secret
    Only what is secret is registered: option fields a connector declares secret (pydantic
    ``SecretStr`` fields of its ``Options``, or names listed in its ``secret_options``) — with
    every ``${ENV}``/``${file:...}`` value substituted into them — the password part of
    ``scheme://user:password@host`` URLs anywhere in the config, and credentials a connector
    obtains at run time (access tokens). A path, a URL without credentials, a currency or a mode
    word such as ``basic`` is no secret, wherever it came from, and is shown in clear.

Where masking happens
    Only in text for people: the terminal, logs, reports (JSON/CSV/JUnit/Markdown are read by
    people too), and the messages the state store keeps. Never in a value that is compared,
    planned, journalled or written to a channel: masking such a value would push ``***`` into a
    shop and keep a check from ever converging.

How text is masked (so that a secret that is also a word does not damage ordinary text)
    * A text that *is* a secret (leading/trailing blanks aside) is masked whole, however short:
      a report cell or a field value equal to a secret.
    * In free text, a secret of at least :data:`MIN_FREE_TEXT` characters is masked where it
      stands as a whole word (no letter, digit or ``_`` right before or after it): a password
      ``hunter`` masks "the hunter's shop" but leaves "Headhunters Ltd" alone.
    * A secret of at least :data:`MIN_ANYWHERE` characters that is not made of letters only
      (a token such as ``cs_9a8b...``) is masked wherever it occurs, even inside a longer word.
    * Shorter secrets are masked only as whole values, and values under :data:`MIN_LENGTH`
      characters are not registered at all: masking ``1`` would destroy every report while
      protecting nothing.
    * Every URL password is masked, registered or not.
    A secret's URL-encoded and JSON-escaped forms are registered with it, since messages quote
    request URLs and reports escape values.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import typing
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any
from urllib.parse import quote, unquote

from pydantic import BaseModel, SecretStr

MASK = "***"
#: Values shorter than this are not registered.
MIN_LENGTH = 4
#: Secrets at least this long are masked in free text (as whole words); shorter ones only as
#: whole values.
MIN_FREE_TEXT = 6
#: Secrets at least this long that are not letters only are masked wherever they occur.
MIN_ANYWHERE = 8

_lock = threading.Lock()
_secrets: set[str] = set()
#: The secrets too short for free text: only these need the whole-value test in bulk.
_short: set[str] = set()
_pattern: re.Pattern[str] | None = None

#: ``scheme://user:password@host`` — the password part of URLs.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<tail>@)", re.I
)
#: No letter, digit (of any script) or underscore right before / after: a password ``secret``
#: must not turn ``options.consumer_secret`` into ``options.consumer_***``.
_START, _END = r"(?<!\w)", r"(?!\w)"
#: ``?password=...`` in a URL's query (SQLAlchemy and libpq accept it there).
_QUERY_PASSWORD = re.compile(r"[?&](?:password|passwd|pwd)=(?P<pw>[^&#\s]+)", re.I)


def _variants(value: str) -> set[str]:
    """``value`` as it may appear in text: as is, stripped, URL-encoded, JSON-escaped."""
    stripped = value.strip()
    return {stripped, quote(stripped, safe=""), json.dumps(stripped, ensure_ascii=False)[1:-1]}


def _alternative(secret: str) -> str:
    escaped = re.escape(secret)
    if len(secret) >= MIN_ANYWHERE and not secret.isalpha():
        return escaped
    return f"{_START}{escaped}{_END}"


def register(value: str) -> None:
    """Remember ``value`` as a secret (see the module docstring for how it is masked)."""
    register_all((value,))


def register_all(values: Iterable[str]) -> None:
    """Remember each of ``values`` as a secret, building the masking pattern once (a key
    file's lines, registered one by one, would rebuild it for each)."""
    global _pattern
    kept = [v for v in values if v and len(v.strip()) >= MIN_LENGTH]
    if not kept:
        return
    with _lock:
        new = set().union(*map(_variants, kept)) - _secrets
        if not new:
            return
        _secrets.update(new)
        _short.update(s for s in new if len(s) < MIN_FREE_TEXT)
        free = sorted((s for s in _secrets if len(s) >= MIN_FREE_TEXT), key=len, reverse=True)
        _pattern = re.compile("|".join(map(_alternative, free))) if free else None


def register_url_passwords(text: str) -> None:
    """Register the password of every ``scheme://user:password@host`` URL in ``text`` (and a
    ``?password=`` in its query)."""
    if "://" not in text:
        return
    for match in chain(_URL_PASSWORD.finditer(text), _QUERY_PASSWORD.finditer(text)):
        register(match["pw"])
        register(unquote(match["pw"]))


def register_model(model: BaseModel) -> None:
    """Register every ``SecretStr`` value of a validated model (nested models included)."""
    for value in _walk(model):
        if isinstance(value, SecretStr):
            register(value.get_secret_value())


def _walk(value: Any) -> Iterator[Any]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)
    else:
        yield value


def secret_paths(
    model: type[BaseModel], raw: Any, extra: Iterable[str] = ()
) -> Iterator[tuple[Any, ...]]:
    """The keys of ``raw`` (options as written, before validation) that ``model`` declares
    secret: its ``SecretStr`` fields and the names in ``extra``, in nested models too. Works on
    options that fail validation, so that their secrets are masked in the error messages."""
    if not isinstance(raw, Mapping):
        return
    names = set(extra)
    for name, info in model.model_fields.items():
        if name not in raw:
            continue
        if name in names or _declares(info.annotation, SecretStr):
            yield (name,)
            continue
        inner = _nested_model(info.annotation)
        value = raw[name]
        if inner is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from ((name, i, *path) for path in secret_paths(inner, item))
        else:
            yield from ((name, *path) for path in secret_paths(inner, value))


def _declares(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_declares(arg, kind) for arg in typing.get_args(annotation))


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def forget_all() -> None:
    """Clear the registry (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _short.clear()
        _pattern = None


def is_secret(text: str) -> bool:
    """``text`` is, blanks aside, a registered secret."""
    return bool(_secrets) and text.strip() in _secrets


def any_short_secret(texts: Iterable[str]) -> bool:
    """Some text of ``texts`` is a secret too short for :func:`mask`'s free-text pattern (which
    finds every longer one, also as a whole value): the bulk test renderers make first."""
    return bool(_short) and any(t.strip() in _short for t in texts)


def mask(text: str) -> str:
    """``text`` for people: registered secrets and URL passwords replaced by ``***``."""
    if not text:
        return text
    if is_secret(text):
        return MASK
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
