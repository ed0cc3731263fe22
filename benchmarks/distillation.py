"""Knowledge distillation where it can matter: a small student vs the same student from scratch.

Tasks: generated ``teacher`` problems (classes of a wide random-Fourier network: a narrow
network cannot follow them), 16,000 rows split 40/10/50, so 6,400 training rows and 8,000
test rows (a test accuracy's standard error ~0.5 pp; paired differences much less). The
teacher is an MLP 256-256 ReLU; the student an MLP 64-64 (about 7.5% of its parameters),
which from scratch ends 3-5 pp below it. Every arm trains the same student for the same
epochs, batch order and optimiser steps, with the same seeds:

- ``scratch``: labels only;
- ``kd``: Hinton's KD on the training rows, ``(1 - alpha) CE + alpha T^2 KL``;
- ``kd+mixup``, ``kd+noise``: KD plus a transfer set labelled by the teacher at every step
  (random mixes of two training rows; training rows plus Gaussian noise);
- ``kd+fresh``: KD plus 16,000 fresh rows drawn from the generator (another ``data.seed``;
  its own standardisation), labels thrown away: what a user with more unlabelled data has;
- ``init+...``: the student starts from the teacher's weights cut to its widths (each layer's
  most-used units, :func:`codenas.decisions.distil.student_from_teacher`);
- ``hint+kd``: KD plus FitNets feature matching (each student layer regresses its teacher
  layer's z-scored units through a linear map).

``--choose`` runs the settings grid on the *dev* task (``teacher``, ``task_seed=0``) and
ranks arms by validation accuracy: codenas distil's defaults come from there. The report
(default) runs the chosen arms on held-out problems (``task_seed`` 1, 2 and a 12-feature,
6-class variant) and reports test accuracy: mean ± sd over 3 seeds, and the paired difference
to scratch with a 95% bootstrap interval (seeds and test rows resampled together).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/distillation.py --choose
    PYTHONPATH=$PWD nice -n 10 python benchmarks/distillation.py
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine

RESULTS = Path(__file__).parent / "results"
SPLIT = ["data.n_samples=16000", "data.val_fraction=0.1", "data.test_fraction=0.5"]
DEV_TASKS = {"teacher-dev": ["data.name=teacher", "data.task_seed=0"]}
REPORT_TASKS = {
    "teacher-1": ["data.name=teacher", "data.task_seed=1"],
    "teacher-2": ["data.name=teacher", "data.task_seed=2"],
    "teacher-12f6c": [
        "data.name=teacher",
        "data.task_seed=3",
        "data.n_features=12",
        "data.n_classes=6",
    ],
}
TEACHER, STUDENT = (256, 256), (64, 64)
EPOCHS = 30
# (name, T, alpha, hint, transfer, init)
DEV_ARMS = [
    ("kd T=1 a=0.5", 1.0, 0.5, 0.0, "none", "random"),
    ("kd T=2 a=0.5", 2.0, 0.5, 0.0, "none", "random"),
    ("kd T=4 a=0.5", 4.0, 0.5, 0.0, "none", "random"),
    ("kd T=2 a=0.9", 2.0, 0.9, 0.0, "none", "random"),
    ("kd T=4 a=0.9", 4.0, 0.9, 0.0, "none", "random"),
    ("kd T=4 a=1", 4.0, 1.0, 0.0, "none", "random"),
    ("kd+mixup T=4 a=0.9", 4.0, 0.9, 0.0, "mixup", "random"),
    ("kd+noise T=4 a=0.9", 4.0, 0.9, 0.0, "noise", "random"),
    ("kd+fresh T=4 a=0.9", 4.0, 0.9, 0.0, "fresh", "random"),
    ("init+kd T=4 a=0.9", 4.0, 0.9, 0.0, "none", "teacher"),
    ("init+kd+mixup T=4 a=0.9", 4.0, 0.9, 0.0, "mixup", "teacher"),
    ("hint+kd T=4 a=0.9", 4.0, 0.9, 1.0, "none", "random"),
    # after the first 12: the best transfer set with other T/alpha, and with the teacher's init
    ("kd+noise T=1 a=0.5", 1.0, 0.5, 0.0, "noise", "random"),
    ("kd+noise T=2 a=0.9", 2.0, 0.9, 0.0, "noise", "random"),
    ("kd+noise T=4 a=1", 4.0, 1.0, 0.0, "noise", "random"),
    ("init+kd+noise T=4 a=0.9", 4.0, 0.9, 0.0, "noise", "teacher"),
]


def report_arms() -> list[tuple[str, float, float, float, str, str]]:
    """The chosen settings (codenas distil's defaults) as plain KD and with each addition."""
    from codenas.decisions import distil_defaults as d

    T, A, H, X, init = (
        d.DEFAULT_TEMPERATURE,
        d.DEFAULT_ALPHA,
        d.DEFAULT_HINT,
        d.DEFAULT_TRANSFER,
        d.DEFAULT_INIT,
    )
    arms = [
        (f"kd T={T:g} a={A:g} (plain)", T, A, 0.0, "none", "random"),
        # Hinton's KD with T > 1: the best such plain setting on the dev task
        ("kd T=4 a=0.5 (plain, Hinton)", 4.0, 0.5, 0.0, "none", "random"),
        ("kd+mixup", T, A, 0.0, "mixup", "random"),
        ("kd+noise", T, A, 0.0, "noise", "random"),
        ("kd+fresh", T, A, 0.0, "fresh", "random"),
        ("init+kd", T, A, 0.0, "none", "teacher"),
        (f"init+kd+{X}", T, A, 0.0, X, "teacher"),
        (f"hint+kd+{X}", T, A, 1.0, X, init),
    ]
    defaults = ("codenas distil defaults", T, A, H, X, init)
    if all(arm[1:] != defaults[1:] for arm in arms):
        arms.append(defaults)
    return arms


def _config(overrides: list[str], epochs: int, seed: int | None = None) -> Any:
    import codenas

    extra = [] if seed is None else [f"data.seed={seed}"]
    return codenas.load_config(
        None,
        [
            *overrides,
            *SPLIT,
            *extra,
            f"train.epochs={epochs}",
            "train.threads=1",
            "train.accelerator=cpu",
            "tracking.enabled=false",
        ],
    )


def _correct(model: Any, split: Any) -> str:
    """Which rows of ``split`` the model gets right, packed (base64 of ``np.packbits``)."""
    import torch

    with torch.no_grad():
        ok = (model(split.x).argmax(1) == split.y).numpy()
    return base64.b64encode(np.packbits(ok)).decode()


def _unpack(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:n].astype(float)


def run_task(
    overrides: list[str], seed: int, epochs: int, arms: list[tuple[Any, ...]], split: str
) -> dict[str, Any]:
    """Teacher, the student from scratch, and the student under each arm, for one seed."""
    from codenas.data import load_dataset
    from codenas.decisions.distil import student_from_teacher, train_student
    from codenas.spaces import MLPSpec, with_layer_sizes
    from codenas.training.runtime import set_threads

    set_threads(1)
    config = _config(overrides, epochs)
    data = load_dataset(config.data)
    spec = MLPSpec(input_shape=tuple(data.input_shape), n_outputs=data.n_outputs, widths=TEACHER)
    student = with_layer_sizes(spec, STUDENT)
    teacher = train_student(spec, data, config.train, seed=seed)
    fresh = None

    def params(model: Any) -> int:
        return sum(p.numel() for p in model.parameters())

    def record(run: Any) -> dict[str, Any]:
        part = getattr(data, split)
        return {**run.metrics, "seconds": run.seconds, "correct": _correct(run.model, part)}

    scratch = train_student(student, data, config.train, seed=seed)
    out: dict[str, Any] = {
        "seed": seed,
        "epochs": epochs,
        "n_train": len(data.train),
        "n_eval": len(getattr(data, split)),
        "teacher": {"widths": list(TEACHER), "params": params(teacher.model), **record(teacher)},
        "student": {"widths": list(STUDENT), "params": params(scratch.model)},
        "arms": {"scratch": record(scratch)},
    }
    init = None
    for name, t, a, h, transfer, how in arms:
        if transfer == "fresh" and fresh is None:
            other = load_dataset(_config(overrides, epochs, seed=1000 + seed).data)
            import torch

            fresh = torch.cat([other.train.x, other.val.x, other.test.x])
        if how == "teacher" and init is None:
            init = student_from_teacher(teacher.model, spec, student, [0, 1], data.train.x)
            out["init_metrics"] = {k: float(v) for k, v in _task_metrics(init, data).items()}
        run = train_student(
            student,
            data,
            config.train,
            seed=seed,
            teacher=teacher.model,
            temperature=t,
            alpha=a,
            hint=h,
            stands_for=[0, 1],
            transfer="none" if transfer == "fresh" else transfer,
            transfer_x=fresh if transfer == "fresh" else None,
            init=init if how == "teacher" else None,
        )
        out["arms"][name] = record(run)
    return out


def _task_metrics(model: Any, data: Any) -> dict[str, float]:
    from codenas.decisions.erase import task_metrics

    return task_metrics(model, data)


def paired_ci(
    runs: list[dict[str, Any]], arm: str, split: str, n_boot: int = 2000
) -> tuple[float, float, float]:
    """Mean paired difference (arm - scratch, in pp) over seeds and rows, with a 95% bootstrap
    interval resampling seeds and evaluation rows together."""
    n = runs[0]["n_eval"]
    diffs = np.stack(
        [
            _unpack(r["arms"][arm]["correct"], n) - _unpack(r["arms"]["scratch"]["correct"], n)
            for r in runs
        ]
    )
    rng = np.random.default_rng(0)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        seeds = rng.integers(0, len(runs), len(runs))
        rows = rng.integers(0, n, n)
        boot[b] = diffs[seeds][:, rows].mean()
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return 100 * float(diffs.mean()), 100 * float(lo), 100 * float(hi)


def _mean_sd(values: list[float]) -> str:
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * m:.2f} ± {100 * sd:.2f}"


