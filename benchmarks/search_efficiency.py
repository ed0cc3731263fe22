"""Search efficiency: which sampler finds a better accuracy-size front with fewer trials?

Arms (``--arms``): ``random``, ``tpe``, ``nsga2`` (Optuna's samplers), ``code`` (the code-guided
sampler, docs/sampler.md, with its defaults), and its ablations ``code-moves`` (moves only, no
warm start) and ``code-warm`` (warm start only, no moves). Each arm runs one study of
``max(--trials)`` trials per task and study seed (``--seeds``) with codenas's own driver
(:func:`codenas.search.run`, tracking off), objectives ``val_accuracy`` (up) and ``params``
(down). The 15- and 30-trial fronts are prefixes of the 60-trial study.

Judging. For each prefix, the study's Pareto front on its own objectives (validation metrics
of the brief training) is taken; each front member is trained again from scratch to
convergence (``--full`` epochs at most, early stopping on the validation loss with
``--patience``, best-validation weights restored: the protocol of benchmarks/proxy_quality.py,
whose ``train_one`` does it), and the front is scored by the hypervolume of (full-training
*test* accuracy, log10 params) against a fixed reference point per task: accuracy of the
majority class, log10 of the largest network of the space; normalised by the box from
(1.0, 1.0) to that point, so 1 would be a perfect one-parameter network. The test split takes no
part in any selection: studies read validation metrics only, full training stops on the
validation loss.

Also reported: CPU seconds of each study at each prefix (``time.process_time`` of the search
process, all threads), the hypervolume of the code arms at every 5th trial, and the number of
trials the code arm needs to reach TPE's mean 60-trial hypervolume.

Task roles (``DEV_TASKS``): the sampler's options may only be chosen on the development
tasks; the others are held out and reported separately. In this run nothing was tuned: the
sampler runs with its documented defaults on every task.

Caches (``--cache``, default ``/tmp/codenas-search-efficiency``): one Optuna SQLite file per
study (rerunning continues it to the requested trials), CPU times per trial beside it, and
one JSON file per fully trained spec, so a rerun only does what is missing.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/search_efficiency.py
    PYTHONPATH=$PWD python benchmarks/search_efficiency.py --tasks parity --seeds 0 \
        --trials 5 --arms tpe code --out /tmp/se.json          # a quick try
    PYTHONPATH=$PWD python benchmarks/search_efficiency.py --spread 30   # the tasks' spread

Writes ``benchmarks/results/search_efficiency.json`` and ``search_efficiency.png`` (or
``search_efficiency_spread.json`` for ``--spread``). docs/search-efficiency.md has the results.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _machine import machine
from proxy_quality import record_key, sample_specs, train_one

RESULTS = Path(__file__).resolve().parent / "results"

_MLP_SPACE = {
    "name": "mlp",
    "depth": {"min": 1, "max": 4},
    "width": {"min": 8, "max": 256, "log": True},
    "shape": ["constant", "funnel", "expand", "diamond", "hourglass"],
    "activation": ["relu", "gelu", "tanh"],
    "dropout": {"min": 0.0, "max": 0.2},
}
_TRAIN = {"batch_size": 64, "optimizer": "adam", "lr": 0.003, "threads": 1}

# name -> the config sections of its search. Brief budgets are small on purpose: 2 shared cores.
TASKS: dict[str, dict[str, Any]] = {
    "parity": {
        "data": {"name": "parity", "n_samples": 3000},
        "space": _MLP_SPACE,
        "train": {**_TRAIN, "epochs": 5},
    },
    "teacher": {
        "data": {"name": "teacher", "n_samples": 3000},
        "space": _MLP_SPACE,
        "train": {**_TRAIN, "epochs": 5},
    },
    "spiral": {
        "data": {"name": "spiral", "n_samples": 3000},
        "space": _MLP_SPACE,
        "train": {**_TRAIN, "epochs": 5},
    },
    "bars": {
        "data": {"name": "bars", "n_samples": 1500},
        "space": {
            "name": "cnn",
            "depth": {"min": 1, "max": 4},
            "width": {"min": 4, "max": 32, "log": True},
            "shape": ["constant", "funnel", "expand"],
            "kernel_size": [3, 5],
            "activation": ["relu", "gelu"],
            "pool_every": 2,
            "batch_norm": True,
        },
        "train": {**_TRAIN, "epochs": 3},
    },
}
# Full training per task: most epochs and patience (CNNs cost ~10x an MLP epoch here).
FULL = {"parity": (60, 5), "teacher": (60, 5), "spiral": (60, 5), "bars": (30, 4)}
# Tasks judged at every 5th trial too (TPE and code arms), for "trials to reach": the MLPs.
FINE: tuple[str, ...] = ()  # default of --fine: none (2 shared cores)
DEV_TASKS = ("parity",)  # options may be chosen here only; the others are held out

ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "tpe": ("tpe", {}),
    "nsga2": ("nsga2", {}),
    "code": ("code", {}),
    "code-moves": ("code", {"warm_start": False}),
    "code-warm": ("code", {"move_probability": 0.0}),
}
# Read after the brief budget in --spread (the early score's held-out check, issue 11 item 4).
SPREAD_BRIEF = ("dead_fraction", "effective_rank", "capacity_usage", "early_score")
CODE_ARMS = tuple(a for a, (s, _) in ARMS.items() if s == "code")


def task_config(task: str, cache: Path, overrides: Sequence[str] = ()) -> Any:
    """The validated search config of ``task`` (written once as YAML into the cache)."""
    import codenas

    body = {
        "study": {"name": task, "trials": 60, "sampler": "tpe", "seed": 0},
        **TASKS[task],
        "metrics": {"samples": 1024, "log": ["dead_fraction", "effective_rank", "capacity_usage"]},
        "objectives": [
            {"metric": "val_accuracy", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        "tracking": {"enabled": False, "report": False},
    }
    path = cache / "configs" / f"{task}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return codenas.load_config(path, list(overrides))


def full_settings(task: str, args: argparse.Namespace) -> tuple[int, int]:
    """(most epochs, patience) of the full trainings of ``task``: the flags, else ``FULL``."""
    epochs, patience = FULL[task]
    return args.full or epochs, args.patience or patience


# ----------------------------------------------------------------------------- studies


def run_study(
    task: str, arm: str, seed: int, n_trials: int, cache: Path, cached_only: bool = False
) -> Any:
    """The study of (task, arm, seed), continued to ``n_trials`` trials; CPU time per trial.

    With ``cached_only``, a study that has fewer trials is left alone: ``(None, times)``.
    """
    import optuna

    import codenas

    sampler, options = ARMS[arm]
    name = f"{task}-{arm}-s{seed}"
    db = cache / "studies" / f"{name}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    config = task_config(
        task,
        cache,
        [
            f"study.name={name}",
            f"study.seed={seed}",
            f"study.sampler={sampler}",
            f"study.sampler_options={json.dumps(options)}",
            f"study.storage=sqlite:///{db}",
        ],
    )
    times_path = db.with_suffix(".cpu.json")
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    done = 0
    if db.exists():
        done = len(optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials)
    if done >= n_trials:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{db}"), times
    if cached_only:
        return None, times
    clock = {"cpu": time.process_time(), "wall": time.perf_counter()}

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        times[str(trial.number)] = {"cpu": cpu - clock["cpu"], "wall": wall - clock["wall"]}
        clock.update(cpu=cpu, wall=wall)
        times_path.write_text(json.dumps(times))

    start = time.perf_counter()
    study = codenas.search.run(config, n_trials=n_trials - done, callbacks=[record])
    print(
        f"  study {name}: trials {done}..{n_trials - 1} in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return study, times


def front_at(study: Any, n: int) -> list[Any]:
    """The Pareto front (val_accuracy up, params down) of the first ``n`` trials."""
    import moocore
    import optuna

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.number < n
    ]
    if not done:
        return []
    points = np.array([t.values for t in done], dtype=float)
    keep = moocore.is_nondominated(points, maximise=[True, False], keep_weakly=False)
    front = [t for t, k in zip(done, keep, strict=True) if k]
    unique: dict[str, Any] = {}
    for t in front:  # two trials of one architecture are one point
        unique.setdefault(json.dumps(t.user_attrs["spec"], sort_keys=True), t)
    return list(unique.values())


# ----------------------------------------------------------------------------- full training


class FullTrainer:
    """Trains specs of one task to convergence, caching each result as JSON by spec."""

    def __init__(
        self,
        task: str,
        cache: Path,
        full: int,
        patience: int,
        brief_names: Sequence[str] = (),
    ) -> None:
        import codenas  # noqa: F401  (registers everything)
        from codenas.data import load_dataset
        from codenas.evaluation.evaluate import Evaluator

        self.task, self.full, self.patience = task, full, patience
        self.config = task_config(task, cache, [f"train.epochs={full}"])
        self.data = load_dataset(self.config.data)
        self.evaluator = Evaluator(self.config, self.data, source=f"search_efficiency {task}")
        # With brief_names, the metrics of the search's brief budget are read on the way
        # (train_one: its first epochs are exactly the brief training): for the spread table.
        self.brief_names = tuple(brief_names)
        self.brief = int(task_config(task, cache).train.epochs)
        self.dir = cache / ("spread" if brief_names else "full") / task
        self.dir.mkdir(parents=True, exist_ok=True)
        self.trained_now = 0
        self.seconds = 0.0
        self.cached_only = False  # True: a spec not in the cache raises LookupError

    def key(self, spec: Mapping[str, Any]) -> str:
        return record_key(
            {
                "spec": dict(spec),
                "data": self.config.data.model_dump(mode="json"),
                "train": self.config.train.model_dump(exclude={"threads"}),
                "patience": self.patience,
                "seed": 0,
                **({"brief": [self.brief, *self.brief_names]} if self.brief_names else {}),
            }
        )

    def __call__(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``{"test_accuracy", "val_accuracy", "params", "best_epoch", "epochs", "seconds"}``."""
        from codenas.spaces import spec_from_dict

        path = self.dir / f"{self.key(spec)}.json"
        if path.exists():
            return json.loads(path.read_text())
        if self.cached_only:
            raise LookupError(f"not in the cache: {path}")
        record = train_one(
            self.evaluator,
            spec_from_dict(spec),
            0,
            brief=self.brief if self.brief_names else 1,
            full=self.full,
            patience=self.patience,
            sweep=(1,),  # train_one needs one; epoch 1 costs one cheap measurement
            brief_names=self.brief_names,
        )
        out = {
            "spec": dict(spec),
            "test_accuracy": record["full"]["test_accuracy"],
            "val_accuracy": record["full"]["val_accuracy"],
            "params": record["init"]["params"],
            "best_epoch": record["full"]["best_epoch"],
            "epochs": record["full"]["epochs"],
            "seconds": record["seconds"],
            **({"brief": record["brief"]} if self.brief_names else {}),
        }
        path.write_text(json.dumps(out))
        self.trained_now += 1
        self.seconds += record["seconds"]
        return out


