"""The long fuzz run: thousands of mutated projects, each checked in its own process.

    python -m bench.fuzz --csv 3000 --config 1200 [--seed 1] [--jobs 2] [--timeout 30]

Prints how many inputs were tried and how many ended in an internal error (exit 70 or a
traceback), a hang (no exit within --timeout) or a silent accept (a certainly broken input
that exited 0 or 1), with the first few of each. The bounded version runs in CI as
tests/test_fuzz.py; the mutations are tests/fuzzing.py.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests import fuzzing


def _one(args: tuple[str, int, int, float]) -> tuple[str, str | None]:
    kind, seed, index, timeout = args
    rng = random.Random(f"{seed}:{kind}:{index}")
    case = fuzzing.csv_case(rng) if kind == "csv" else fuzzing.config_case(rng)
    with tempfile.TemporaryDirectory() as folder:
        config = case.write(Path(folder))
        command = [sys.executable, "-m", "omnisync", "check", "-c", str(config), "--no-history"]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=folder,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            return f"{kind} #{index} {case.what}", "hang"
    verdict = fuzzing.verdict(case, done.returncode, done.stdout + done.stderr)
    return f"{kind} #{index} {case.what}", verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=int, default=3000)
    parser.add_argument("--config", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--only", help="rerun these cases: csv:12,config:7")
    options = parser.parse_args()
    work = [("csv", options.seed, i, options.timeout) for i in range(options.csv)]
    work += [("config", options.seed, i, options.timeout) for i in range(options.config)]
    if options.only:
        picked = {tuple(item.split(":")) for item in options.only.split(",")}
        work = [w for w in work if (w[0], str(w[2])) in picked]
    problems: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    with ThreadPoolExecutor(options.jobs) as pool:
        for what, problem in pool.map(_one, work):
            if problem:
                group = problem.split(" (")[0]
                problems[group] += 1
                examples.setdefault(group, []).append(f"{what}: {problem}")
    csv_count = sum(1 for w in work if w[0] == "csv")
    print(f"inputs tried: {len(work)} ({csv_count} CSV, {len(work) - csv_count} config)")
    for group in ("internal error", "hang", "silently accepted", "unexpected exit"):
        print(f"{group}: {problems[group]}")
        for example in examples.get(group, [])[:20]:
            print(f"  {example}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
