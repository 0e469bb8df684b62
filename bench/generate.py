"""Deterministic benchmark data: a canonical catalogue and a drifted channel copy.

For ``n`` products (seeded, so every run and every machine writes the same bytes)::

    canonical.csv          sku,title,description,gtin,price,currency,stock   UTF-8, ',', 1299.00
    canonical_de.csv       the same catalogue as a German ERP writes it:
                           Artikelnummer;Bezeichnung;...   cp1252, ';', 1.299,00
    channel.csv            the shop: gross prices (19% VAT, rounded to .99), stock less a
                           buffer of 2, with drift: 1% prices, 2% stock, 0.5% titles changed,
                           0.3% of the products missing, 0.2% extra ones, rows shuffled
    truth.tsv              what the drift changed: ``sku <TAB> kind <TAB> field`` per mismatch

Titles carry umlauts and cp1252's typographic quotes (``„Bella“``), descriptions are ~200
characters with commas (so they are quoted), some GTINs are 12-digit UPCs that the channel
writes zero-padded to 13 digits (equal once normalised).

    python -m bench.generate --size 1M --out bench/data/1M
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

SEED = 20260501
VAT_PERCENT = 119  # gross = net * 119 / 100
ENDING_CENTS = 99  # prices end in .99
BUFFER = 2  # units held back from the shop

#: Drift of the channel copy, as probabilities per product.
PRICE_DRIFT = 0.01
STOCK_DRIFT = 0.02
TITLE_DRIFT = 0.005
MISSING = 0.003
EXTRA = 0.002

HEADER = ["sku", "title", "description", "gtin", "price", "currency", "stock"]
HEADER_DE = [
    "Artikelnummer",
    "Bezeichnung",
    "Beschreibung",
    "EAN",
    "VK netto",
    "Währung",
    "Bestand",
]

_NOUNS = [
    "Kaffeemühle",
    "Espressokocher",
    "Milchaufschäumer",
    "Wasserkocher",
    "Teekanne",
    "Küchenwaage",
    "Brotbackautomat",
    "Stabmixer",
    "Schneebesen",
    "Gewürzmühle",
    "Pfannenwender",
    "Bräter",
    "Schöpflöffel",
    "Toaster",
    "Saftpresse",
    "Eierkocher",
]
_ADJECTIVES = [
    "Edelstahl",
    "Gusseisen",
    "Glas",
    "Keramik",
    "Bambus",
    "Kupfer",
    "Aluminium",
    "Silikon",
]
_NAMES = ["Bella", "Größe XL", "Süße Küche", "Café", "Nordlicht", "Mühlenwerk", "Grün", "Ölmühle"]
_SENTENCES = [
    "Robust verarbeitet, spülmaschinenfest und für den täglichen Einsatz gemacht.",
    "Mit ergonomischem Griff, rutschfestem Fuß und zwei Jahren Garantie.",
    "Ideal für Gas-, Elektro- und Induktionsherde, auch im Backofen verwendbar.",
    "Leise, sparsam und schnell: in wenigen Minuten einsatzbereit.",
    "Hergestellt in Europa, Verpackung aus recyceltem Karton.",
    "Einfach zu reinigen, alle Teile lassen sich ohne Werkzeug abnehmen.",
    "Klassisches Design, passt in jede Küche und ist platzsparend zu verstauen.",
    "Mit Überhitzungsschutz, Abschaltautomatik und Kabelaufwicklung.",
    "Für Profis und Einsteiger, mit ausführlicher Anleitung und Rezeptheft.",
    "Leichtgewicht mit stabilem Stand, Füße aus Naturkautschuk.",
    "Wärmeisoliert, hält Getränke bis zu sechs Stunden heiß.",
    "Präzise Einstellung in 18 Stufen, von grob bis sehr fein.",
]


def parse_size(text: str) -> int:
    """``100k`` -> 100000, ``1M`` -> 1000000, ``250000`` -> 250000."""
    text = text.strip()
    factor = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor != 1 else text
    return int(float(number) * factor)


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def expected_gross_cents(net_cents: int) -> int:
    """The shop's price: net + 19% VAT, rounded to the nearest price ending in .99 (half up),
    never below 0.99. Integer arithmetic, the oracle for every approach."""
    gross = net_cents * VAT_PERCENT  # in 1/10000 of the currency unit
    shifted = gross - ENDING_CENTS * 100
    units = (shifted + 5_000) // 10_000 if shifted >= 0 else -((-shifted + 5_000) // 10_000)
    return max(units * 100 + ENDING_CENTS, ENDING_CENTS)


def expected_stock(qty: int) -> int:
    return max(qty - BUFFER, 0)


def _gtin(i: int, upc: bool) -> str:
    body = f"{i % 10**10:010d}"
    digits = ("0" if upc else "40") + body
    if upc:
        digits = digits[:11]
    odd = sum(int(d) for d in digits[-1::-2])
    even = sum(int(d) for d in digits[-2::-2])
    check = (10 - (odd * 3 + even) % 10) % 10
    return digits + str(check)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _money_de(cents: int) -> str:
    whole = f"{cents // 100:,}".replace(",", ".")
    return f"{whole},{cents % 100:02d}"


class Product:
    __slots__ = ("description", "gtin", "net", "sku", "stock", "title", "upc")

    def __init__(
        self, sku: str, title: str, description: str, gtin: str, net: int, stock: int, upc: bool
    ) -> None:
        self.sku = sku
        self.title = title
        self.description = description
        self.gtin = gtin
        self.net = net
        self.stock = stock
        self.upc = upc


def _product(rng: random.Random, sku: str, i: int) -> Product:
    noun = rng.choice(_NOUNS)
    title = f"{noun} {rng.choice(_ADJECTIVES)} {i % 997}"
    if rng.random() < 0.05:
        title = f"{noun} „{rng.choice(_NAMES)}“ {rng.choice(_ADJECTIVES)}"
    sentences = rng.sample(_SENTENCES, 3)
    description = f"{title}: {' '.join(sentences)}"[:220]
    upc = rng.random() < 0.03
    net = rng.randint(99, 199_999) if rng.random() < 0.2 else rng.randint(99, 9_999)
    stock = 0 if rng.random() < 0.1 else rng.randint(1, 300)
    return Product(sku, title, description, _gtin(i, upc), net, stock, upc)


def generate(n: int, out: Path, seed: int = SEED) -> dict[str, int]:
    """Write the files for ``n`` products into ``out``; return counts of each drift."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    drift = random.Random(seed + 1)
    counts = {"missing": 0, "extra": 0, "price": 0, "stock": 0, "title": 0}
    channel_rows: list[list[str]] = []
    truth: list[tuple[str, str, str]] = []
    with (
        (out / "canonical.csv").open("w", encoding="utf-8", newline="") as can,
        (out / "canonical_de.csv").open("w", encoding="cp1252", newline="") as de,
    ):
        w = csv.writer(can, lineterminator="\n")
        wd = csv.writer(de, delimiter=";", lineterminator="\r\n")
        w.writerow(HEADER)
        wd.writerow(HEADER_DE)
        for i in range(n):
            p = _product(rng, f"SKU-{i:08d}", i)
            w.writerow([p.sku, p.title, p.description, p.gtin, _money(p.net), "EUR", p.stock])
            wd.writerow([p.sku, p.title, p.description, p.gtin, _money_de(p.net), "EUR", p.stock])
            if drift.random() < MISSING:
                counts["missing"] += 1
                truth.append((p.sku, "missing", ""))
                continue
            title = p.title
            price = expected_gross_cents(p.net)
            stock = expected_stock(p.stock)
            if drift.random() < PRICE_DRIFT:
                price += drift.choice([100, -100, 50, 1_000, -1])
                price = max(price, 1) if price != expected_gross_cents(p.net) else price + 100
                counts["price"] += 1
                truth.append((p.sku, "changed", "price"))
            if drift.random() < STOCK_DRIFT:
                stock = max(stock + drift.choice([1, 2, 5, -1, -3, 10]), 0)
                if stock == expected_stock(p.stock):
                    stock += 4
                counts["stock"] += 1
                truth.append((p.sku, "changed", "stock"))
            if drift.random() < TITLE_DRIFT:
                title = f"{title} (Restposten)"
                counts["title"] += 1
                truth.append((p.sku, "changed", "title"))
            gtin = f"0{p.gtin}" if p.upc else p.gtin
            channel_rows.append(
                [p.sku, title, p.description, gtin, _money(price), "EUR", str(stock)]
            )
    extras = round(n * EXTRA)
    for j in range(extras):
        p = _product(rng, f"NEW-{j:08d}", n + j)
        channel_rows.append(
            [p.sku, p.title, p.description, p.gtin, _money(p.net), "EUR", str(p.stock)]
        )
        truth.append((p.sku, "extra", ""))
    counts["extra"] = extras
    drift.shuffle(channel_rows)
    with (out / "channel.csv").open("w", encoding="utf-8", newline="") as chan:
        w = csv.writer(chan, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(channel_rows)
    truth.sort()
    with (out / "truth.tsv").open("w", encoding="utf-8") as handle:
        handle.writelines(f"{sku}\t{kind}\t{field}\n" for sku, kind, field in truth)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100k", help="products: 100k, 1M, 5M or a number")
    parser.add_argument("--out", type=Path, help="folder (default bench/data/<size>)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    n = parse_size(args.size)
    out = args.out or Path(__file__).parent / "data" / size_label(n)
    counts = generate(n, out, args.seed)
    print(f"{out}: {n:,} products; drift {counts}")


if __name__ == "__main__":
    main()
