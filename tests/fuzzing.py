"""Mutated inputs for the fuzz test (tests/test_fuzz.py) and the longer run (bench/fuzz.py).

A valid project (canonical CSV, channel CSV, config) is damaged by mutations drawn from a
``random.Random``. Some mutations are *certainly broken* (a duplicate SKU, a price that is no
number, bytes that are not UTF-8, ...): a run on them must exit 2 or 3, never 0 or 1. Every
run, broken or not, must never end with exit 70 (an internal error) or show a traceback.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

HEADER = "sku,title,price,stock\n"
ROWS = [f"F-{i:03d},Product {i},{10 + i}.50,{i % 7}\n" for i in range(12)]

CONFIG = """\
settings:
  state: state.db
  timezone: Europe/Berlin
canonical:
  connector: csv
  options:
    path: erp.csv
    currency: EUR
    mapping: {sku: sku, title: title, price: price, stock: stock}
channels:
  shop:
    connector: csv
    options:
      path: shop.csv
      currency: EUR
      mapping: {sku: sku, title: title, price: price, stock: stock}
"""

#: Values that are never a valid canonical price.
BAD_PRICES = [
    "1" * 40,
    "-5.00",
    "١٢.٥٠",  # Arabic-Indic digits
    "12.3.4x",
    "1e999999",
    "NaN",
    "Infinity",
    "N/A",
    "12,50,00",
    "0x1F",
]
#: Values that are never a valid stock quantity.
BAD_STOCK = ["9" * 40, "٣", "1.5", "many", "1e30", "--3"]
#: Strings that may or may not break a file; anything goes, except a crash.
NOISE = [
    "\x00",
    "\r",
    "\n",
    '"',
    '""',
    "\ufeff",
    "\u2028",
    "\x1b[31m",
    ";",
    "\t",
    "é",
    "𝟘",
    "${HOME}",
    "'",
    "\\",
    " ",
    "0",
    "-0",
    "+1",
    "1_000",
    "١",
]


@dataclass
class Case:
    """One mutated project: the files' bytes and whether it is certainly broken."""

    erp: bytes
    shop: bytes
    config: str
    broken: bool
    what: str

    def write(self, folder: Path) -> Path:
        (folder / "erp.csv").write_bytes(self.erp)
        (folder / "shop.csv").write_bytes(self.shop)
        path = folder / "omnisync.yaml"
        path.write_text(self.config, encoding="utf-8")
        return path


def _valid() -> tuple[list[str], list[str]]:
    return [HEADER, *ROWS], [HEADER, *ROWS]


def _set_cell(rows: list[str], line: int, column: int, value: str) -> None:
    cells = rows[line].rstrip("\n").split(",")
    cells[column] = value
    rows[line] = ",".join(cells) + "\n"


def csv_case(rng: random.Random) -> Case:
    """A project whose canonical or channel CSV is mutated."""
    erp, shop = _valid()
    target = erp if rng.random() < 0.7 else shop
    side = "canonical" if target is erp else "channel"
    line = rng.randrange(1, len(target))
    kind = rng.choice(
        ["bad_price", "bad_stock", "duplicate", "not_utf8", "noise", "bytes", "cut", "column"]
    )
    broken = False
    raw: bytes | None = None
    if kind == "bad_price":
        value = rng.choice(BAD_PRICES)
        _set_cell(target, line, 2, value)
        # canonical: exit 2; a channel's bad value fails that channel (exit 3), except a
        # negative price, which a channel may really show: a mismatch (exit 1).
        broken = target is erp or value != "-5.00"
    elif kind == "bad_stock":
        _set_cell(target, line, 3, rng.choice(BAD_STOCK))
        broken = True
    elif kind == "duplicate":
        target.insert(rng.randrange(1, len(target) + 1), target[line])
        broken = target is erp
    elif kind == "not_utf8":
        _set_cell(target, line, 1, "Caf\udce9")  # lone surrogate → written as a raw 0xE9 byte
        broken = True
    elif kind == "noise":
        for _ in range(rng.randint(1, 4)):
            cell = rng.randrange(4)
            value = target[line].rstrip("\n").split(",")[cell]
            at = rng.randint(0, len(value))
            _set_cell(target, line, cell, value[:at] + rng.choice(NOISE) + value[at:])
    elif kind == "bytes":
        data = bytearray("".join(target).encode())
        for _ in range(rng.randint(1, 6)):
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        raw = bytes(data)
    elif kind == "cut":
        text = "".join(target)
        raw = text[: rng.randrange(len(text))].encode()
    else:  # a column renamed or lost from the header
        target[0] = rng.choice(["sku,title,price\n", "sku,titel,price,stock\n", "\n", "sku\n"])
        broken = True
    data = raw if raw is not None else "".join(target).encode("utf-8", "surrogateescape")
    erp_bytes = data if target is erp else "".join(erp).encode()
    shop_bytes = data if target is shop else "".join(shop).encode()
    return Case(erp_bytes, shop_bytes, CONFIG, broken, f"{side} {kind} line {line + 1}")


