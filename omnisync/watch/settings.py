"""The ``watch:`` block of the config: where events come in and how they become pushes."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from omnisync.expect import Strict

#: Kinds of webhook ``watch`` verifies and reads (see :mod:`omnisync.watch.sources`).
WebhookType = Literal["shopify", "woocommerce", "shopware6", "generic"]


class Webhook(Strict):
    """One webhook endpoint, ``POST /webhooks/<name>``."""

    type: WebhookType
    #: The shared secret the sender signs with (Shopify: the app's client secret;
    #: WooCommerce: the webhook's secret; Shopware: the shop secret of the app registration).
    #: Required: a request without a valid signature is always refused.
    secret: SecretStr = Field(min_length=1)
    #: What changed: ``canonical`` or a channel's name (default: the webhook's own name).
    source: str | None = None


class WatchSettings(Strict):
    """How ``omnisync watch`` runs."""

    #: Address the event intake listens on; loopback unless you put it behind a proxy.
    listen: str = "127.0.0.1:8787"
    #: Largest request body accepted, in bytes (a larger one is answered 413).
    max_body: int = Field(default=1_048_576, ge=1024)
    #: Events are gathered this long after the first of a burst arrives, so many events on
    #: one SKU become one write.
    coalesce_seconds: Annotated[Decimal, Field(ge=0, le=60)] = Decimal("0.2")
    #: Most events handled in one go.
    batch: int = Field(default=2000, ge=1)
    #: An incremental pass over every channel (repairs what a lost webhook missed).
    interval_seconds: int = Field(default=300, ge=1)
    #: A full pass (every source read in full, no incremental marks).
    reconcile_seconds: int = Field(default=3600, ge=1)
    #: The window the channel guardrails (``max_records``, ``max_records_pct``) count in:
    #: changes pushed by earlier event batches in the window count towards the limit.
    guard_window_seconds: int = Field(default=600, ge=1)
    #: An event that keeps failing is given up after this many attempts (then it is
    #: ``failed`` in the queue, and the next pass repairs what it would have).
    max_attempts: int = Field(default=5, ge=1)
    #: Settled events are kept this many days (``omnisync runs`` shows them).
    keep_days: int = Field(default=7, ge=1)
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    #: Sources whose change feed is followed between passes (a file canonical by its
    #: snapshot, a SQL source by its outbox: see ``omnisync outbox``).
    feeds: list[str] = Field(default_factory=lambda: ["canonical"])
    #: Seconds between looks at a feed (a PostgreSQL outbox wakes the watcher at once).
    poll_seconds: Annotated[Decimal, Field(gt=0, le=3600)] = Decimal(1)

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        host, port = split_address(value)
        if not host or not 0 < port < 65536:
            raise ValueError(f"{value!r}: use host:port, e.g. 127.0.0.1:8787")
        return value

    @field_validator("webhooks")
    @classmethod
    def _names(cls, value: dict[str, Webhook]) -> dict[str, Webhook]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
                raise ValueError(f"webhook name {name!r}: use letters, digits, '-', '_' or '.'")
        return value

    def source_of(self, name: str) -> str:
        return self.webhooks[name].source or name


def split_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8787`` for IPv6) as a pair; port 0 when it is not a number."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    return host, int(port) if port.isdigit() else 0
