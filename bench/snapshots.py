"""Snapshots and retention: what keeping every pull costs, what a re-diff saves, what pruning
gives back. All figures are measured in the same run, against a plain check as the baseline.

    python -m bench.generate --size 1m --out /tmp/b1m
    python -m bench.snapshots --data /tmp/b1m            # 3 rounds of each
    python -m bench.snapshots --data /tmp/b100k --rounds 5

Each round runs, as separate ``omnisync`` processes on the bench's one-channel config
(``bench.run.write_configs``; ``--format json`` to a file, so the terminal is not measured):

1. ``check`` with history, snapshots off (the baseline);
2. ``check`` with ``settings.snapshots: true`` (the cost of writing the Parquet snapshot);
3. ``check --from-snapshot last`` (the re-diff, no source read).

Then the state store's size after all those runs, and ``runs --prune --keep-runs 1`` (its
time, and the store before and after). Printed: median wall time of each step and its ratio
to the baseline, the snapshot's size on disk and the sources' size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import write_configs


def omnisync(config: Path, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "omnisync", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"omnisync {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return took


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a bench.generate folder")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="omnisync-snapbench-"))
    try:
        for name in ("canonical.csv", "channel.csv"):
            (work / name).symlink_to((args.data / name).resolve())
        write_configs(work)
        plain = work / "one.yaml"
        config = json.loads(plain.read_text(encoding="utf-8"))
        config["settings"]["snapshots"] = True
        kept = work / "snap.yaml"
        kept.write_text(json.dumps(config), encoding="utf-8")
        out = str(work / "out.json")
        times: dict[str, list[float]] = {"check": [], "with snapshot": [], "from snapshot": []}
        for _ in range(args.rounds):
            times["check"].append(omnisync(plain, "check", "-f", "json", "-o", out))
            times["with snapshot"].append(omnisync(kept, "check", "-f", "json", "-o", out))
            times["from snapshot"].append(
                omnisync(kept, "check", "--from-snapshot", "last", "-f", "json", "-o", out)
            )
        base = statistics.median(times["check"])
        with open(args.data / "canonical.csv", encoding="utf-8") as lines:
            rows = sum(1 for _ in lines) - 1
        print(f"snapshots and retention: {rows:,} canonical rows, 1 channel, {args.rounds} rounds")
        for step, values in times.items():
            median = statistics.median(values)
            print(f"  {step:<14} {median:7.2f} s median   {median / base:5.2f}x of check")
        snapshots = work / ".omnisync" / "snapshots"
        one = max((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.name)
        sources = size(args.data / "canonical.csv") + size(args.data / "channel.csv")
        print(f"  one snapshot   {mb(size(one))} (the two CSV files: {mb(sources)})")
        state = work / "state.db"
        before = size(state) + size(work / "state.db-wal")
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "omnisync",
                "runs",
                "-c",
                str(kept),
                "--prune",
                "--keep-runs",
                "1",
            ],
            check=True,
            capture_output=True,
        )
        took = time.perf_counter() - started
        after = size(state) + size(work / "state.db-wal")
        print(
            f"  prune          {took:7.2f} s: {3 * args.rounds} runs -> 1, state store "
            f"{mb(before)} -> {mb(after)}, snapshots left: "
            f"{sum(1 for p in snapshots.iterdir() if p.is_dir())}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
