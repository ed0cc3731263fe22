"""The default search with and without kept weights: what the reports no longer re-train.

Runs the README's default command, ``codenas search`` (30 trials, MLPs on digits, then a
neural-code report per Pareto member), in a fresh folder, with ``study.keep_weights`` on (the
default: reports load each member's kept network) and off (each member is re-trained to draw
its report, as before 0.2), alternating, ``--rounds`` times each. Both arms run the same
trials (same seed). CPU seconds are the command's own and its children's (``RUSAGE_CHILDREN``:
user + system), which a machine shared with other jobs disturbs less than wall time; both are
reported, medians and the ratio.

    PYTHONPATH=$PWD python benchmarks/kept_weights.py --rounds 3

Writes ``benchmarks/results/kept_weights.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
ARMS = {"kept": [], "re-trained": ["--set", "study.keep_weights=false"]}


def run_once(extra: list[str]) -> dict[str, float]:
    """One default search in a fresh folder: wall and CPU seconds, reports drawn."""
    with tempfile.TemporaryDirectory() as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "codenas", "search", *extra],
            cwd=folder,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            check=False,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        reports = len(list(Path(folder, "reports").rglob("report.html")))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": wall, "cpu_seconds": cpu, "reports": reports}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="a config override for both arms, e.g. train.threads=1 on a machine shared with "
        "other jobs (several BLAS threads spin on busy cores)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "kept_weights.json")
    args = parser.parse_args(argv)
    rows: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    for r in range(args.rounds):
        order = list(ARMS) if r % 2 == 0 else list(reversed(ARMS))
        for arm in order:
            extra = [*ARMS[arm], *(a for o in args.overrides for a in ("--set", o))]
            rows[arm].append(run_once(extra))
            print(f"round {r} {arm}: {rows[arm][-1]}", file=sys.stderr, flush=True)
    table = {
        arm: {
            key: statistics.median(row[key] for row in runs)
            for key in ("wall_seconds", "cpu_seconds", "reports")
        }
        for arm, runs in rows.items()
    }
    ratio = {
        key: table["kept"][key] / table["re-trained"][key]
        for key in ("wall_seconds", "cpu_seconds")
    }
    out = {
        "benchmark": "kept_weights",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "python benchmarks/kept_weights.py " + " ".join(argv or sys.argv[1:]),
        "rounds": args.rounds,
        "overrides": args.overrides,
        "median": table,
        "kept_over_re_trained": ratio,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({"median": table, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
