"""The benchmark: omnisync check against hand-written diffs of the same data, in one run.

    python -m bench                        # 100k and 1M SKUs, every approach, ~6 minutes
    python -m bench --sizes 100k,1M,5M     # adds 5M (reladiff is skipped above --reladiff-max)
    python -m bench --profile              # also a pyinstrument profile of the 1-channel check
    python -m bench --quick                # 100k only, one round: a smoke test

Per size it generates the data once (bench/data/<size>/, see :mod:`bench.generate`), then runs
every approach in its own process, ``--rounds`` times, interleaved (so that a busy neighbour
slows all of them alike), and reports the median wall time, the peak RSS of that process
(``os.wait4``), and ratios against the hand-written DuckDB diff measured in the same run:

* ``duckdb``     the baseline: FULL OUTER JOIN ... IS DISTINCT FROM over read_csv, by hand
* ``floor``      DuckDB reading both files into tables and nothing else
* ``polars``     lazy scans joined on SKU (skipped with a note when polars is not installed)
* ``reladiff``   reladiff's hashdiff on a DuckDB file (its load is not timed; skipped when
                 reladiff is not installed, or above ``--reladiff-max`` SKUs)
* ``omnisync``   ``omnisync check`` with price (19% VAT, round to .99) and stock (buffer 2)
                 expectations, JSON report written, no run history
* ``omnisync-de``   the same with the German canonical export (cp1252, ';', 1.299,00)
* ``omnisync-5``    five channels against one canonical

Every approach's mismatch set (sku, kind, field) must equal the DuckDB reference's, and the
reference must equal what the generator changed: a fast wrong answer fails the run (exit 1).
Results go to bench/results/<UTC time>.json. Install the extras with
``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.generate import SEED, parse_size, size_label

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RESULTS = ROOT / "results"
#: Bump when the generator's output changes, so that cached data is written again.
DATA_VERSION = "1"

MAPPING = {
    "sku": "sku",
    "title": "title",
    "description": "description",
    "gtin": "gtin",
    "price": "price",
    "currency": "currency",
    "stock": "stock",
}
MAPPING_DE = {
    "sku": "Artikelnummer",
    "title": "Bezeichnung",
    "description": "Beschreibung",
    "gtin": "EAN",
    "price": "VK netto",
    "currency": "Währung",
    "stock": "Bestand",
}
EXPECT = {
    "price": {"shows": "gross", "vat": 19, "rounding": {"mode": "ending", "ending": 0.99}},
    "stock": {"buffer": 2},
}


@dataclass
class Run:
    """One approach at one size: every round's wall time and peak RSS."""

    approach: str
    size: int
    walls: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    mismatches: int | None = None
    correct: bool | None = None
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    @property
    def rss(self) -> float:
        return max(self.rss_mib) if self.rss_mib else float("nan")


# ------------------------------------------------------------------ data and configs


def prepare(n: int) -> Path:
    """The data folder for ``n`` SKUs, generated unless an up-to-date copy exists."""
    folder = DATA / size_label(n)
    stamp = folder / "VERSION"
    wanted = f"{DATA_VERSION} {SEED} {n}"
    if not (stamp.exists() and stamp.read_text().strip() == wanted):
        print(f"generating {size_label(n)} SKUs into {folder} ...", flush=True)
        started = time.perf_counter()
        # In its own process: Linux carries a parent's peak RSS into the children it starts
        # (ru_maxrss survives exec), so a runner that had generated 5M rows itself would
        # report gigabytes for every approach measured after.
        command = [sys.executable, "-m", "bench.generate", "--size", str(n), "--out", str(folder)]
        env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        stamp.write_text(wanted + "\n")
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    write_configs(folder)
    return folder


