"""One vs two workers on one machine: the whole ``codenas search`` command, side by side.

Each arm is the command a user types, ``codenas search --trials N --workers W --no-progress``
(default config, end-of-search reports off), run as a fresh process in a fresh directory with
fresh stores, the arms alternating over several rounds. Reported per arm (medians over the
rounds): the command's wall time, its time to the first trial (process start to the first
trial's start, read from Optuna), the steady phase (first trial start to last trial end), the
CPU seconds of the command and its children, and the ratio 1-worker wall / 2-worker wall.

With ``--backend postgres`` both engines use a throw-away PostgreSQL server (Optuna's storage
and MLflow's backend store, one database each per run), as several machines would.

    python benchmarks/scaling.py [--trials 60] [--rounds 3] [--backend sqlite|postgres]

Writes ``benchmarks/results/scaling.json`` (``scaling_postgres.json`` for PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(workers: int, trials: int, urls: tuple[str, str] | None) -> dict[str, float]:
    """``codenas search`` once, in a fresh directory; its timings read from its own study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="codenas-scaling-"))
    storage, tracking = urls or (f"sqlite:///{tmp / 'optuna.db'}", f"sqlite:///{tmp / 'mlflow.db'}")
    cmd = [
        sys.executable,
        "-m",
        "codenas",
        "search",
        "--trials",
        str(trials),
        "--workers",
        str(workers),
        "--no-progress",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        "--set",
        "tracking.report=false",
    ]
    cpu = _children_cpu()
    start = time.time()
    out = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    wall = time.time() - start
    cpu = _children_cpu() - cpu
    if out.returncode != 0:
        raise SystemExit(f"codenas search failed ({out.returncode}):\n{out.stderr[-2000:]}")
    study = optuna.load_study(study_name="digits-mlp", storage=storage)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == trials, [t.state.name for t in study.trials]
    first = min(t.datetime_start for t in done).timestamp()
    last = max(t.datetime_complete for t in done).timestamp()
    by_worker: dict[str, int] = {}
    for t in done:
        by_worker[t.user_attrs["worker"]] = by_worker.get(t.user_attrs["worker"], 0) + 1
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "wall": wall,
        "first_trial": first - start,
        "steady": last - first,
        "after_last_trial": start + wall - last,
        "cpu": cpu,
        "trials": trials,
        "trials_per_worker": sorted(by_worker.values(), reverse=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out_path = Path(
        args.out
        or f"benchmarks/results/scaling{'_postgres' if args.backend == 'postgres' else ''}.json"
    )
    server = None
    if args.backend == "postgres":
        sys.path.insert(0, str(ROOT))
        from tests.servers import Postgres, postgres_available

        if not postgres_available():
            raise SystemExit("--backend postgres: no PostgreSQL binaries (initdb, pg_ctl) found")
        server = Postgres()
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    load = os.getloadavg()[0]
    try:
        for r in range(args.rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                urls = None
                if server is not None:
                    urls = (
                        server.create_database(f"optuna_{r}_{workers}"),
                        server.create_database(f"mlflow_{r}_{workers}"),
                    )
                res = one_run(workers, args.trials, urls)
                results[workers].append(res)
                print(
                    f"round {r + 1}/{args.rounds}, {workers} worker(s): {res['wall']:.1f} s wall, "
                    f"first trial at {res['first_trial']:.1f} s, {res['steady']:.1f} s of trials, "
                    f"{res['cpu']:.0f} CPU-s, trials per worker {res['trials_per_worker']}",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
    keys = ("wall", "first_trial", "steady", "after_last_trial", "cpu")
    med = {w: {k: statistics.median(x[k] for x in rs) for k in keys} for w, rs in results.items()}
    ratio_wall = med[1]["wall"] / med[2]["wall"]
    ratio_steady = med[1]["steady"] / med[2]["steady"]
    ratios = [a["wall"] / b["wall"] for a, b in zip(results[1], results[2], strict=True)]
    print(
        f"\n`codenas search --trials {args.trials}` (digits-mlp, reports off), "
        f"{args.backend}, {os.cpu_count()} cores, median of {args.rounds} rounds "
        f"(load {load:.1f} at start)"
    )
    print(
        f"{'workers':>8s} {'wall s':>8s} {'first trial s':>14s} {'trials s':>9s} "
        f"{'after s':>8s} {'CPU s':>7s}"
    )
    for w in (1, 2):
        m = med[w]
        print(
            f"{w:8d} {m['wall']:8.1f} {m['first_trial']:14.1f} {m['steady']:9.1f} "
            f"{m['after_last_trial']:8.1f} {m['cpu']:7.1f}"
        )
    print(
        f"\n2 workers vs 1: {ratio_wall:.2f}x faster whole command (per round "
        f"{', '.join(f'{x:.2f}' for x in ratios)}), {ratio_steady:.2f}x over the trials alone; "
        "target >= 1.8x whole command"
    )
    out = {
        "machine": machine(),
        "command": f"codenas search --trials {args.trials} --workers W --no-progress "
        "--set tracking.report=false",
        "backend": args.backend,
        "trials": args.trials,
        "rounds": args.rounds,
        "runs": {str(k): v for k, v in results.items()},
        "median": {str(k): v for k, v in med.items()},
        "ratio_wall": ratio_wall,
        "ratio_wall_per_round": ratios,
        "ratio_steady": ratio_steady,
        "time_to_first_trial": med[1]["first_trial"],
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
