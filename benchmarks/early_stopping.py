"""Multi-objective early stopping: compute saved against Pareto-front hypervolume lost.

For one search config, the same number of trials is run with ``codenas.search.run`` (MLflow
off, a fresh SQLite storage each time, one torch thread) in several arms, for each study seed:

* ``tpe``: the config's sampler (TPE) without early stopping: the reference;
* ``tpe+es w=W s=S``: the same with ``search.early_stopping`` enabled (warmup W epochs,
  dominated share S, ``--min-trials``);
* ``random``: ``RandomSampler`` without early stopping: the floor.

Reported per arm (median over seeds, and each seed), savings against the ``tpe`` arm of the
same seed:

* ``cpu``: CPU seconds of the whole search process (``time.process_time``: sampling, training,
  checkpoints, metrics, storage), the least sensitive to other processes on a shared machine;
* ``train_time``: summed wall seconds of training (``time/train``; checkpoints included, as they
  run inside the loop; for a pruned trial, until it stopped);
* ``param_epochs``: sum over trials of parameters x epochs trained, proportional to the
  training FLOPs of an MLP (machine-independent);
* ``epochs``: epochs trained over all trials; ``trial_time``: summed wall time of the trials;
* the hypervolume loss of the final Pareto front of the COMPLETE (feasible) trials.

Hypervolume: every objective is mapped to a loss in [0, 1] with fixed bounds, the same for all
arms: accuracy ``1 - (acc - chance) / (1 - chance)``, a metric in [0, 1] (``capacity_usage``,
``mig``, ``dci*``) ``1 - value``, ``params`` ``(log10 p - 2) / 4`` (100 to 1,000,000
parameters); values are clipped to [0, 1] and the reference point is (1, ..., 1). The volume is
computed by moocore (``codenas.search.hypervolume``; Optuna has no public hypervolume).

    python benchmarks/early_stopping.py digits-mlp --trials 60 --seeds 0 1 2
    python benchmarks/early_stopping.py factors-mlp --trials 60 --seeds 0 1 2

Writes ``benchmarks/results/early_stopping_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
UNIT_METRICS = ("capacity_usage", "mig", "dci", "dci_forest", "sap", "modularity", "early_score")


def hypervolume(losses: np.ndarray) -> float:
    """Hypervolume of loss vectors in [0, 1]^d against the reference point (1, ..., 1).

    moocore's, through :func:`codenas.search.hypervolume.hypervolume`.
    """
    from codenas.search.hypervolume import hypervolume as moocore_hypervolume

    if len(losses) == 0:
        return 0.0
    return moocore_hypervolume(losses, np.ones(losses.shape[1]))


def to_loss(name: str, value: float, n_classes: int) -> float:
    """One objective value as a loss in [0, 1] with the fixed bounds of the module doc."""
    if name in ("val_accuracy",):
        chance = 1.0 / n_classes
        loss = 1.0 - (value - chance) / (1.0 - chance)
    elif name == "params":
        loss = (math.log10(max(value, 1.0)) - 2.0) / 4.0
    elif name.split(".")[0] in UNIT_METRICS:
        loss = 1.0 - value
    else:
        raise ValueError(f"no fixed bound for objective {name!r}; add one to to_loss")
    return float(min(1.0, max(0.0, loss)))


def run_arm(
    config_name: str,
    overrides: Sequence[str],
    *,
    seed: int,
    trials: int,
    sampler: str,
    es: tuple[int, float] | None,
    min_trials: int,
    es_metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    import optuna

    import codenas
    from codenas.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        sets = [
            *overrides,
            "study.name=es",
            f"study.seed={seed}",
            f"study.trials={trials}",
            f"study.sampler={sampler}",
            f"study.storage=sqlite:///{Path(tmp) / 'optuna.db'}",
            "tracking.enabled=false",
            "train.threads=1",
        ]
        if es is not None:
            metrics = f", metrics: [{', '.join(es_metrics)}]" if es_metrics else ""
            sets.append(
                "search.early_stopping={enabled: true, "
                f"warmup_epochs: {es[0]}, dominated_share: {es[1]}, min_trials: {min_trials}"
                f"{metrics}}}"
            )
        config = codenas.load_config(config_name, sets)
        n_classes = load_dataset(config.data).n_outputs
        start, cpu_start = time.perf_counter(), time.process_time()
        study = codenas.search.run(config)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        states = [t.state.name for t in study.trials]
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        feasible = [t for t in complete if all(c <= 0 for c in t.constraints.values())]
        losses = np.array(
            [
                [
                    to_loss(name, v, n_classes)
                    for name, v in zip(config.objective_names, t.values, strict=True)
                ]
                for t in feasible
            ]
        ).reshape(len(feasible), len(config.objective_names))
        epochs = param_epochs = durations = train_time = checkpoint_time = 0.0
        for t in study.trials:
            m = t.user_attrs.get("metrics", {})
            epochs += float(m.get("epochs", 0.0))
            checkpoint_time += float(m.get("time/checkpoints", 0.0))
            param_epochs += float(m.get("epochs", 0.0)) * float(m.get("params", 0.0))
            train_time += float(m.get("time/train", 0.0))
            if t.datetime_start and t.datetime_complete:
                durations += (t.datetime_complete - t.datetime_start).total_seconds()
        return {
            "hypervolume": hypervolume(losses),
            "epochs": epochs,
            "param_epochs": param_epochs,
            "train_seconds": train_time,
            "checkpoint_seconds": checkpoint_time,
            "trial_seconds": durations,
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "complete": states.count("COMPLETE"),
            "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"),
            "front_size": len(study.best_trials),
            "pruned_at": sorted(
                int(t.user_attrs.get("metrics", {}).get("epochs", 0))
                for t in study.trials
                if t.state == optuna.trial.TrialState.PRUNED
            ),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="packaged config name or YAML path")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["1:0.5", "2:0.5", "2:0.3"],
        help="early-stopping arms as WARMUP:SHARE",
    )
    parser.add_argument("--min-trials", type=int, default=5)
    parser.add_argument(
        "--es-metrics", nargs="+", default=None, help="search.early_stopping.metrics"
    )
    parser.add_argument("--tag", default="", help="suffix of the output file")
    parser.add_argument("--no-random", action="store_true", help="skip the random floor")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)

    import optuna
    import torch

    import codenas

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)
    base = codenas.load_config(args.config, args.set)
    settings = [(int(w), float(s)) for w, s in (x.split(":") for x in args.settings)]
    arms: dict[str, tuple[str, tuple[int, float] | None]] = {"tpe": (base.study.sampler, None)}
    for w, s in settings:
        arms[f"{base.study.sampler}+es w={w} s={s:g}"] = (base.study.sampler, (w, s))
    if not args.no_random:
        arms["random"] = ("random", None)

    load = os.getloadavg()[0]
    started = time.perf_counter()
    runs: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in arms}
    for seed in args.seeds:
        for name, (sampler, es) in arms.items():
            r = run_arm(
                args.config,
                args.set,
                seed=seed,
                trials=args.trials,
                sampler=sampler,
                es=es,
                min_trials=args.min_trials,
                es_metrics=args.es_metrics,
            )
            runs[name][seed] = r
            print(
                f"[{args.config} seed {seed}] {name:22s} HV={r['hypervolume']:.4f} "
                f"epochs={r['epochs']:.0f} trial_s={r['trial_seconds']:.1f} "
                f"pruned={r['pruned']} failed={r['failed']}",
                file=sys.stderr,
                flush=True,
            )

    summary: dict[str, dict[str, Any]] = {}
    saved_keys = {
        "cpu_saved": "cpu_seconds",
        "train_time_saved": "train_seconds",
        "param_epochs_saved": "param_epochs",
        "epochs_saved": "epochs",
        "trial_time_saved": "trial_seconds",
    }
    for name in arms:
        per_seed = runs[name]
        rel: dict[str, list[float]] = {k: [] for k in [*saved_keys, "hv_loss"]}
        for seed, r in per_seed.items():
            ref = runs["tpe"][seed]
            for key, field in saved_keys.items():
                rel[key].append(1 - r[field] / ref[field])
            rel["hv_loss"].append(1 - r["hypervolume"] / ref["hypervolume"])
        summary[name] = {
            "hypervolume_median": float(np.median([r["hypervolume"] for r in per_seed.values()])),
            "pruned_median": float(np.median([r["pruned"] for r in per_seed.values()])),
            "checkpoint_share_of_train_median": float(
                np.median(
                    [
                        r["checkpoint_seconds"] / max(r["train_seconds"], 1e-9)
                        for r in per_seed.values()
                    ]
                )
            ),
            **{f"{k}_median": float(np.median(v)) for k, v in rel.items()},
            **{f"{k}_per_seed": v for k, v in rel.items()},
        }
    print(
        f"\n{args.config}: {args.trials} trials per arm, seeds {args.seeds}, "
        f"min_trials {args.min_trials}, checkpoint metrics {args.es_metrics or 'default'}; "
        "medians over seeds [per seed], against the tpe arm"
    )
    cols = ["hv_loss", *saved_keys]
    print(f"{'arm':22s} {'HV':>6s} {'pruned':>6s} " + " ".join(f"{c:>24s}" for c in cols))

    def fmt(v: list[float]) -> str:
        return "[" + " ".join(f"{x:+.0%}" for x in v) + "]"

    for name, s in summary.items():
        print(
            f"{name:22s} {s['hypervolume_median']:6.4f} {s['pruned_median']:6.0f} "
            + " ".join(
                f"{s[c + '_median']:+6.1%} {fmt(s[c + '_per_seed']):>17s}"
                if c == "hv_loss"
                else f"{s[c + '_median']:+6.0%} {fmt(s[c + '_per_seed']):>17s}"
                for c in cols
            )
        )
    out = {
        "config": args.config,
        "dataset": base.data.name,
        "objectives": [f"{o.metric} ({o.direction})" for o in base.objectives],
        "trials": args.trials,
        "seeds": args.seeds,
        "min_trials": args.min_trials,
        "es_metrics": args.es_metrics,
        "overrides": args.set,
        "note": args.note,
        "machine": {**machine(), "load_1min_at_start": round(load, 2)},
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "seconds": time.perf_counter() - started,
        "summary": summary,
        "runs": {name: {str(k): v for k, v in r.items()} for name, r in runs.items()},
    }
    tag = f"_{args.tag}" if args.tag else ""
    path = RESULTS / f"early_stopping_{base.data.name}{tag}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