def _config(canonical: dict[str, object], channels: list[str]) -> str:
    document = {
        "version": 1,
        "settings": {"timezone": "UTC", "state": "state.db"},
        "canonical": {"connector": "csv", "prices": "net", "options": canonical},
        "channels": {
            name: {
                "connector": "csv",
                "options": {"path": "channel.csv", "decimal": ".", "mapping": MAPPING},
                "expect": EXPECT,
            }
            for name in channels
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"  # JSON is YAML


def write_configs(folder: Path) -> None:
    utf8 = {"path": "canonical.csv", "currency": "EUR", "decimal": ".", "mapping": MAPPING}
    german = {
        "path": "canonical_de.csv",
        "encoding": "cp1252",
        "delimiter": ";",
        "decimal": ",",
        "thousands": ".",
        "currency": "EUR",
        "mapping": MAPPING_DE,
    }
    (folder / "one.yaml").write_text(_config(utf8, ["shop"]), encoding="utf-8")
    (folder / "de.yaml").write_text(_config(german, ["shop"]), encoding="utf-8")
    five = [f"shop{i}" for i in range(1, 6)]
    (folder / "five.yaml").write_text(_config(utf8, five), encoding="utf-8")


def read_tsv(path: Path) -> set[tuple[str, str, str]]:
    rows = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        sku, kind, name = line.split("\t")
        rows.add((sku, kind, name))
    return rows


def report_mismatches(report: Path) -> dict[str, set[tuple[str, str, str]]]:
    """Per channel, the (sku, kind, field) set of an omnisync JSON report."""
    document = json.loads(report.read_text(encoding="utf-8"))
    return {
        channel["name"]: {(f["sku"], f["kind"], f["field"] or "") for f in channel["findings"]}
        for channel in document["channels"]
    }


# ------------------------------------------------------------------ running


def measure(
    command: list[str], cwd: Path, extra_env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Run ``command``; its wall time (s), peak RSS (MiB) and output."""
    started = time.perf_counter()
    # PYTHONPATH: `-m bench.reference` from the data folder.
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent), **(extra_env or {})}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    # wait4 reports this child's own peak RSS (RUSAGE_CHILDREN would keep the largest so far).
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.stdout:
        process.stdout.close()
    return wall, usage.ru_maxrss / 1024, f"{output}\nexit {process.returncode}"


def approaches(args: argparse.Namespace, n: int) -> dict[str, list[str] | str]:
    """Name -> command, or name -> why it is skipped."""
    python = sys.executable
    found: dict[str, list[str] | str] = {
        "duckdb": [python, "-m", "bench.reference", "duckdb", "{data}", "{out}"],
        "floor": [python, "-m", "bench.reference", "floor", "{data}", "{out}"],
    }
    if importlib.util.find_spec("polars") is None:
        found["polars"] = "polars is not installed (pip install -e '.[bench]')"
    else:
        found["polars"] = [python, "-m", "bench.reference", "polars", "{data}", "{out}"]
    if importlib.util.find_spec("reladiff") is None:
        found["reladiff"] = "reladiff is not installed (pip install -e '.[bench]')"
    elif n > parse_size(args.reladiff_max):
        found["reladiff"] = f"skipped above --reladiff-max {args.reladiff_max}"
    else:
        found["reladiff"] = [python, "-m", "bench.reference", "reladiff", "{data}", "{out}"]
    check = [python, "-m", "omnisync", "check", "--no-history", "-f", "json", "-o", "{out}"]
    found["omnisync"] = [*check, "-c", "one.yaml"]
    found["omnisync-de"] = [*check, "-c", "de.yaml"]
    found["omnisync-5"] = [*check, "-c", "five.yaml"]
    skipped = {name for name in args.skip.split(",") if name}
    return {
        name: ("skipped with --skip" if name in skipped else command)
        for name, command in found.items()
    }


def run_size(args: argparse.Namespace, n: int) -> list[Run]:
    folder = prepare(n)
    truth = read_tsv(folder / "truth.tsv")
    plan = approaches(args, n)
    runs = {name: Run(name, n) for name in plan}
    for name, command in plan.items():
        if isinstance(command, str):
            runs[name].note = command
    work = Path(tempfile.mkdtemp(prefix="omnisync-bench-"))
    reference: set[tuple[str, str, str]] | None = None
    try:
        for round_ in range(args.rounds):
            for name, command in plan.items():
                if isinstance(command, str):
                    continue
                if name == "reladiff" and round_ > 0:
                    continue  # a minute per run; one round says enough
                out = work / f"{name}.out"
                argv = [part.format(data=folder, out=out) for part in command]
                env = (
                    {"OMNISYNC_MEMORY_LIMIT": args.memory_limit}
                    if name.startswith("omnisync") and args.memory_limit
                    else None
                )
                wall, rss, output = measure(argv, folder, env)
                run = runs[name]
                if name == "reladiff":
                    # The SQLite/DuckDB load is setup, not the diff: subtract what it reports.
                    load = next(
                        (
                            float(line.split()[1])
                            for line in output.splitlines()
                            if line.startswith("load ")
                        ),
                        0.0,
                    )
                    wall -= load
                    run.note = f"load {load:.1f} s not counted"
                run.walls.append(wall)
                run.rss_mib.append(rss)
                if name == "floor":
                    print(
                        f"  {size_label(n):>5} {name:<12} round {round_ + 1}: {wall:6.2f} s {rss:7.0f} MiB",
                        flush=True,
                    )
                    continue  # reads, does not diff: nothing to check
                if not out.exists():
                    run.correct = False
                    run.note = "no output: " + output.strip().splitlines()[-1][:200]
                    continue
                if name.startswith("omnisync"):
                    sets = list(report_mismatches(out).values())
                    found = sets[0] if sets else set()
                    same_everywhere = all(s == found for s in sets)
                else:
                    found = read_tsv(out)
                    same_everywhere = True
                if name == "duckdb":
                    reference = found
                run.mismatches = len(found)
                run.correct = same_everywhere and found == (
                    reference if reference is not None else truth
                )
                print(
                    f"  {size_label(n):>5} {name:<12} round {round_ + 1}: {wall:6.2f} s "
                    f"{rss:7.0f} MiB {'ok' if run.correct else 'WRONG'}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if reference is not None and reference != truth:
        runs["duckdb"].correct = False
        runs["duckdb"].note = "the reference differs from the generator's drift"
    return list(runs.values())


def profile(folder: Path, out: Path, memory_limit: str) -> str:
    """A pyinstrument profile of the one-channel check (as measured); its text."""
    work = Path(tempfile.mkdtemp(prefix="omnisync-profile-"))
    try:
        command = [
            sys.executable,
            "-m",
            "pyinstrument",
            "-o",
            str(out),
            "-m",
            "omnisync",
            "check",
            "--no-history",
            "-f",
            "json",
            "-o",
            str(work / "report.json"),
            "-c",
            "one.yaml",
        ]
        env = {**os.environ, **({"OMNISYNC_MEMORY_LIMIT": memory_limit} if memory_limit else {})}
        subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out.read_text(encoding="utf-8") if out.exists() else "(no profile written)"


# ------------------------------------------------------------------ reporting


def slope(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares ``wall = a + b * n``: (a seconds, b microseconds per SKU)."""
    if len(points) < 2:
        return float("nan"), float("nan")
    ns = [n for n, _ in points]
    ts = [t for _, t in points]
    mean_n, mean_t = statistics.fmean(ns), statistics.fmean(ts)
    b = sum((n - mean_n) * (t - mean_t) for n, t in points) / sum((n - mean_n) ** 2 for n in ns)
    return mean_t - b * mean_n, b * 1e6


def table(runs: list[Run]) -> str:
    lines = [
        f"{'size':>5}  {'approach':<12} {'wall':>8} {'x duckdb':>9} {'peak RSS':>9} "
        f"{'mismatches':>10}  {'same as reference':<17} note",
    ]
    by_size: dict[int, dict[str, Run]] = {}
    for run in runs:
        by_size.setdefault(run.size, {})[run.approach] = run
    for n, group in by_size.items():
        base = group.get("duckdb")
        for run in group.values():
            if not run.walls:
                lines.append(
                    f"{size_label(n):>5}  {run.approach:<12} {'-':>8} {'':>9} {'':>9} {'':>10}  {'':<17} {run.note}"
                )
                continue
            ratio = run.wall / base.wall if base and base.walls else float("nan")
            same = {True: "yes", False: "NO", None: "-"}[run.correct]
            lines.append(
                f"{size_label(n):>5}  {run.approach:<12} {run.wall:7.2f}s {ratio:8.2f}x "
                f"{run.rss / 1024:8.2f}G {run.mismatches if run.mismatches is not None else '-':>10}  "
                f"{same:<17} {run.note}"
            )
    return "\n".join(lines)


def targets(runs: list[Run]) -> list[tuple[str, bool | None, str]]:
    """Issue 6's targets at the largest size measured (and the scaling over all sizes)."""
    by: dict[tuple[int, str], Run] = {(r.size, r.approach): r for r in runs}
    sizes = sorted({r.size for r in runs})
    n = 1_000_000 if 1_000_000 in sizes else sizes[-1]

    def get(name: str) -> Run | None:
        run = by.get((n, name))
        return run if run and run.walls else None

    results: list[tuple[str, bool | None, str]] = []
    one, base, rel = get("omnisync"), get("duckdb"), get("reladiff")
    five, german = get("omnisync-5"), get("omnisync-de")
    label = size_label(n)
    if one and base:
        ratio = one.wall / base.wall
        results.append((f"{label}: check <= 1.5x the DuckDB diff", ratio <= 1.5, f"{ratio:.2f}x"))
    if one and rel:
        faster = rel.wall / one.wall
        results.append((f"{label}: >= 20x faster than reladiff", faster >= 20, f"{faster:.1f}x"))
    if one:
        results.append(
            (f"{label}: peak RSS <= 1.2 GB", one.rss <= 1.2 * 1024, f"{one.rss / 1024:.2f} GB")
        )
    if one and five:
        ratio = five.wall / one.wall
        results.append((f"{label}: five channels <= 4x one", ratio <= 4, f"{ratio:.2f}x"))
        results.append(
            (
                f"{label}: five channels peak RSS <= 2 GB",
                five.rss <= 2048,
                f"{five.rss / 1024:.2f} GB",
            )
        )
    if one and german:
        ratio = german.wall / one.wall
        results.append((f"{label}: German canonical <= 1.3x UTF-8", ratio <= 1.3, f"{ratio:.2f}x"))
    correct = [r.correct for r in runs if r.walls and r.correct is not None]
    results.append(
        (
            "same mismatch set as the reference, everywhere",
            all(correct),
            f"{sum(map(bool, correct))}/{len(correct)} runs",
        )
    )
    points = [(r.size, r.wall) for r in runs if r.approach == "omnisync" and r.walls]
    if len(points) >= 2:
        a, b = slope(points)
        per = {size_label(s): f"{t / s * 1e6:.2f}" for s, t in sorted(points)}
        results.append(
            (
                "scaling of the check is linear",
                None,
                f"{b:.2f} us/SKU + {a:.2f} s fixed; us/SKU at each size: {per}",
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1M", help="comma-separated: 100k,1M,5M")
    parser.add_argument("--rounds", type=int, default=3, help="runs per approach (median)")
    parser.add_argument("--skip", default="", help="approaches to leave out, e.g. reladiff,polars")
    parser.add_argument("--reladiff-max", default="1M", help="largest size reladiff runs at")
    parser.add_argument(
        "--profile", action="store_true", help="pyinstrument the check (needs pyinstrument)"
    )
    parser.add_argument("--quick", action="store_true", help="100k, one round: a smoke test")
    parser.add_argument(
        "--memory-limit",
        default="",
        help="OMNISYNC_MEMORY_LIMIT for the checks (default: none, so settings.memory_limit's "
        "default of 1GB applies)",
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds = "100k", 1
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    print(
        f"omnisync benchmark: sizes {', '.join(size_label(n) for n in sizes)}, {args.rounds} rounds"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        "omnisync runs with "
        + (f"OMNISYNC_MEMORY_LIMIT={args.memory_limit}" if args.memory_limit else "its defaults")
    )
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    runs: list[Run] = []
    for n in sizes:
        runs.extend(run_size(args, n))
    profile_text = None
    if args.profile:
        if importlib.util.find_spec("pyinstrument") is None:
            profile_text = "pyinstrument is not installed (pip install -e '.[bench]')"
        else:
            n = 1_000_000 if 1_000_000 in sizes else sizes[-1]
            RESULTS.mkdir(parents=True, exist_ok=True)
            out = RESULTS / f"profile-{size_label(n)}.txt"
            profile_text = profile(DATA / size_label(n), out, args.memory_limit)
    print()
    print(table(runs))
    print()
    verdicts = targets(runs)
    for name, met, detail in verdicts:
        mark = {True: "met   ", False: "MISSED", None: "      "}[met]
        print(f"  {mark} {name}: {detail}")
    load_after = os.getloadavg()
    print(
        f"\nload average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (2 cores busy = 2.0)"
    )
    if profile_text is not None:
        print("\nprofile of the one-channel check:\n")
        print("\n".join(profile_text.splitlines()[:60]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_file = RESULTS / f"{started:%Y%m%dT%H%M%SZ}.json"
    result_file.write_text(
        json.dumps(
            {
                "started_at": started.isoformat(),
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average": [load_before[0], load_after[0]],
                },
                "rounds": args.rounds,
                "memory_limit": args.memory_limit,
                "runs": [asdict(r) | {"wall": r.wall, "peak_rss_mib": r.rss} for r in runs],
                "targets": [{"target": t, "met": m, "measured": d} for t, m, d in verdicts],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nresults: {result_file}")
    sys.exit(0 if all(r.correct is not False for r in runs) else 1)


if __name__ == "__main__":
    main()
