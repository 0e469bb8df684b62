"""Reference diffs of the benchmark data, written by hand without omnisync.

Each approach reads ``canonical.csv`` and ``channel.csv`` of a data folder, applies the shop's
rules (gross = net + 19% VAT rounded to .99; stock less a buffer of 2, never below 0; GTINs
compared as 14 digits) and writes every mismatch as ``sku <TAB> kind <TAB> field`` lines::

    python -m bench.reference duckdb bench/data/1M out.tsv
    python -m bench.reference polars bench/data/1M out.tsv
    python -m bench.reference reladiff bench/data/1M out.tsv   # loads a DuckDB file first

The runner (:mod:`bench.run`) starts each one in its own process and measures its wall time
and peak RSS from outside. ``reladiff`` prints ``load <seconds>`` for its SQLite load, which
the runner subtracts, so that reladiff is timed on its diff alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path

COLUMNS = ["sku", "title", "description", "gtin", "price", "currency", "stock"]


def _write(rows: Iterable[tuple[str, str, str]], out: Path) -> int:
    lines = sorted(f"{sku}\t{kind}\t{field}\n" for sku, kind, field in rows)
    out.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def _expand(
    sku: str, in_c: bool, in_a: bool, flags: Iterable[tuple[str, bool]]
) -> Iterable[tuple[str, str, str]]:
    if not in_a:
        yield sku, "missing", ""
    elif not in_c:
        yield sku, "extra", ""
    else:
        for field, differs in flags:
            if differs:
                yield sku, "changed", field


# ------------------------------------------------------------------ DuckDB (the baseline)

DUCKDB_SQL = """
WITH c AS (SELECT * FROM read_csv('{canonical}', header = true, columns = {types})),
     a AS (SELECT * FROM read_csv('{channel}', header = true, columns = {types}))
SELECT coalesce(c.sku, a.sku), c.sku IS NOT NULL, a.sku IS NOT NULL,
       c.title IS DISTINCT FROM a.title,
       c.description IS DISTINCT FROM a.description,
       lpad(c.gtin, 14, '0') IS DISTINCT FROM lpad(a.gtin, 14, '0'),
       greatest(round(c.price * 1.19 - 0.99) + 0.99, 0.99) IS DISTINCT FROM a.price,
       greatest(c.stock - 2, 0) IS DISTINCT FROM a.stock
FROM c FULL OUTER JOIN a ON a.sku = c.sku
WHERE c.sku IS NULL OR a.sku IS NULL
   OR c.title IS DISTINCT FROM a.title
   OR c.description IS DISTINCT FROM a.description
   OR lpad(c.gtin, 14, '0') IS DISTINCT FROM lpad(a.gtin, 14, '0')
   OR greatest(round(c.price * 1.19 - 0.99) + 0.99, 0.99) IS DISTINCT FROM a.price
   OR greatest(c.stock - 2, 0) IS DISTINCT FROM a.stock
