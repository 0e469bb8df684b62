"""The xlsx connector's reader, chosen by measurement: python-calamine against openpyxl.

Writes the benchmark catalogue (:mod:`bench.generate`, 100,000 SKUs by default) as a workbook
with openpyxl's write_only mode (prices as numbers, stock as integers, GTINs as text, as an
ERP's Excel export holds them), then measures in the same run, ``--rounds`` times, medians:

* ``calamine``  python-calamine: open the workbook and turn every row into Python values
* ``openpyxl``  openpyxl ``load_workbook(read_only=True, data_only=True)``, the same rows
* ``read xlsx`` / ``read csv``  omnisync's xlsx connector ``read()`` against the csv
  connector's ``read()`` of the same catalogue: records, values parsed
* ``check xlsx`` / ``check csv``  the whole ``omnisync check`` (own process) of the canonical
  workbook, or the canonical CSV, against the drifted channel CSV; both must report exactly
  the drift the generator made (a fast wrong answer fails the run, exit 1)

Ratios are against calamine (the readers) and against the CSV (the connector and the check).
The 29 MB canonical CSV takes the csv connector's columnar path (DuckDB) in ``check``; the
workbook is read record by record.

    .venv/bin/python -m bench.xlsx                     # 100k rows, 3 rounds
    .venv/bin/python -m bench.xlsx --rows 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import python_calamine

from bench.generate import generate, size_label
from bench.run import EXPECT, MAPPING, measure, read_tsv, report_mismatches
from omnisync.sdk.connector import Connector, ConnectorContext
from omnisync_connectors.files.csv import CsvConnector
from omnisync_connectors.files.xlsx import XlsxConnector

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"


def write_workbook(source: Path, target: Path) -> None:
    """``source`` (bench.generate's canonical.csv) as a one-sheet workbook ``Products``."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Products")
    with source.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows)
        sheet.append(header)
        price, stock = header.index("price"), header.index("stock")
        for row in rows:
            cells: list[Any] = list(row)
            # Binary doubles, as Excel stores every number: 19.99 is 19.989999999999998...
            cells[price] = float(row[price])
            cells[stock] = int(row[stock])
            sheet.append(cells)
    book.save(target)


def prepare(rows: int) -> Path:
    """The data folder: the generated catalogue, its workbook and the two configs."""
    folder = DATA / f"xlsx-{size_label(rows)}"
    if not (folder / "canonical.xlsx").exists():
        print(f"generating {rows:,} SKUs and their workbook into {folder} ...", flush=True)
        generate(rows, folder)
        write_workbook(folder / "canonical.csv", folder / "canonical.xlsx")
    csv_options = {"path": "canonical.csv", "currency": "EUR", "decimal": ".", "mapping": MAPPING}
    xlsx_options = {"path": "canonical.xlsx", "currency": "EUR", "mapping": MAPPING}
    for name, connector, options in (
        ("csv.yaml", "csv", csv_options),
        ("xlsx.yaml", "xlsx", xlsx_options),
    ):
        (folder / name).write_text(_config(connector, options), encoding="utf-8")
    return folder


def _config(connector: str, options: dict[str, Any]) -> str:

    document = {
        "version": 1,
        "settings": {"timezone": "UTC", "state": "state.db"},
        "canonical": {"connector": connector, "prices": "net", "options": options},
        "channels": {
            "shop": {
                "connector": "csv",
                "options": {"path": "channel.csv", "decimal": ".", "mapping": MAPPING},
                "expect": EXPECT,
            }
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"  # JSON is YAML


def read_calamine(path: Path) -> int:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    return sum(1 for _ in book.get_sheet_by_index(0).iter_rows())


def read_openpyxl(path: Path) -> int:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()


def read_records(cls: type[Connector], folder: Path, options: dict[str, Any]) -> int:
    connector = cls(cls.Options.model_validate(options), ConnectorContext("bench", folder))
    return sum(1 for _ in connector.read())


def timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = work()
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    folder = prepare(args.rows)
    workbook = folder / "canonical.xlsx"
    truth = read_tsv(folder / "truth.tsv")
    size = workbook.stat().st_size / 1e6
    csv_size = (folder / "canonical.csv").stat().st_size / 1e6
    print(f"{args.rows:,} rows: canonical.xlsx {size:.1f} MB, canonical.csv {csv_size:.1f} MB")

    base = {"currency": "EUR", "mapping": MAPPING}
    steps: dict[str, Callable[[], int]] = {
        "calamine": lambda: read_calamine(workbook),
        "openpyxl": lambda: read_openpyxl(workbook),
        "read xlsx": lambda: read_records(
            XlsxConnector, folder, {**base, "path": "canonical.xlsx"}
        ),
        "read csv": lambda: read_records(
            CsvConnector, folder, {**base, "path": "canonical.csv", "decimal": "."}
        ),
    }
    walls: dict[str, list[float]] = {name: [] for name in [*steps, "check xlsx", "check csv"]}
    wrong: list[str] = []
    with tempfile.TemporaryDirectory(prefix="omnisync-bench-xlsx-") as work:
        for round_ in range(args.rounds):
            for name, step in steps.items():
                wall, count = timed(step)
                walls[name].append(wall)
                print(f"  round {round_ + 1} {name:<10} {wall:6.2f} s  {count:,} rows", flush=True)
            for kind in ("xlsx", "csv"):
                out = Path(work) / f"{kind}.json"
                command = [sys.executable, "-m", "omnisync", "check", "--no-history"]
                command += ["-f", "json", "-o", str(out), "-c", f"{kind}.yaml"]
                wall, rss, output = measure(command, folder)
                walls[f"check {kind}"].append(wall)
                found = next(iter(report_mismatches(out).values()), set()) if out.exists() else None
                ok = found == truth
                if not ok:
                    wrong.append(f"check {kind}: {output.strip().splitlines()[-3:]}")
                print(
                    f"  round {round_ + 1} check {kind:<4} {wall:6.2f} s  {rss:5.0f} MiB "
                    f"{'ok' if ok else 'WRONG'}",
                    flush=True,
                )

    median = {name: statistics.median(values) for name, values in walls.items()}
    baseline = {"openpyxl": "calamine", "read xlsx": "read csv", "check xlsx": "check csv"}
    print(f"\nmedians of {args.rounds} round(s), {args.rows:,} rows:")
    for name, wall in median.items():
        against = baseline.get(name)
        ratio = f"{wall / median[against]:5.2f}x {against}" if against else ""
        print(f"  {name:<10} {wall:6.2f} s  {args.rows / wall:>9,.0f} rows/s  {ratio}")
    if wrong:
        print("WRONG:", *wrong, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
