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

from codenas.search._optuna_private import best_trials
from codenas.text import format_number

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
        rung: with ``search.schedule``, the rung whose values these are (the highest the
            trial reached; a front member's is the top rung); ``None`` without a schedule.
    """

    trial: int
    state: str
    values: dict[str, float]
    spec: dict[str, Any]
    mlflow_run_id: str | None
    metrics: dict[str, float]
    lineage: str = ""
    rung: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "state": self.state,
            "values": self.values,
            "spec": self.spec,
            "mlflow_run_id": self.mlflow_run_id,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "rung": self.rung,
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
        rung=None if trial.user_attrs.get("rung") is None else int(trial.user_attrs["rung"]),
    )


def front_rows(
    study: optuna.Study, best: Sequence[optuna.trial.FrozenTrial] | None = None
) -> list[FrontRow]:
    """The Pareto front of ``study`` (or the given ``best`` trials), sorted by trial number."""
    names = objective_names(study)
    best = best_trials(study) if best is None else best
    return [row_of(t, names) for t in sorted(best, key=lambda t: t.number)]


def spec_summary(spec: dict[str, Any]) -> str:
    """A short human form of a spec: ``mlp 64-32-16 relu p=0.10``."""
    if not spec:
        return "-"
    from codenas.spaces import all_layers_fields

    parts = [str(spec.get("space", "?"))]
    for key in all_layers_fields():
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
    """A plain-text table: trial, state, each objective, run id, spec (and lineage, when a
    code sampler proposed some of the rows; the rung, when a schedule ran)."""
    lineage = any(r.lineage for r in rows)
    rung = any(r.rung is not None for r in rows)
    header = [
        "trial",
        "state",
        *(["rung"] if rung else []),
        *names,
        "mlflow_run_id",
        "spec",
        *(["lineage"] if lineage else []),
    ]
    body = [
        [
            str(r.trial),
            r.state,
            *([_rung_text(r.rung)] if rung else []),
            *(format_number(r.values.get(n, float("nan"))) for n in names),
            (r.mlflow_run_id or "-")[:12],
            spec_summary(r.spec),
            *([r.lineage or "-"] if lineage else []),
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


def _rung_text(rung: int | None) -> str:
    return "-" if rung is None else str(rung)


def to_json(rows: Sequence[FrontRow]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2)


def _csv_value(value: Any) -> Any:
    """A count (``params``) as an integer, ``9614`` not ``9614.0``; other values unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) >= 1:
        return int(value)
    return value


def to_csv(rows: Sequence[FrontRow], names: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    lineage = any(r.lineage for r in rows)
    rung = any(r.rung is not None for r in rows)
    writer.writerow(
        [
            "trial",
            "state",
            *(["rung"] if rung else []),
            *names,
            "mlflow_run_id",
            "spec",
            *(["lineage"] if lineage else []),
        ]
    )
    for r in rows:
        writer.writerow(
            [
                r.trial,
                r.state,
                *([_rung_text(r.rung)] if rung else []),
                *(_csv_value(r.values.get(n)) for n in names),
                r.mlflow_run_id or "",
                json.dumps(r.spec),
                *([r.lineage] if lineage else []),
            ]
        )
    return buf.getvalue()


# Where a label may go around its point, in points: near first, then farther out (with a
# leader line back to the point).
_OFFSETS = [
    (dx * r, dy * r)
    for r in (1, 2, 3.2)
    for dx, dy in ((6, 5), (6, -12), (-14, 5), (-14, -12), (8, -3), (-18, -3), (-4, 9), (-4, -16))
]


def _place_labels(
    ax: Any,
    points: Sequence[tuple[float, float, str]],
    dpi: float,
    others: Sequence[tuple[float, float]] = (),
) -> list[tuple[float, float, float, float]]:
    """Label each point where its label overlaps no other label and no marker (of ``points``
    or of ``others``); returns the labels' boxes in pixels.

    A greedy search over :data:`_OFFSETS` in display space (the figure's pixels): simple, and
    enough for the few dozen members of a front. A label that cannot be placed near its
    point goes farther out with a thin leader line; one that fits nowhere is left out.
    """
    to_px = ax.transData.transform
    scale = dpi / 72.0
    fontsize = 8.0
    placed: list[tuple[float, float, float, float]] = []
    xy = [to_px((x, y)) for x, y, _ in points]
    r = 4.5 * scale  # a front marker's radius in pixels (s=34 points²), a grey one's below
    dots = [(px - r, py - r, px + r, py + r) for px, py in xy]
    dots += [(px - 3, py - 3, px + 3, py + 3) for px, py in (to_px(o) for o in others)]

    def free(box: tuple[float, float, float, float], own: int) -> bool:
        x0, y0, x1, y1 = box
        for k, (a0, b0, a1, b1) in enumerate(placed + dots):
            if k == len(placed) + own:
                continue
            if x0 < a1 and a0 < x1 and y0 < b1 and b0 < y1:
                return False
        return True

    for n, ((px, py), (_, _, text)) in enumerate(zip(xy, points, strict=True)):
        width = 0.62 * fontsize * len(text) * scale
        height = fontsize * scale
        for k, (dx, dy) in enumerate(_OFFSETS):
            x0, y0 = px + dx * scale, py + dy * scale
            box = (x0, y0, x0 + width, y0 + height)
            if free(box, n):
                placed.append(box)
                far = k >= 8
                ax.annotate(
                    text,
                    (points[n][0], points[n][1]),
                    xytext=(dx, dy),
                    textcoords="offset points",
                    fontsize=fontsize,
                    color="tab:red",
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6} if far else None,
                )
                break
    return placed