"""
FIELDS = ["title", "description", "gtin", "price", "stock"]


def duckdb_diff(data: Path, out: Path) -> int:
    """The hand-written FULL OUTER JOIN ... IS DISTINCT FROM, exact DECIMAL prices."""
    import duckdb

    types = (
        "{'sku': 'VARCHAR', 'title': 'VARCHAR', 'description': 'VARCHAR', 'gtin': 'VARCHAR', "
        "'price': 'DECIMAL(18,2)', 'currency': 'VARCHAR', 'stock': 'BIGINT'}"
    )
    sql = DUCKDB_SQL.format(
        canonical=data / "canonical.csv", channel=data / "channel.csv", types=types
    )
    rows = duckdb.connect().execute(sql).fetchall()
    return _write(
        (
            m
            for sku, in_c, in_a, *flags in rows
            for m in _expand(sku, in_c, in_a, zip(FIELDS, flags, strict=True))
        ),
        out,
    )


def floor(data: Path, out: Path) -> int:
    """DuckDB reading both files into tables, every column as text: the cost of parsing."""
    import duckdb

    con = duckdb.connect()
    for name in ("canonical", "channel"):
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{data / (name + '.csv')}', "
            "header = true, all_varchar = true)"
        )
    out.write_text("", encoding="utf-8")
    return 0


# ------------------------------------------------------------------ polars


def polars_diff(data: Path, out: Path) -> int:
    """Lazy scans joined on SKU; prices in integer cents (exact, no float)."""
    import polars as pl

    schema = dict.fromkeys(COLUMNS, pl.String)

    def scan(name: str) -> pl.LazyFrame:
        return pl.scan_csv(data / name, schema=schema).with_columns(
            cents=pl.col("price").str.replace(".", "", literal=True).cast(pl.Int64),
            qty=pl.col("stock").cast(pl.Int64),
            gtin14=pl.col("gtin").str.zfill(14),
        )

    c, a = scan("canonical.csv"), scan("channel.csv")
    # gross in 1/10000: net cents * 119; round (x - .99) half up to whole units, add .99 back.
    shifted = pl.col("cents") * 119 - 9_900
    units = pl.when(shifted >= 0).then((shifted + 5_000) // 10_000)
    units = units.otherwise(-((-shifted + 5_000) // 10_000))
    expected = c.with_columns(
        e_cents=pl.max_horizontal(units * 100 + 99, pl.lit(99)),
        e_qty=pl.max_horizontal(pl.col("qty") - 2, pl.lit(0)),
        in_c=pl.lit(True),
    )
    joined = expected.join(
        a.with_columns(in_a=pl.lit(True)), on="sku", how="full", coalesce=True, suffix="_a"
    )

    def differs(left: str, right: str) -> pl.Expr:
        return pl.col(left).ne_missing(pl.col(right))

    flags = [
        differs("title", "title_a").alias("d_title"),
        differs("description", "description_a").alias("d_description"),
        differs("gtin14", "gtin14_a").alias("d_gtin"),
        differs("e_cents", "cents_a").alias("d_price"),
        differs("e_qty", "qty_a").alias("d_stock"),
    ]
    result = (
        joined.with_columns(
            pl.col("in_c").fill_null(False), pl.col("in_a").fill_null(False), *flags
        )
        .filter(
            ~pl.col("in_c") | ~pl.col("in_a") | pl.any_horizontal([f"d_{name}" for name in FIELDS])
        )
        .select("sku", "in_c", "in_a", *(f"d_{name}" for name in FIELDS))
        .collect()
    )
    return _write(
        (
            m
            for sku, in_c, in_a, *flags in result.iter_rows()
            for m in _expand(sku, in_c, in_a, zip(FIELDS, flags, strict=True))
        ),
        out,
    )


# ------------------------------------------------------------------ reladiff


def reladiff_diff(data: Path, out: Path, algorithm: str = "hashdiff") -> int:
    """reladiff on two tables of a DuckDB file (reladiff 0.6 no longer speaks SQLite). The
    canonical table holds the expected values (the rules applied while loading), because
    reladiff compares columns as they are. The load is timed separately and printed as
    ``load <seconds>``; ``hashdiff`` is reladiff's cross-database algorithm (checksums of
    key ranges, bisected down to rows), ``joindiff`` its single-database one."""
    import tempfile

    import duckdb
    from reladiff import connect_to_table, diff_tables

    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="omnisync-bench-"))
    db = folder / "reladiff.duckdb"
    con = duckdb.connect(str(db))
    types = (
        "{'sku': 'VARCHAR', 'title': 'VARCHAR', 'description': 'VARCHAR', 'gtin': 'VARCHAR', "
        "'price': 'VARCHAR', 'currency': 'VARCHAR', 'stock': 'BIGINT'}"
    )
    cents = "CAST(replace(price, '.', '') AS BIGINT)"
    shifted = f"({cents} * 119 - 9900)"
    units = (
        f"CASE WHEN {shifted} >= 0 THEN ({shifted} + 5000) // 10000 "
        f"ELSE -((-{shifted} + 5000) // 10000) END"
    )
    con.execute(
        "CREATE TABLE canonical AS SELECT sku, title, description, lpad(gtin, 14, '0') AS gtin, "
        f"greatest(({units}) * 100 + 99, 99) AS price, greatest(stock - 2, 0) AS stock "
        f"FROM read_csv('{data / 'canonical.csv'}', header = true, columns = {types})"
    )
    con.execute(
        "CREATE TABLE channel AS SELECT sku, title, description, lpad(gtin, 14, '0') AS gtin, "
        f"{cents} AS price, stock "
        f"FROM read_csv('{data / 'channel.csv'}', header = true, columns = {types})"
    )
    con.close()
    print(f"load {time.perf_counter() - started:.3f}", flush=True)

    extra = ("title", "description", "gtin", "price", "stock")
    uri = f"duckdb://{db}"
    left = connect_to_table(uri, "canonical", "sku", extra_columns=extra)
    right = connect_to_table(uri, "channel", "sku", extra_columns=extra)
    sides: dict[str, dict[str, tuple[str, ...]]] = {"-": {}, "+": {}}
    for sign, row in diff_tables(left, right, algorithm=algorithm):
        sides[sign][row[0]] = tuple(str(v) for v in row[1:])
    mismatches = []
    for sku in sides["-"].keys() | sides["+"].keys():
        before, after = sides["-"].get(sku), sides["+"].get(sku)
        if after is None:
            mismatches.append((sku, "missing", ""))
        elif before is None:
            mismatches.append((sku, "extra", ""))
        else:
            mismatches.extend(
                (sku, "changed", field)
                for field, x, y in zip(extra, before, after, strict=True)
                if x != y
            )
    db.unlink()
    folder.rmdir()
    return _write(mismatches, out)


APPROACHES = {
    "duckdb": duckdb_diff,
    "floor": floor,
    "polars": polars_diff,
    "reladiff": reladiff_diff,
}


def main() -> None:
    name, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    count = APPROACHES[name](data, out)
    print(f"mismatches {count}")


if __name__ == "__main__":
    main()
