"""Throughput of one vs two workers on one machine, side by side in one run.

The same fixed list of architectures (default 24, drawn once from the default config's space) is
evaluated with 1 worker (torch and BLAS on all cores) and with 2 workers (``--workers 2``: the
cores split between them), each arm in a fresh Python process as ``codenas search`` would be
(imports included), on fresh SQLite stores each time, alternating the arms over several rounds.
Reported: trials per minute over the whole process (start-up included) and in steady state
(first trial start to last trial end), medians over the rounds, and the ratio 2 workers / 1
worker. Writes ``benchmarks/results/scaling.json``.

    python benchmarks/scaling.py [--trials 24] [--rounds 3] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _machine import machine


def architectures(n: int, seed: int = 0) -> list[dict]:
    """``n`` parameter sets drawn from the default space with a seeded random sampler."""
    import optuna

    import codenas
    from codenas.spaces import get_space

    config = codenas.load_config()
    space = get_space(config.space.name)(config.space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        space.sample(trial, (1, 8, 8), 10)
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out


def one_run(workers: int, archs: list[dict], epochs: int) -> dict[str, float]:
    import optuna

    import codenas
    from codenas.search.parallel import run_workers

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = codenas.load_config(
            None,
            [
                f"study.storage=sqlite:///{root / 'optuna.db'}",
                f"tracking.uri=sqlite:///{root / 'mlflow.db'}",
                f"train.epochs={epochs}",
                "constraints=[]",
            ],
        )
        start = time.perf_counter()
        if workers == 1:
            study = codenas.search.run(config, n_trials=len(archs), enqueue=archs)
        else:
            study = run_workers(config, n_trials=len(archs), workers=workers, enqueue=archs)
        wall = time.perf_counter() - start
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        # Workers racing for the last queued trials may leave one queued and sample a fresh
        # one instead (Optuna's behaviour); the count, not the exact list, is what is compared.
        assert len(done) == len(archs), [t.state.name for t in study.trials]
        first = min(t.datetime_start for t in done)
        last = max(t.datetime_complete for t in done)
        steady = (last - first).total_seconds()
    return {
        "wall": wall,
        "steady": steady,
        "per_min_wall": 60 * len(archs) / wall,
        "per_min_steady": 60 * len(archs) / steady,
        "trials": len(archs),
    }


def child(workers: int, archs_file: str, epochs: int) -> None:
    """One arm in this fresh process; prints its result as JSON on the last line."""
    archs = json.loads(Path(archs_file).read_text())
    start = time.perf_counter()
    res = one_run(workers, archs, epochs)
    res["process"] = time.perf_counter() - start
    print(json.dumps(res))


def run_arm(workers: int, archs_file: str, epochs: int) -> dict[str, float]:
    import subprocess
    import sys

    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(workers), archs_file, str(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall"] = time.perf_counter() - start  # the whole process, as a user waits for it
    res["per_min_wall"] = 60 * res["trials"] / res["wall"]
    return res


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/scaling.json")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    archs = architectures(args.trials)
    archs_file = Path(tempfile.mkdtemp()) / "archs.json"
    archs_file.write_text(json.dumps(archs))
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for r in range(args.rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            res = run_arm(workers, str(archs_file), args.epochs)
            results[workers].append(res)
            print(
                f"round {r + 1}/{args.rounds}, {workers} worker(s): {res['wall']:.1f} s wall, "
                f"{res['per_min_steady']:.1f} trials/min steady",
                flush=True,
            )
    med = {w: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for w, rs in results.items()}
    ratio_wall = med[2]["per_min_wall"] / med[1]["per_min_wall"]
    ratio_steady = med[2]["per_min_steady"] / med[1]["per_min_steady"]
    print(
        f"\n{args.trials} architectures x {args.epochs} epochs on digits, "
        f"{os.cpu_count()} cores, median of {args.rounds} rounds"
    )
    print(f"{'workers':>8s} {'wall s':>8s} {'trials/min (wall)':>18s} {'trials/min (steady)':>20s}")
    for w in (1, 2):
        print(
            f"{w:8d} {med[w]['wall']:8.1f} {med[w]['per_min_wall']:18.1f} "
            f"{med[w]['per_min_steady']:20.1f}"
        )
    print(
        f"\n2 workers / 1 worker: {ratio_wall:.2f}x (wall), {ratio_steady:.2f}x (steady); "
        "target >= 1.8x"
    )
    out = {
        "machine": machine(),
        "trials": args.trials,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "runs": {str(k): v for k, v in results.items()},
        "median": {str(k): v for k, v in med.items()},
        "ratio_wall": ratio_wall,
        "ratio_steady": ratio_steady,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
