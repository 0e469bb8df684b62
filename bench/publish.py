"""Publish at scale: writing a whole catalogue's feed against checking the same catalogue.

    python -m bench.generate --size 1m --out /tmp/b1m
    python -m bench.publish --data /tmp/b1m              # 3 rounds, google_tsv
    python -m bench.publish --data /tmp/b100k --format google_xml --rounds 5

Each round runs, as separate ``omnisync`` processes, alternately:

1. ``check`` of the bench's one-channel config (canonical CSV against a CSV channel of the
   same size; ``--format json`` to a file): the baseline;
2. ``publish`` of a feed channel of the same canonical (``--format``, Google's required
   attributes from URL templates) to a fresh file, so every item is written;
3. ``publish`` again over the unchanged feed (computes and compares, writes nothing).

Printed: median wall time and peak RSS of each, and each one's ratio to the check (issue 15:
"1M items written in about the time the check of the same catalogue takes").
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

READER = {"google_tsv": ("tsv", "feed.tsv"), "google_xml": ("xml", "feed.xml")}


def run(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, from GNU time) of one omnisync process."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "omnisync", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"omnisync {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return took, int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a bench.generate folder")
    parser.add_argument("--format", choices=sorted(READER), default="google_tsv")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="omnisync-publishbench-"))
    try:
        for name in ("canonical.csv", "channel.csv"):
            (work / name).symlink_to((args.data / name).resolve())
        write_configs(work)
        check_config = work / "one.yaml"
        config = json.loads(check_config.read_text(encoding="utf-8"))
        connector, path = READER[args.format]
        config["channels"] = {
            "feed": {
                "connector": connector,
                "options": {"path": path, "preset": "google"},
                "expect": {"price": {"vat": 19}},
                "publish": {
                    "format": args.format,
                    "link": "https://shop.example/p/{sku}",
                    "image_link": "https://shop.example/img/{sku}.jpg",
                    "condition": "new",
                    "on_invalid": "skip",
                },
            }
        }
        feed_config = work / "feed.yaml"
        feed_config.write_text(json.dumps(config), encoding="utf-8")
        out = str(work / "out.json")
        steps: dict[str, list[tuple[float, float]]] = {
            "check": [],
            "publish (new file)": [],
            "publish (unchanged)": [],
        }
        for _ in range(args.rounds):
            steps["check"].append(run("check", "-c", str(check_config), "-f", "json", "-o", out))
            (work / path).unlink(missing_ok=True)
            steps["publish (new file)"].append(
                run("publish", "-c", str(feed_config), "--force", "--no-history")
            )
            steps["publish (unchanged)"].append(
                run("publish", "-c", str(feed_config), "--force", "--no-history")
            )
        with open(args.data / "canonical.csv", encoding="utf-8") as lines:
            rows = sum(1 for _ in lines) - 1
        print(f"publish: {rows:,} canonical rows, format {args.format}, {args.rounds} rounds")
        base = statistics.median(t for t, _ in steps["check"])
        for step, values in steps.items():
            median = statistics.median(t for t, _ in values)
            print(
                f"  {step:<20} {median:7.2f} s median   {median / base:5.2f}x of check"
                f"   peak RSS {statistics.median(m for _, m in values):6.0f} MiB"
            )
        print(f"  feed file: {(work / path).stat().st_size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
