"""The Pareto front of a study as rows, tables, JSON, CSV and a plot.

The front itself is Optuna's (``study.best_trials``: feasible, non-dominated COMPLETE trials);
this module only presents it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure


@dataclasses.dataclass(frozen=True)
class FrontRow:
    """One Pareto-optimal trial.

    Attributes:
        trial: the trial number; state: its Optuna state name.
        values: objective name -> value, in objective order.
        spec: the architecture spec (``Spec.to_dict`` form).
        mlflow_run_id: the trial's MLflow run, or ``None``.
        metrics: every other value the trial recorded.
        lineage: which code-sampler rule proposed the trial, from which trial
            (``shrink<-#12``, ``warm_start``); ``""`` for the base sampler's trials
            (:func:`codenas.search.samplers.lineage`).
    """

    trial: int
    state: str
    values: dict[str, float]
    spec: dict[str, Any]
    mlflow_run_id: str | None
    metrics: dict[str, float]
    lineage: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "state": self.state,
            "values": self.values,
            "spec": self.spec,
            "mlflow_run_id": self.mlflow_run_id,
            "metrics": self.metrics,
            "lineage": self.lineage,
        }


def objective_names(study: optuna.Study) -> list[str]:
    names = study.user_attrs.get("codenas.objectives")
    if names and len(names) == len(study.directions):
        return list(names)
    return [f"value_{i}" for i in range(len(study.directions))]


def row_of(trial: optuna.trial.FrozenTrial, names: Sequence[str]) -> FrontRow:
    from codenas.search.samplers import lineage

    values = trial.values or []
    return FrontRow(
        trial=trial.number,
        state=trial.state.name,
        values={n: float(v) for n, v in zip(names, values, strict=False)},
        spec=dict(trial.user_attrs.get("spec", {})),
        mlflow_run_id=trial.user_attrs.get("mlflow_run_id"),
        metrics=dict(trial.user_attrs.get("metrics", {})),
        lineage=lineage(trial.user_attrs),
    )


def front_rows(
    study: optuna.Study, best: Sequence[optuna.trial.FrozenTrial] | None = None
) -> list[FrontRow]:
    """The Pareto front of ``study`` (or the given ``best`` trials), sorted by trial number."""
    names = objective_names(study)
    best = study.best_trials if best is None else best
    return [row_of(t, names) for t in sorted(best, key=lambda t: t.number)]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) >= 1:
            return f"{int(value):d}"
        return f"{value:.4g}"
    return str(value)


def spec_summary(spec: dict[str, Any]) -> str:
    """A short human form of a spec: ``mlp 64-32-16 relu p=0.10``."""
    if not spec:
        return "-"
    parts = [str(spec.get("space", "?"))]
    for key in ("widths", "channels"):
        if key in spec:
            parts.append("-".join(str(w) for w in spec[key]))
    if "kernel_size" in spec:
        parts.append(f"k{spec['kernel_size']}")
    if "activation" in spec:
        parts.append(str(spec["activation"]))
    if spec.get("dropout"):
        parts.append(f"p={spec['dropout']:.2f}")
    return " ".join(parts)


def format_table(rows: Sequence[FrontRow], names: Sequence[str]) -> str:
    """A plain-text table: trial, state, each objective, run id, spec."""
    header = ["trial", "state", *names, "mlflow_run_id", "spec"]
    body = [
        [
            str(r.trial),
            r.state,
            *(_fmt(r.values.get(n, float("nan"))) for n in names),
            (r.mlflow_run_id or "-")[:12],
            spec_summary(r.spec),
        ]
        for r in rows
    ]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(line.rstrip() for line in lines)


def to_json(rows: Sequence[FrontRow]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2)


def to_csv(rows: Sequence[FrontRow], names: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["trial", "state", *names, "mlflow_run_id", "spec"])
    for r in rows:
        writer.writerow(
            [
                r.trial,
                r.state,
                *(r.values.get(n) for n in names),
                r.mlflow_run_id or "",
                json.dumps(r.spec),
            ]
        )
    return buf.getvalue()


def plot_front(
    study: optuna.Study, best: Sequence[optuna.trial.FrozenTrial] | None = None
) -> Figure:
    """Pairwise scatter plots of every objective pair: all trials grey, the front highlighted.

    One panel per pair of objectives reads better than a 3-D plot and works for any number of
    objectives. Arrows in the axis labels show which way is better.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = objective_names(study)
    directions = [d.name.lower() for d in study.directions]
    trials = [t for t in study.get_trials(deepcopy=False) if t.values is not None]
    front = {t.number for t in (study.best_trials if best is None else best)}
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))] or [(0, 0)]
    fig = Figure(figsize=(4.2 * len(pairs), 4.0), dpi=90)
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (i, j) in zip(axes, pairs, strict=True):
        rest = [t for t in trials if t.number not in front]
        best = sorted((t for t in trials if t.number in front), key=lambda t: t.values[i])
        ax.scatter(
            [t.values[i] for t in rest],
            [t.values[j] for t in rest],
            s=18,
            c="0.7",
            label="other trials",
        )
        ax.scatter(
            [t.values[i] for t in best],
            [t.values[j] for t in best],
            s=36,
            c="tab:red",
            label="Pareto front",
            zorder=3,
        )
        for t in best:
            ax.annotate(
                str(t.number),
                (t.values[i], t.values[j]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        arrow = {"maximize": "↑ better", "minimize": "↓ better"}
        ax.set_xlabel(f"{names[i]} ({arrow[directions[i]].replace('↑', '→').replace('↓', '←')})")
        ax.set_ylabel(f"{names[j]} ({arrow[directions[j]]})")
        if "params" in (names[i], names[j]):
            ax.set_xscale("log") if names[i] == "params" else ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(
        f"Pareto front of study {study.study_name!r}: {len(front)} of {len(trials)} trials"
    )
    # Fixed margins: tight_layout() measures every text and costs most of the drawing time.
    fig.subplots_adjust(
        left=0.9 / fig.get_figwidth(), right=0.98, bottom=0.15, top=0.85, wspace=0.35
    )
    return fig
