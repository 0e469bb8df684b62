"""Memory of the sql connector: does reading stay flat as rows stream?

Generates ROWS rows in PostgreSQL (generate_series, in a throw-away schema), reads them
through ``connector: sql`` counting records, and compares the peak RSS of the whole read with
the RSS after the first 100,000 records (the baseline, measured in the same run). A reader
that held the result would grow with every row; a streaming one stays near 1.0x.

    .venv/bin/python bench/sql_memory.py                 # 1,000,000 rows
    .venv/bin/python bench/sql_memory.py --rows 200000
    OMNISYNC_TEST_PG_URL=postgresql://user@host/db .venv/bin/python bench/sql_memory.py
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from omnisync.sdk.connector import ConnectorContext
from omnisync_connectors.sql.connector import SqlConnector
from omnisync_connectors.sql.engine import parse_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BASELINE_AT = 100_000


def rss_mib() -> float:
    """The current resident set size (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_mib() -> float:
    """The peak resident set size so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    server = parse_url(os.environ.get("OMNISYNC_TEST_PG_URL", DEFAULT_URL))
    schema = f"omnisync_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        started = time.perf_counter()
        with admin.begin() as connection:
            connection.execute(
                sa.text(
                    f'CREATE TABLE "{schema}".articles AS '
                    "SELECT 'SKU-' || lpad(n::text, 8, '0') AS sku, "
                    "'Artikel ' || n AS name, "
                    "(n % 100000)::numeric(12, 2) / 100 + 0.99 AS price, "
                    "n % 50 AS qty FROM generate_series(1, :rows) AS n"
                ),
                {"rows": args.rows},
            )
        generated = time.perf_counter() - started

        url = server.update_query_dict({"options": f"-csearch_path={schema}"})
        options = SqlConnector.Options.model_validate(
            {
                "url": url.render_as_string(hide_password=False),
                "table": "articles",
                "currency": "EUR",
                "batch_size": args.batch_size,
                "mapping": {"sku": "sku", "title": "name", "price": "price", "stock": "qty"},
            }
        )
        connector = SqlConnector(options, ConnectorContext("bench"))
        before = rss_mib()
        baseline = baseline_rss = 0.0
        count = 0
        started = time.perf_counter()
        for _record in connector.read():
            count += 1
            if count == BASELINE_AT:
                baseline, baseline_rss = peak_mib(), rss_mib()
        elapsed = time.perf_counter() - started
        peak, end_rss = peak_mib(), rss_mib()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    lines = [
        ("rows generated", f"{args.rows:,} ({generated:.1f} s, generate_series)"),
        ("records read", f"{count:,} ({elapsed:.1f} s, {count / elapsed:,.0f}/s)"),
        ("batch_size", f"{args.batch_size:,}"),
        ("RSS before reading", f"{before:.1f} MiB"),
        (f"RSS after {BASELINE_AT:,} records", f"{baseline_rss:.1f} MiB"),
        ("RSS after all records", f"{end_rss:.1f} MiB"),
        (f"peak RSS at {BASELINE_AT:,}", f"{baseline:.1f} MiB (baseline, getrusage)"),
        ("peak RSS, whole read", f"{peak:.1f} MiB (getrusage)"),
        ("peak / baseline", f"{peak / baseline:.2f}x"),
    ]
    for label, value in lines:
        print(f"{label:<26} {value}")


if __name__ == "__main__":
    main()