def config_case(rng: random.Random) -> Case:
    """A project whose config is mutated."""
    erp, shop = _valid()
    lines = CONFIG.splitlines(keepends=True)
    kind = rng.choice(
        ["unknown_key", "bad_connector", "yaml_syntax", "bad_value", "noise", "drop", "indent"]
    )
    broken = True
    if kind == "unknown_key":
        lines.insert(rng.randrange(len(lines) + 1), "colour: blue\n")
        broken = False  # inside a mapping of free options it may be legal; exit 2 or 0 alike
    elif kind == "bad_connector":
        lines = [line.replace("connector: csv", "connector: cvs", 1) for line in lines]
    elif kind == "yaml_syntax":
        # Each is invalid wherever it goes (" {" after a plain value would still be YAML).
        bad = rng.choice(["oops: [1, 2\n", "oops: {a: 1\n", "key: 'open\n", "  - : :\n", "\t- x\n"])
        lines.insert(rng.randrange(len(lines) + 1), bad)
    elif kind == "bad_value":
        replacements = {
            "timezone: Europe/Berlin": rng.choice(["timezone: Mars/Base", "timezone: 12"]),
            "currency: EUR": rng.choice(["currency: EURO", "currency: [1, 2]", "currency: 7"]),
            "state: state.db": rng.choice(["state: [a]", "state: {x: 1}"]),
        }
        old, new = rng.choice(list(replacements.items()))
        lines = [line.replace(old, new) for line in lines]
    elif kind == "noise":
        at = rng.randrange(len(lines))
        pos = rng.randint(0, len(lines[at]))
        lines[at] = (
            lines[at][:pos]
            + rng.choice([*NOISE, "!include x", "*a", "&a", "%"])
            + (lines[at][pos:])
        )
        broken = False
    elif kind == "drop":
        del lines[rng.randrange(len(lines))]
        broken = False
    else:
        at = rng.randrange(len(lines))
        lines[at] = " " * rng.randint(1, 3) + lines[at]
        broken = False
    return Case(
        "".join(erp).encode(), "".join(shop).encode(), "".join(lines), broken, f"config {kind}"
    )


def case(rng: random.Random) -> Case:
    return csv_case(rng) if rng.random() < 0.6 else config_case(rng)


#: What a run may end with: 0 consistent, 1 mismatches, 2 input/config error, 3 channel error.
ALLOWED = {0, 1, 2, 3}
BROKEN_ALLOWED = {2, 3}


def verdict(case: Case, exit_code: int, output: str) -> str | None:
    """Why this run is wrong, or None when it behaved."""
    if exit_code == 70 or "Traceback" in output or "internal error" in output.lower():
        return f"internal error (exit {exit_code})"
    if exit_code not in ALLOWED:
        return f"unexpected exit {exit_code}"
    if case.broken and exit_code not in BROKEN_ALLOWED:
        return f"silently accepted (exit {exit_code})"
    return None