def reference_point(trainer: FullTrainer) -> tuple[float, float]:
    """(majority-class test accuracy, log10 params of the widest deepest net of the space)."""
    from codenas.spaces import build_model
    from codenas.training.loop import count_parameters

    counts = np.bincount(trainer.data.test.y.numpy())
    space = trainer.config.space
    widths = [int(space.width.max)] * int(space.depth.max)
    spec = {"space": space.name, "input_shape": list(trainer.data.input_shape)}
    spec["n_outputs"] = trainer.data.n_outputs
    if space.name == "mlp":
        spec.update(widths=widths, activation="relu", dropout=0.0)
    else:
        spec.update(
            channels=widths,
            kernel_size=max(space.kernel_size),
            activation="relu",
            pool_every=space.pool_every,
            pool=space.pool,
            batch_norm=space.batch_norm,
        )
    return float(counts.max() / counts.sum()), math.log10(count_parameters(build_model(spec)))


def hypervolume(points: Sequence[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Normalised HV of (test accuracy up, log10 params down) in the box (1, 1) .. ``ref``."""
    import moocore

    if not points:
        return 0.0
    hv = moocore.hypervolume(np.asarray(points, float), ref=list(ref), maximise=[True, False])
    return float(hv / ((1.0 - ref[0]) * (ref[1] - 1.0)))


# ----------------------------------------------------------------------------- main parts


def judge(
    task: str,
    arm: str,
    seed: int,
    study: Any,
    times: Mapping[str, Any],
    prefixes: Sequence[int],
    trainer: FullTrainer,
    ref: tuple[float, float],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in prefixes:
        front = front_at(study, n)
        full = [trainer(t.user_attrs["spec"]) for t in front]
        points = [(f["test_accuracy"], math.log10(f["params"])) for f in full]
        # A trial killed by an interrupted run has no time (and stays RUNNING): left out.
        known = [times[str(i)]["cpu"] for i in range(n) if str(i) in times]
        cpu = float(sum(known))
        out[str(n)] = {
            "hv": hypervolume(points, ref),
            "cpu_seconds": cpu,
            "trials_without_time": n - len(known),
            # Which rule of the code sampler made each trial ("" for the base sampler's).
            "rules": dict(
                Counter(t.user_attrs.get("code.rule", "") for t in study.trials if t.number < n)
            ),
            "front": [
                {
                    "trial": t.number,
                    "val_accuracy": t.values[0],
                    "params": t.values[1],
                    "test_accuracy_full": f["test_accuracy"],
                    "rule": t.user_attrs.get("code.rule", ""),
                }
                for t, f in zip(front, full, strict=True)
            ],
        }
    return out


def summarise(per_run: Mapping[str, Any], prefixes: Sequence[int]) -> dict[str, Any]:
    """Per task and arm: mean, std, min, max of HV and CPU seconds over seeds at each prefix."""
    table: dict[str, Any] = {}
    for task, arms in per_run.items():
        table[task] = {}
        for arm, seeds in arms.items():
            row = {}
            for n in prefixes:
                hv = [s[str(n)]["hv"] for s in seeds.values() if str(n) in s]
                cpu = [s[str(n)]["cpu_seconds"] for s in seeds.values() if str(n) in s]
                if not hv:
                    continue
                row[str(n)] = {
                    "hv_mean": float(np.mean(hv)),
                    "hv_std": float(np.std(hv, ddof=1)) if len(hv) > 1 else 0.0,
                    "hv_min": float(np.min(hv)),
                    "hv_max": float(np.max(hv)),
                    "hv_per_seed": hv,
                    "cpu_seconds_mean": float(np.mean(cpu)),
                }
            table[task][arm] = row
    return table


def trials_to_reach(
    per_run: Mapping[str, Any], arm: str, target_arm: str = "tpe", target_n: int = 60
) -> dict[str, Any]:
    """Per task: the smallest prefix at which ``arm``'s mean HV reaches ``target_arm``'s
    mean HV at ``target_n`` trials (``None``: not within the run)."""
    out = {}
    for task, arms in per_run.items():
        if arm not in arms or target_arm not in arms:
            continue
        goal = [s[str(target_n)]["hv"] for s in arms[target_arm].values() if str(target_n) in s]
        if not goal:
            continue
        target = float(np.mean(goal))
        ns = sorted({int(n) for s in arms[arm].values() for n in s})
        reached = None
        for n in ns:
            hv = [s[str(n)]["hv"] for s in arms[arm].values() if str(n) in s]
            if hv and np.mean(hv) >= target:
                reached = n
                break
        out[task] = {"target_hv": target, "trials": reached}
    return out


def run_benchmark(args: argparse.Namespace) -> int:
    cache = Path(args.cache)
    n_max = max(args.trials)
    fine = sorted({*args.trials, *range(5, n_max + 1, 5)})
    per_run: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    skipped: list[str] = []
    for task in args.tasks:
        t0 = time.perf_counter()
        trainer = FullTrainer(task, cache, *full_settings(task, args))
        trainer.cached_only = args.cached_only
        ref = reference_point(trainer)
        per_run[task] = {}
        study_s = judge_s = 0.0
        for arm in args.arms:
            per_run[task][arm] = {}
            for seed in args.seeds:
                s0 = time.perf_counter()
                study, times = run_study(task, arm, seed, n_max, cache, args.cached_only)
                s1 = time.perf_counter()
                prefixes = fine if arm in ("code", "tpe") and task in args.fine else args.trials
                if study is None:
                    skipped.append(f"{task} {arm} seed {seed}: study not finished")
                    continue
                try:
                    per_run[task][arm][str(seed)] = judge(
                        task, arm, seed, study, times, prefixes, trainer, ref
                    )
                except LookupError:
                    skipped.append(f"{task} {arm} seed {seed}: front not fully trained yet")
                    continue
                s2 = time.perf_counter()
                study_s += s1 - s0
                judge_s += s2 - s1
                hv = per_run[task][arm][str(seed)]
                print(
                    f"[{task} {arm} seed {seed}] HV "
                    + " ".join(f"{n}:{hv[str(n)]['hv']:.3f}" for n in args.trials)
                    + f"  (study {s1 - s0:.0f} s, judging {s2 - s1:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        timing[task] = {
            "studies_seconds": study_s,
            "judging_seconds": judge_s,
            "full_trainings_now": trainer.trained_now,
            "full_training_seconds_now": trainer.seconds,
            "total_seconds": time.perf_counter() - t0,
            "reference_point": ref,
        }
        print(
            f"{task}: studies {study_s:.0f} s, judging {judge_s:.0f} s "
            f"({trainer.trained_now} full trainings now, {trainer.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    table = summarise(per_run, fine)
    reach = {arm: trials_to_reach(per_run, arm) for arm in args.arms if arm in CODE_ARMS}
    result = {
        "benchmark": "search_efficiency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(sys.argv),
        "tasks": {t: TASKS[t] for t in args.tasks},
        "dev_tasks": [t for t in args.tasks if t in DEV_TASKS],
        "held_out_tasks": [t for t in args.tasks if t not in DEV_TASKS],
        "tuned": "nothing: the code sampler runs with its documented defaults",
        "arms": {a: {"sampler": ARMS[a][0], "options": ARMS[a][1]} for a in args.arms},
        "seeds": args.seeds,
        "trials": args.trials,
        "full": {
            t: dict(zip(("epochs", "patience"), full_settings(t, args), strict=True))
            for t in args.tasks
        },
        "table": table,
        "trials_to_reach_tpe_60": reach,
        "noise_ceiling": noise_ceiling(per_run, n_max),
        "timing": timing,
        "skipped": skipped,
        "runs": per_run,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print_table(result)
    figure(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def noise_ceiling(per_run: Mapping[str, Any], n: int) -> dict[str, Any]:
    """Per task and arm: the largest HV difference between two seeds of that arm at ``n``."""
    out: dict[str, Any] = {}
    for task, arms in per_run.items():
        out[task] = {}
        for arm, seeds in arms.items():
            hv = [s[str(n)]["hv"] for s in seeds.values() if str(n) in s]
            out[task][arm] = float(max(hv) - min(hv)) if len(hv) > 1 else None
    return out


def print_table(result: Mapping[str, Any]) -> None:
    trials = result["trials"]
    for role in ("dev_tasks", "held_out_tasks"):
        for task in result[role]:
            print(f"\n{task} ({role.removesuffix('_tasks').replace('_', '-')}); HV mean ± std")
            print(f"{'arm':12s} " + " ".join(f"{n:>21d}" for n in trials))
            for arm, row in result["table"][task].items():
                cells = []
                for n in trials:
                    c = row.get(str(n))
                    cells.append(
                        f"{c['hv_mean']:.3f}±{c['hv_std']:.3f} {c['cpu_seconds_mean']:5.0f}s"
                        if c
                        else " " * 21
                    )
                print(f"{arm:12s} " + " ".join(f"{c:>21s}" for c in cells))
    print("\ntrials the code arms need to reach TPE's mean 60-trial HV:")
    for arm, tasks in result["trials_to_reach_tpe_60"].items():
        print(f"  {arm}: " + ", ".join(f"{t}: {v['trials']}" for t, v in tasks.items()))


def figure(result: Mapping[str, Any], path: Path) -> None:
    """HV against trials (top row) and against mean CPU seconds (bottom row), one column per
    task; lines are means over seeds, bands min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [*result["dev_tasks"], *result["held_out_tasks"]]
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 6.0), squeeze=False)
    for col, task in enumerate(tasks):
        for arm, row in result["table"][task].items():
            ns = sorted(int(n) for n in row)
            mean = [row[str(n)]["hv_mean"] for n in ns]
            lo = [row[str(n)]["hv_min"] for n in ns]
            hi = [row[str(n)]["hv_max"] for n in ns]
            cpu = [row[str(n)]["cpu_seconds_mean"] for n in ns]
            (line,) = axes[0][col].plot(ns, mean, marker="o", ms=3, label=arm)
            axes[0][col].fill_between(ns, lo, hi, color=line.get_color(), alpha=0.12)
            axes[1][col].plot(cpu, mean, marker="o", ms=3, color=line.get_color(), label=arm)
        role = "dev" if task in result["dev_tasks"] else "held out"
        axes[0][col].set_title(f"{task} ({role})")
        axes[0][col].set_xlabel("trials")
        axes[1][col].set_xlabel("CPU seconds of the search")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("HV (full-training test acc., log10 params)")
    axes[1][0].set_ylabel("HV")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"mean, and min..max band, over study seeds {result['seeds']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_spread(args: argparse.Namespace) -> int:
    """Full-training test accuracy of ``--spread`` random specs per task: does it spread?"""
    from scipy.stats import kendalltau

    from codenas.spaces import get_space

    cache = Path(args.cache)
    out: dict[str, Any] = {}
    for task in args.tasks:
        t0 = time.perf_counter()
        trainer = FullTrainer(task, cache, *full_settings(task, args), brief_names=SPREAD_BRIEF)
        space = get_space(trainer.config.space.name)(trainer.config.space)
        specs = sample_specs(space, trainer.data, args.spread, 0)
        rows = [trainer(s.to_dict()) for s in specs]
        acc = np.array([r["test_accuracy"] for r in rows])
        params = np.array([r["params"] for r in rows])
        depth = np.array([len(r["spec"].get("widths") or r["spec"]["channels"]) for r in rows])

        truth = list(acc)
        brief = [r["brief"] for r in rows]
        scores = {
            "early_score (shipped: -ln val_loss - 4 dead_last)": [b["early_score"] for b in brief],
            "-val_loss (brief)": [-b["val_loss"] for b in brief],
            "val_accuracy (brief)": [b["val_accuracy"] for b in brief],
            "capacity_usage (brief)": [b["capacity_usage"] for b in brief],
            "params": list(params),
        }
        dead_last = [
            [v for k, v in sorted(b.items()) if k.startswith("dead_fraction/layer_")][-1]
            for b in brief
        ]
        out[task] = {
            "n": len(rows),
            "kendall_tau_with_full_test_accuracy": {
                k: float(kendalltau(v, truth).statistic) for k, v in scores.items()
            },
            "with_dead_units_in_last_layer": int(sum(d > 0 for d in dead_last)),
            "max_dead_share_last_layer": float(max(dead_last)),
            "test_accuracy_min": float(acc.min()),
            "test_accuracy_max": float(acc.max()),
            "test_accuracy_quartiles": [float(q) for q in np.quantile(acc, [0.25, 0.5, 0.75])],
            "within_1.5pp_of_best": int((acc >= acc.max() - 0.015).sum()),
            "tau_params": float(kendalltau(params, acc).statistic),
            "tau_depth": float(kendalltau(depth, acc).statistic),
            "mean_full_training_seconds": float(np.mean([r["seconds"] for r in rows])),
            "seconds": time.perf_counter() - t0,
        }
        print(task, json.dumps(out[task]), flush=True)
    path = Path(args.out)
    path.write_text(json.dumps({"machine": machine(), "spread": out}, indent=1))
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, nargs="+", default=[15, 30, 60])
    parser.add_argument("--full", type=int, default=0, help="most epochs of a full training")
    parser.add_argument("--patience", type=int, default=0, help="early-stopping patience")
    parser.add_argument("--cache", default="/tmp/codenas-search-efficiency")
    parser.add_argument("--spread", type=int, default=0, help="only measure N random specs")
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--fine",
        nargs="*",
        default=list(FINE),
        choices=list(TASKS),
        help="tasks whose tpe and code arms are also judged at every 5th trial",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="run and train nothing: report the finished, fully judged studies in the cache",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.spread:
        args.out = args.out or str(RESULTS / "search_efficiency_spread.json")
        return run_spread(args)
    args.out = args.out or str(RESULTS / "search_efficiency.json")
    return run_benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
