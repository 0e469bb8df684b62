"""What every part of one channel's diff shares: the comparison it runs and the findings it collects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from omnisync.config import ChannelConfig
from omnisync.expect import PriceBasis, SaleMode
from omnisync.load import Engine, Side
from omnisync.models import Field, Finding


@dataclass(frozen=True)
class ChannelComparison:
    """What one channel's diff compares: two loaded sides and the rules between them."""

    #: The channel's name in the config.
    name: str
    canonical: Side
    channel: Side
    config: ChannelConfig
    #: Whether canonical prices are net or gross (``canonical.prices``).
    canonical_basis: PriceBasis
    #: The moment sale windows are evaluated at.
    evaluated_at: datetime
    #: What the diff says about how it compared (``expect.lag``'s SKUs held back), for the
    #: channel report's notes.
    notes: list[str] = field(default_factory=list)


def compared_fields(
    canonical: frozenset[Field], channel: frozenset[Field], config: ChannelConfig
) -> list[Field]:
    """Fields compared for a channel: both sides carry them (availability derives from stock)."""
    derivable = set(canonical)
    if Field.STOCK in canonical:
        derivable.add(Field.AVAILABILITY)
    if Field.PRICE in canonical:
        derivable.add(Field.SALE_PRICE)
    fields = [f for f in Field if f in channel and f in derivable]
    if config.expect.price.sale not in (SaleMode.SEPARATE, SaleMode.SCHEDULED):
        fields = [f for f in fields if f is not Field.SALE_PRICE]
    if config.expect.check is not None:
        wanted = set(config.expect.check)
        fields = [f for f in fields if f in wanted]
    return fields


def uncompared_notes(
    canonical: frozenset[Field], channel: frozenset[Field], config: ChannelConfig
) -> list[str]:
    """What the channel carries that is not checked because canonical cannot say what it
    should be (never what ``expect.check`` leaves out on purpose): one line, said once."""
    compared = set(compared_fields(canonical, channel, config))
    wanted = set(config.expect.check) if config.expect.check is not None else set(Field)
    left = [f for f in Field if f in channel and f in wanted and f not in compared]
    if config.expect.price.sale not in (SaleMode.SEPARATE, SaleMode.SCHEDULED):
        left = [f for f in left if f is not Field.SALE_PRICE]
    reasons = {
        Field.AVAILABILITY: "canonical carries neither stock nor availability",
        Field.SALE_PRICE: "canonical carries no price",
    }
    plain = [f.value for f in left if f not in reasons]
    notes = []
    if plain:
        them = "it" if len(plain) == 1 else "them"
        notes.append(f"not checked: {', '.join(plain)} (canonical does not carry {them})")
    notes += [f"not checked: {f.value} ({reasons[f]})" for f in left if f in reasons]
    return notes


#: Text fields a table may hold uncomposed (see TableTarget): composed (NFC) wherever the


class _DiffBase:
    """One channel's diff: the state its parts share."""

    def __init__(self, engine: Engine, comparison: ChannelComparison) -> None:
        self.engine = engine
        self.con = engine.con
        self.name = comparison.name
        self.canonical = canonical = comparison.canonical
        self.channel = channel = comparison.channel
        self.config = config = comparison.config
        self.basis = comparison.canonical_basis
        self.now = comparison.evaluated_at.astimezone(UTC).replace(tzinfo=None)
        self.fields = compared_fields(canonical.fields, channel.fields, config)
        self.findings: list[Finding] = []
        self.notes = comparison.notes
        #: Missing SKUs, whose findings get the whole expected record (for creates).
        self.missing: dict[str, Finding] = {}
        self._stock_rule: str | None = None
        self._price_rules: dict[Decimal | None, str] = {}
        #: The fields compared per row (stock has its own findings): field, flag column, name.
        self._compared = [(f, f"d_{f.value}", f.value) for f in self.fields if f is not Field.STOCK]