def table(results: dict[str, list[dict[str, Any]]], split: str) -> tuple[str, dict[str, Any]]:
    key = f"{split}_accuracy"
    lines = [
        f"| task | arm | {split} acc (mean ± sd) | - scratch (pp) [95% CI] | - teacher (pp) "
        "| student s |",
        "|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {}
    for task, runs in results.items():
        t = [r["teacher"][key] for r in runs]
        ratio = runs[0]["student"]["params"] / runs[0]["teacher"]["params"]
        lines.append(
            f"| {task} | teacher {'-'.join(map(str, TEACHER))} | {_mean_sd(t)} | | | "
            f"{statistics.mean(r['teacher']['seconds'] for r in runs):.1f} |"
        )
        summary[task] = {"teacher": statistics.mean(t), "params_ratio": ratio, "arms": {}}
        for arm in runs[0]["arms"]:
            v = [r["arms"][arm][key] for r in runs]
            d = statistics.mean(v) - statistics.mean(t)
            secs = statistics.mean(r["arms"][arm]["seconds"] for r in runs)
            if arm == "scratch":
                ci_text, ci = "", None
            else:
                ci = paired_ci(runs, arm, split)
                ci_text = f"{ci[0]:+.2f} [{ci[1]:+.2f}, {ci[2]:+.2f}]"
            lines.append(
                f"| {task} | {arm} ({100 * ratio:.1f}% params) | {_mean_sd(v)} | {ci_text} | "
                f"{100 * d:+.2f} | {secs:.1f} |"
            )
            summary[task]["arms"][arm] = {
                "mean": statistics.mean(v),
                "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
                "per_seed": v,
                "vs_scratch_pp": None if ci is None else {"mean": ci[0], "ci95": [ci[1], ci[2]]},
            }
    return "\n".join(lines), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--choose", action="store_true", help="the grid on the dev task")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    tasks = DEV_TASKS if args.choose else REPORT_TASKS
    arms = DEV_ARMS if args.choose else report_arms()
    split = "val" if args.choose else "test"
    out_path = RESULTS / ("distillation_dev.json" if args.choose else "distillation.json")
    cache_path = RESULTS / "cache" / out_path.name
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    start = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    for name, overrides in tasks.items():
        for seed in range(args.seeds):
            key = f"{name}/{seed}/{args.epochs}/{arms}"
            if key not in cache:
                cache[key] = run_task(overrides, seed, args.epochs, arms, split)
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_text(json.dumps(cache))
                print(f"{name} seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
            results.setdefault(name, []).append(cache[key])
    text, summary = table(results, split)
    print(text)
    slim = {
        task: [
            {
                **{k: v for k, v in r.items() if k not in ("arms", "teacher")},
                "teacher": {k: v for k, v in r["teacher"].items() if k != "correct"},
                "arms": {
                    a: {k: v for k, v in m.items() if k != "correct"} for a, m in r["arms"].items()
                },
            }
            for r in runs
        ]
        for task, runs in results.items()
    }
    out_path.write_text(
        json.dumps(
            {
                "machine": machine(),
                "split": split,
                "teacher": list(TEACHER),
                "student": list(STUDENT),
                "tasks": tasks,
                "split_overrides": SPLIT,
                "arms": arms,
                "summary": summary,
                "runs": slim,
                "table": text,
                "seconds": round(time.perf_counter() - start, 1),
            },
            indent=1,
        )
    )
    print(f"wrote {out_path} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
