"""Pick one architecture from the Pareto front of a study: requirements, then one rule.

The front is Optuna's (``study.best_trials``: feasible, non-dominated COMPLETE trials); this
module never re-implements dominance. A pick runs in two steps:

1. **Requirements** filter the front: ``val_accuracy>=0.95``, ``params<=50000``, on any value
   the trials recorded (objectives, per-layer coding metrics such as
   ``dead_fraction/layer_1`` ...), except ``test_*`` values: the test split never steers a
   choice (they are logged for reporting only). Removing members of a Pareto front leaves
   the others non-dominated, so the candidates are still a front.
2. **One rule** chooses among the candidates:

   - ``prefer=METRIC``: the best candidate on that metric. Its direction is the study's for an
     objective, else the metric registry's (``codenas metrics``); add ``:max`` or ``:min`` to
     name it yourself (``hoyer_sparsity:min``). Ties (exactly equal values) are broken by the
     study's objectives in their order, each in its own direction, then by the lower trial
     number.
   - ``knee`` (the default): every objective is scaled to [0, 1] over the whole Pareto front,
     1 being the front's best value in that objective's direction and 0 its worst, so
     objectives that are maximised and minimised are treated alike; the pick is the candidate
     closest to the ideal point (1, ..., 1) in Euclidean distance, reported divided by
     sqrt(number of objectives) so that 0 is best on every objective and 1 worst on every one.
     This is the compromise solution of Zeleny (1973) / Yu (1973), a common operational
     "knee": on a 2-D front it lands at the bend where one objective stops buying much of the
     other. The scale is the front's, not the candidates': the requirements narrow the choice
     but do not change what counts as a large difference (among three candidates within 0.01
     of accuracy, that 0.01 is not the full range). An objective equal on every member scales
     to 1 and does not discriminate. Distances equal to 12 decimals are ties, broken by the
     lower trial number.

No candidate left is :class:`NoFeasibleTrial`, which lists the front members closest to the
requirements, ranked by their total relative shortfall (each miss divided by ``|bound|``).

One cohesive decision in one file (about 530 lines): requirements, the two rankings, the pick and
the messages that explain it read together; splitting them would scatter one rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from codenas.errors import CodenasError, ConfigError, UnknownNameError
from codenas.search.pareto import FrontRow, front_rows, objective_names, row_of
from codenas.text import format_number

if TYPE_CHECKING:
    import optuna

KNEE = "knee"
PREFER = "prefer"
_OPS = ("<=", ">=", "<", ">", "==")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(<=|>=|==|<|>)\s*([-+0-9.eE_]+)\s*$")
_TIE_DECIMALS = 12


class NoFeasibleTrial(CodenasError):
    """No member of the Pareto front meets the requirements (the CLI exits with status 1).

    Attributes:
        closest: ``(row, shortfall)`` pairs, closest first; ``shortfall`` is the sum over the
            requirements of ``miss / |bound|``.
    """

    def __init__(self, message: str, closest: list[tuple[FrontRow, float]]) -> None:
        super().__init__(message)
        self.closest = closest


@dataclasses.dataclass(frozen=True)
class Requirement:
    """A requirement ``metric OP bound`` on a trial's recorded value (OP: <=, >=, <, >, ==)."""

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str | Requirement) -> Requirement:
        """``"val_accuracy>=0.95"`` -> ``Requirement("val_accuracy", ">=", 0.95)``."""
        if isinstance(text, Requirement):
            return text
        match = _REQUIREMENT.match(str(text))
        if not match:
            raise ConfigError(
                f"--require {text!r}: expected METRIC OP NUMBER with OP one of "
                f"{', '.join(_OPS)}, e.g. 'val_accuracy>=0.95' or 'params<=50000'"
            )
        try:
            bound = float(match[3].replace("_", ""))
        except ValueError:
            raise ConfigError(f"--require {text!r}: {match[3]!r} is not a number") from None
        _not_test(match[1], f"--require {text!r}", "require")
        return cls(match[1], match[2], bound)

    def miss(self, value: float | None) -> float:
        """How far ``value`` is from the bound on the wrong side, in the metric's units.

        0 when the value is on the right side (or at the bound); ``inf`` when it is missing or
        NaN. A strict requirement (``<``, ``>``) at exactly its bound misses by 0 but is not
        met (see :meth:`met`).
        """
        if value is None or math.isnan(value):
            return math.inf
        if self.op in ("<=", "<"):
            return max(value - self.bound, 0.0)
        if self.op in (">=", ">"):
            return max(self.bound - value, 0.0)
        return abs(value - self.bound)

    def met(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return {
            "<=": value <= self.bound,
            ">=": value >= self.bound,
            "<": value < self.bound,
            ">": value > self.bound,
            "==": value == self.bound,
        }[self.op]

    def relative_miss(self, value: float | None) -> float:
        """:meth:`miss` divided by ``|bound|`` (by 1 when the bound is 0)."""
        scale = abs(self.bound) if self.bound != 0 else 1.0
        return self.miss(value) / scale

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {format_number(self.bound)}"


@dataclasses.dataclass(frozen=True)
class Pick:
    """The outcome of :func:`pick`.

    Attributes:
        row: the chosen trial (number, objective values, spec, MLflow run id, metrics).
        rule: ``"knee"`` or ``"prefer"``.
        reason: one sentence saying which rule chose it and why, for people.
        metric: the preferred metric (``prefer``), else ``None``.
        direction: the preferred metric's direction (``prefer``), else ``None``.
        score: the preferred metric's value (``prefer``) or the normalised distance to the
            ideal point (``knee``, in [0, 1], lower is better).
        requirements: the requirements applied.
        front: every member of the Pareto front, by trial number.
        ranking: the candidates (front members meeting the requirements) with their scores,
            best first; ``ranking[0]`` is the pick.
        objectives: the study's objective names; directions: their directions.
    """

    row: FrontRow
    rule: str
    reason: str
    metric: str | None
    direction: str | None
    score: float
    requirements: tuple[Requirement, ...]
    front: list[FrontRow]
    ranking: list[tuple[FrontRow, float]]
    objectives: list[str]
    directions: list[str]

    @property
    def trial(self) -> int:
        return self.row.trial

    @property
    def mlflow_run_id(self) -> str | None:
        return self.row.mlflow_run_id

    def summary(self) -> str:
        """``"knee: trial 7 of 3 candidates"``: a short label (MLflow tag, file header)."""
        what = self.rule if self.metric is None else f"prefer {self.metric} ({self.direction})"
        reqs = f", requiring {', '.join(map(str, self.requirements))}" if self.requirements else ""
        return f"{what}: trial {self.trial} of {len(self.ranking)} candidates{reqs}"


# ----------------------------------------------------------------------------- values


def value_of(row: FrontRow, name: str) -> float | None:
    """The value ``name`` recorded by a front member: an objective, or any logged metric."""
    if name in row.values:
        return float(row.values[name])
    value = row.metrics.get(name)
    return None if value is None else float(value)


def recorded_names(rows: Iterable[FrontRow]) -> list[str]:
    """Every value name at least one of ``rows`` recorded, sorted."""
    names: set[str] = set()
    for row in rows:
        names.update(row.values)
        names.update(row.metrics)
    return sorted(names)


def check_names(
    names: Iterable[str],
    rows: Sequence[FrontRow],
    study_name: str,
    labels: Sequence[str] | None = None,
) -> None:
    """Raise a "did you mean" error for a name no front member recorded; ``labels`` (one per
    name: the option that gave it, ``--require 'x>=1'``) start the line."""
    known = recorded_names(rows)
    names = list(names)
    labels = list(labels) if labels is not None else [""] * len(names)
    for name, label in zip(names, labels, strict=True):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        shown = [n for n in known if "/layer_" not in n]
        layered = sorted({n.split("/layer_")[0] for n in known if "/layer_" in n})
        tail = f" (and per layer: {', '.join(f'{b}/layer_K' for b in layered)})" if layered else ""
        registered = ""
        try:
            from codenas.metrics import get_metric

            get_metric(name.split("/layer_")[0])
            registered = (
                f" {name!r} is a codenas metric, but this study did not record it: add it to "
                "metrics.log of the search config."
            )
        except (KeyError, ValueError):
            pass
        raise UnknownNameError(
            f"{label + ': ' if label else ''}"
            f"unknown metric {name!r} in study {study_name!r}.{hint}{registered} "
            f"Recorded: {', '.join(shown)}{tail}"
        )


def metric_direction(name: str, objectives: Sequence[str], directions: Sequence[str]) -> str:
    """The better direction of ``name``: ``name:max``/``:min`` if given, else the study's
    direction for an objective, else the metric registry's.

    Raises:
        ConfigError: the metric has no better direction (e.g. ``class_selectivity``).
    """
    base, _, suffix = name.partition(":")
    if suffix:
        return {"max": "maximize", "min": "minimize"}[suffix]
    if base in objectives:
        return directions[list(objectives).index(base)]
    from codenas.metrics import get_metric

    registered = base.split("/layer_")[0]
    try:
        direction = get_metric(registered).direction
    except (KeyError, ValueError):
        direction = None
    if direction is None:
        raise ConfigError(
            f"--prefer {base!r}: this metric has no better direction (higher is not better, "
            f"nor lower); say which you want: --prefer {base}:max or --prefer {base}:min"
        )
    return direction


def _split_prefer(prefer: str) -> tuple[str, str]:
    base, sep, suffix = prefer.partition(":")
    if sep and suffix not in ("max", "min"):
        raise ConfigError(f"--prefer {prefer!r}: the suffix must be :max or :min, got {suffix!r}")
    _not_test(base, f"--prefer {prefer!r}", "prefer")
    return base, prefer


def _not_test(metric: str, where: str, use: str) -> None:
    """A pick selects: refuse ``test_*`` values (logged for reporting only)."""
    from codenas.config.objectives import check_not_test

    try:
        check_not_test(metric, use)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


# ----------------------------------------------------------------------------- rules


def _better_key(value: float | None, direction: str) -> float:
    """A sort key, lower is better; missing or NaN sorts last."""
    if value is None or math.isnan(value):
        return math.inf
    return -value if direction == "maximize" else value


def prefer_ranking(
    rows: Sequence[FrontRow],
    metric: str,
    direction: str,
    objectives: Sequence[str],
    directions: Sequence[str],
) -> list[tuple[FrontRow, float]]:
    """Rows best first on ``metric``; ties by the other objectives, then trial number."""
    tie = [(n, d) for n, d in zip(objectives, directions, strict=True) if n != metric]

    def key(row: FrontRow) -> tuple[float, ...]:
        return (
            _better_key(value_of(row, metric), direction),
            *(_better_key(value_of(row, n), d) for n, d in tie),
            float(row.trial),
        )

    ordered = sorted(rows, key=key)
    return [(r, _nan(value_of(r, metric))) for r in ordered]


def knee_distances(
    rows: Sequence[FrontRow],
    objectives: Sequence[str],
    directions: Sequence[str],
    scale: Sequence[FrontRow] | None = None,
) -> dict[int, float]:
    """Distance of each row to the ideal point after scaling every objective to [0, 1].

    For objective j, ``u_j = (v - worst_j) / (best_j - worst_j)``, best and worst in the
    objective's own direction over ``scale`` (default: ``rows``; ``u_j = 1`` when they are all
    equal). The distance is ``sqrt(sum_j (1 - u_j)^2 / n_objectives)``, in [0, 1] for rows
    within the scale.

    Returns:
        Trial number -> distance (lower is better).
    """
    scale = rows if scale is None else scale
    scaled: dict[int, list[float]] = {r.trial: [] for r in rows}
    for name, direction in zip(objectives, directions, strict=True):
        values = [_nan(value_of(r, name)) for r in rows]
        finite = [v for v in (_nan(value_of(r, name)) for r in scale) if math.isfinite(v)]
        if not finite:
            for r in rows:
                scaled[r.trial].append(1.0)
            continue
        best = max(finite) if direction == "maximize" else min(finite)
        worst = min(finite) if direction == "maximize" else max(finite)
        span = abs(best - worst)
        for r, v in zip(rows, values, strict=True):
            if not math.isfinite(v):
                u = 0.0
            elif span == 0:
                u = 1.0
            else:
                u = (v - worst) / (best - worst)
            scaled[r.trial].append(u)
    k = max(1, len(objectives))
    return {t: math.sqrt(sum((1 - u) ** 2 for u in us) / k) for t, us in scaled.items()}


def knee_ranking(
    rows: Sequence[FrontRow],
    objectives: Sequence[str],
    directions: Sequence[str],
    scale: Sequence[FrontRow] | None = None,
) -> list[tuple[FrontRow, float]]:
    """Rows closest to the ideal point first (see :func:`knee_distances`); ties by trial."""
    dist = knee_distances(rows, objectives, directions, scale)
    ordered = sorted(rows, key=lambda r: (round(dist[r.trial], _TIE_DECIMALS), r.trial))
    return [(r, dist[r.trial]) for r in ordered]


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


# ----------------------------------------------------------------------------- pick


def front_of(study: optuna.Study) -> list[FrontRow]:
    """The study's Pareto front (``study.best_trials``) as rows, by trial number."""
    return front_rows(study)


def pick(
    study: optuna.Study,
    *,
    require: Sequence[str | Requirement] = (),
    prefer: str | None = None,
    knee: bool = False,
) -> Pick:
    """Choose one trial from the Pareto front of ``study`` (see the module docstring).

    Args:
        study: a codenas study (its objective names are read from its user attributes; any
            other multi-objective study works with names ``value_0``, ``value_1`` ...).
        require: requirements such as ``"val_accuracy>=0.95"`` or ``"params<=50000"``, on any
            value the trials recorded.
        prefer: choose the best candidate on this metric (``"name"``, ``"name:max"`` or
            ``"name:min"``); mutually exclusive with ``knee``.
        knee: choose the candidate closest to the ideal point (the default when ``prefer`` is
            not given).

    Returns:
        The :class:`Pick`.

    Raises:
        ConfigError: both rules, a malformed requirement, or a metric with no direction.
        UnknownNameError: a metric no front member recorded (with a "did you mean").
        NoFeasibleTrial: the front is empty, or no member meets the requirements.
    """
    if prefer is not None and knee:
        raise ConfigError("choose one rule: --prefer METRIC or --knee, not both")
    requirements = tuple(Requirement.parse(r) for r in require)
    objectives = objective_names(study)
    directions = [d.name.lower() for d in study.directions]
    front = front_of(study)
    if not front:
        raise NoFeasibleTrial(
            f"study {study.study_name!r} has no Pareto front yet: none of its "
            f"{len(study.trials)} trials is COMPLETE"
            + (" and feasible" if _has_constraints(study) else "")
            + "; run more trials with `codenas search`",
            [],
        )
    preferred = None
    if prefer is not None:
        preferred, prefer = _split_prefer(prefer)
    check_names(
        [r.metric for r in requirements] + ([preferred] if preferred else []),
        front,
        study.study_name,
        [f"--require {t!r}" if isinstance(t, str) else "" for t in require]
        + ([f"--prefer {prefer!r}"] if preferred else []),
    )

    direction = None if prefer is None else metric_direction(prefer, objectives, directions)

    candidates = [r for r in front if all(q.met(value_of(r, q.metric)) for q in requirements)]
    if not candidates:
        raise _no_feasible(study, front, requirements, objectives)

    if prefer is not None and preferred is not None and direction is not None:
        ranking = prefer_ranking(candidates, preferred, direction, objectives, directions)
        best, score = ranking[0]
        tie_names = [n for n in objectives if n != preferred]
        ties = [r for r, s in ranking[1:] if s == score]
        source = (
            "the study's objective direction"
            if ":" not in prefer and preferred in objectives
            else ("as asked" if ":" in prefer else "the metric's registered direction")
        )
        reason = (
            f"rule prefer: the best {preferred} ({_word(direction)}, {source}) among "
            f"{len(candidates)} candidate(s); equal values are broken by "
            + ", ".join(
                f"{n} ({_word(d)})"
                for n, d in zip(objectives, directions, strict=True)
                if n in tie_names
            )
            + (", " if tie_names else "")
            + "then the lower trial number"
            + (f" ({len(ties)} tie(s) on {preferred} were broken so)" if ties else "")
        )
        return Pick(
            best,
            PREFER,
            reason,
            preferred,
            direction,
            score,
            requirements,
            front,
            ranking,
            objectives,
            directions,
        )

    ranking = knee_ranking(candidates, objectives, directions, scale=front)
    best, score = ranking[0]
    if len(objectives) == 1:
        reason = (
            f"rule knee: a single objective, so the knee is the best {objectives[0]} "
            f"({_word(directions[0])}) among {len(candidates)} candidate(s)"
        )
    else:
        default = "" if knee else " (the default; --prefer METRIC chooses by one metric)"
        reason = (
            f"rule knee{default}: each objective scaled to [0, 1] over the Pareto front "
            f"({len(front)} members), 1 = best in its own direction; the pick is the one of "
            f"the {len(candidates)} candidate(s) closest to the ideal point "
            f"where all are 1 (distance {score:.3f}, 0 = best on every objective, 1 = worst); "
            "equal distances go to the lower trial number"
        )
    return Pick(
        best, KNEE, reason, None, None, score, requirements, front, ranking, objectives, directions
    )


def _word(direction: str) -> str:
    return "higher is better" if direction == "maximize" else "lower is better"


def _has_constraints(study: optuna.Study) -> bool:
    return any(t.constraints for t in study.get_trials(deepcopy=False))


def _no_feasible(
    study: optuna.Study,
    front: list[FrontRow],
    requirements: Sequence[Requirement],
    objectives: Sequence[str],
) -> NoFeasibleTrial:
    import optuna

    scored = sorted(
        ((r, sum(q.relative_miss(value_of(r, q.metric)) for q in requirements)) for r in front),
        key=lambda pair: (pair[1], pair[0].trial),
    )
    closest = scored[:5]
    lines = [
        f"no trial on the Pareto front of study {study.study_name!r} ({len(front)} trial(s)) "
        f"meets {' and '.join(map(str, requirements))}. Closest, by total relative shortfall:"
    ]
    for row, _total in closest:
        misses = []
        for q in requirements:
            value = value_of(row, q.metric)
            if q.met(value):
                continue
            shown = "missing" if value is None else format_number(value)
            by = q.miss(value)
            rel = f", {100 * q.relative_miss(value):.1f}%" if math.isfinite(by) else ""
            misses.append(
                f"{q.metric} = {shown} (needs {q.op} {format_number(q.bound)}, "
                f"misses by {format_number(by)}{rel})"
            )
        lines.append(f"  trial {row.trial}: " + "; ".join(misses))
    in_front = {r.trial for r in front}
    names = objective_names(study)
    off_front = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.number in in_front:
            continue
        row = row_of(t, names)
        if all(q.met(value_of(row, q.metric)) for q in requirements):
            off_front.append(t.number)
    if off_front:
        shown = ", ".join(map(str, off_front[:10])) + (" ..." if len(off_front) > 10 else "")
        lines.append(
            f"{len(off_front)} trial(s) off the front do meet them ({shown}); they are dominated "
            f"on the objectives ({', '.join(objectives)}), so a pick never chooses them."
        )
    lines.append("Loosen a requirement, or run more trials with `codenas search`.")
    return NoFeasibleTrial("\n".join(lines), closest)


def format_values(row: FrontRow, names: Sequence[str]) -> str:
    """``"val_accuracy=0.9611 capacity_usage=0.61 params=12345"``."""
    return "  ".join(f"{n}={format_number(value_of(row, n))}" for n in names)