def plot_front(
    study: optuna.Study, best: Sequence[optuna.trial.FrozenTrial] | None = None
) -> Figure:
    """Pairwise scatter plots of every objective pair: all trials grey, the front highlighted.

    One panel per pair of objectives reads better than a 3-D plot and works for any number of
    objectives. Arrows in the axis labels show which way is better. Each front member is
    labelled with its trial number where the label collides with no other label or member
    (farther out with a leader line when its neighbourhood is crowded).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = objective_names(study)
    directions = [d.name.lower() for d in study.directions]
    trials = [t for t in study.get_trials(deepcopy=False) if t.values is not None]
    front = {t.number for t in (best_trials(study) if best is None else best)}
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))] or [(0, 0)]
    dpi = 100
    fig = Figure(figsize=(5.6 * len(pairs), 5.2), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    # Fixed margins: tight_layout() measures every text and costs most of the drawing time.
    fig.subplots_adjust(
        left=0.9 / fig.get_figwidth(), right=0.98, bottom=0.12, top=0.88, wspace=0.28
    )
    for ax, (i, j) in zip(axes, pairs, strict=True):
        rest = [t for t in trials if t.number not in front]
        members = sorted((t for t in trials if t.number in front), key=lambda t: t.values[i])
        ax.scatter(
            [t.values[i] for t in rest],
            [t.values[j] for t in rest],
            s=16,
            c="0.75",
            label="other trials",
        )
        ax.scatter(
            [t.values[i] for t in members],
            [t.values[j] for t in members],
            s=34,
            c="tab:red",
            label="Pareto front (trial number)",
            zorder=3,
        )
        arrow = {"maximize": "↑ better", "minimize": "↓ better"}
        ax.set_xlabel(f"{names[i]} ({arrow[directions[i]].replace('↑', '→').replace('↓', '←')})")
        ax.set_ylabel(f"{names[j]} ({arrow[directions[j]]})")
        if "params" in (names[i], names[j]):
            ax.set_xscale("log") if names[i] == "params" else ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.margins(0.08)
        ax.autoscale_view()
        _place_labels(
            ax,
            [(t.values[i], t.values[j], str(t.number)) for t in members],
            dpi,
            [(t.values[i], t.values[j]) for t in rest],
        )
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(
        f"Pareto front of study {study.study_name!r}: {len(front)} of {len(trials)} trials"
    )
    return fig


def front_html(study: optuna.Study) -> str:
    """The front as one self-contained, interactive HTML page (Optuna's plotly Pareto plot).

    Hovering a point shows its trial number, objective values and parameters; two or three
    objectives give a 2-D or 3-D plot (rotate it with the mouse), more give a plot of the
    first three. plotly.js is inlined, so the page works offline.
    """
    import warnings

    import optuna
    from optuna.exceptions import ExperimentalWarning

    names = objective_names(study)
    targets = None
    if len(names) > 3:
        names = names[:3]
        targets = lambda t: t.values[:3]  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        fig = optuna.visualization.plot_pareto_front(
            study, target_names=names, targets=targets, include_dominated_trials=True
        )
    fig.update_layout(title=f"Pareto front of study {study.study_name!r}", height=700)
    return str(fig.to_html(include_plotlyjs=True, full_html=True))
