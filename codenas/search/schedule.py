"""Multi-fidelity search over epochs: asynchronous successive halving for several objectives.

``search.schedule: {min_epochs: 1, eta: 3}`` trains every trial to *rungs* at ``min_epochs *
eta**k`` epochs (1, 3, 9, ...) below ``train.epochs``, which is the top rung: the budget of a
trial promoted all the way. At each rung below the top a trial goes on only if it ranks in the
top ``1/eta`` of the trials that reached that rung, as in MO-ASHA (Schmucker et al. 2021, the
"stopping" variant of ASHA, Li et al. 2020); otherwise it stops there, PRUNED, with its values
at that rung kept. A promoted trial trains on in the same process, from where it is: nothing
is re-trained. Optuna's own pruners are single-objective (``trial.report`` raises in a
multi-objective study); this follows their rung arithmetic (:class:`optuna.pruners.
SuccessiveHalvingPruner`) with a multi-objective ranking:

1. **What is compared** at a rung: the objectives that can be read after an epoch
   (:data:`~codenas.config.objectives.CHECKPOINT_METRICS`: validation metrics, ``params``,
   ``early_score`` and the cheap coding metrics, measured on the model as it is at that epoch),
   or ``search.schedule.metrics``.
2. **Who is compared**: every trial of the study, in any state and from any worker or machine,
   that recorded values at that rung (the user attribute ``rungs``: ``{"<epoch>": {metric:
   value}}``), the trial itself included. A trial writes its values *before* it reads the
   others', so the decision is a pure function of what the storage holds at that moment.
3. **The order**: non-dominated sorting (:func:`moocore.pareto_rank`), then, within a front,
   NSGA-II's crowding distance, larger first (Deb et al. 2002: the ends of a front and
   isolated points first, which keeps the front spread), then the lower trial number (the
   earlier trial). A value that is NaN puts its trial after every finite one.
4. **How many go on**: of the ``n`` trials at the rung, ``max(1, floor(n / eta))`` (Optuna's
   ``SuccessiveHalvingPruner``: ``n // eta``, and the first alone while ``n < eta``), except
   that while fewer than ``min_trials`` (default ``eta``) trials have reached a rung every
   trial goes on: a stopping rule with nothing to compare with stops nothing.

A stopped trial's ``prune_reason`` says where it stood (``"schedule: stopped at rung 0 (epoch
1 of 10): 7th of 9 at that rung, the top 3 go on"``), its ``metrics`` are its values at that
rung, and its user attribute ``rung`` (MLflow tag ``codenas.rung``) is the rung it reached; a
trial that completed reached the top rung. Only completed trials have objective values in
Optuna, so the Pareto front (``study.best_trials``) compares trials trained the same full
``train.epochs``; the trials stopped lower are ranked beside it, within their rung
(:func:`rung_front`, ``codenas front --rung K``), never mixed into it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from codenas.config.objectives import (  # noqa: F401  (re-exported: part of this API)
    CHECKPOINT_METRICS,
    RUN_AT_CHECKPOINT,
    check_checkpoint_metric,
)
from codenas.neuralcode.pareto import (  # noqa: F401  (crowding_distance: re-exported)
    crowding_distance,
    pareto_order,
)

if TYPE_CHECKING:
    import optuna

    from codenas.config.models import ScheduleConfig
    from codenas.search.pareto import FrontRow

RUNGS_ATTR = "rungs"  # {"<epoch>": {metric: value}}: the trial's values at each rung it reached
RUNG_ATTR = "rung"  # the index of the highest rung the trial reached


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """The rungs' epochs: ``min_epochs * eta**k`` below ``epochs``, then ``epochs`` (the top).

    >>> rung_epochs(1, 3, 10)
    [1, 3, 9, 10]
    """
    if min_epochs < 1 or eta < 2 or epochs < 1:
        raise ValueError(
            "`min_epochs >= 1, eta >= 2, epochs >= 1` must hold, got "
            f"{min_epochs=}, {eta=}, {epochs=}"
        )
    out = []
    r = min_epochs
    while r < epochs:
        out.append(r)
        r *= eta
    return [*out, epochs]


def compared_metrics(
    objectives: Mapping[str, str], metrics: Sequence[str] | None
) -> dict[str, str]:
    """The metrics compared at a rung and their directions (``maximize``/``minimize``).

    Args:
        objectives: ``{objective: direction}``, in objective order.
        metrics: ``search.schedule.metrics``; ``None``: the objectives found in
            :data:`CHECKPOINT_METRICS`. A named metric that is not an objective takes its
            registered direction.

    Raises:
        ValueError: a named metric with no better direction, or nothing compared but
            ``params`` (which training does not change).
    """
    from codenas.metrics import get_metric

    names = metrics if metrics is not None else [m for m in objectives if m in CHECKPOINT_METRICS]
    out: dict[str, str] = {}
    for name in names:
        direction = objectives.get(name) or get_metric(name).direction
        if direction is None:
            raise ValueError(
                f"search.schedule.metrics: {name!r} has no better direction; make it an "
                "objective with a direction, or leave it out"
            )
        out[name] = direction
    if not [n for n in out if n != "params"]:
        raise ValueError(
            "search.schedule: no objective can be read at a rung (only params, which training "
            "does not change); add search.schedule.metrics, e.g. [val_accuracy, params], or "
            "set search.schedule: null"
        )
    return out


def check_schedule(
    schedule: ScheduleConfig | None, objectives: Mapping[str, str], epochs: int
) -> None:
    """Refuse a schedule that has no rung to decide at, or nothing to compare there.

    Raises:
        ConfigError: naming the key.
    """
    from codenas.errors import ConfigError

    if schedule is None:
        return
    if schedule.min_epochs >= epochs:
        raise ConfigError(
            f"search.schedule.min_epochs: the first rung must come before the last epoch "
            f"(train.epochs={epochs}), got {schedule.min_epochs}; lower it, or raise "
            "train.epochs"
        )
    try:
        compared_metrics(objectives, schedule.metrics)
    except ValueError as err:
        raise ConfigError(str(err)) from None


# ----------------------------------------------------------------------------- the rule


def order_at_rung(rows: Mapping[int, Sequence[float]]) -> list[int]:
    """The trials of one rung, best first (see the module docstring, step 3).

    Args:
        rows: ``{trial number: values}``, every value oriented so that higher is better.

    Returns:
        The trial numbers: by Pareto rank, then crowding distance (larger first) within the
        rank, then trial number; trials with a NaN value last, by trial number.
    """
    numbers = sorted(rows)
    finite = [t for t in numbers if all(math.isfinite(v) for v in rows[t])]
    rest = [t for t in numbers if t not in set(finite)]
    if not finite:
        return rest
    points = np.array([rows[t] for t in finite], dtype=float)
    # finite is sorted by trial number, so pareto_order's last key (position) is the number
    return [finite[i] for i in pareto_order(points, maximise=True)] + rest


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome of one trial at one rung.

    Attributes:
        promote: whether the trial goes on training.
        position: its place in :func:`order_at_rung` (0: first).
        keep: how many of the ``compared`` trials go on.
        compared: the trials at the rung, the trial itself included.
    """

    promote: bool
    position: int
    keep: int
    compared: int


def keep_count(n: int, eta: int) -> int:
    """How many of ``n`` trials at a rung go on: ``n // eta``, at least one (Optuna's
    ``SuccessiveHalvingPruner`` arithmetic)."""
    return max(1, n // eta)


def decide(
    trial: int, rows: Mapping[int, Sequence[float]], *, eta: int, min_trials: int
) -> Decision:
    """Whether ``trial`` goes on from a rung where ``rows`` (itself included) are known.

    Args:
        trial: the trial's number; it must be in ``rows``.
        rows: ``{trial number: values at the rung}``, oriented so that higher is better.
        eta: the reduction factor (``search.schedule.eta``).
        min_trials: below this many trials at the rung, every trial goes on.
    """
    if trial not in rows:
        raise ValueError(f"trial {trial} has no values at this rung")
    order = order_at_rung(rows)
    n = len(order)
    position = order.index(trial)
    keep = keep_count(n, eta)
    if n < min_trials:
        return Decision(True, position, n, n)
    return Decision(position < keep, position, keep, n)


def oriented(values: Mapping[str, float], directions: Mapping[str, str]) -> list[float] | None:
    """``values`` of the compared metrics, negated where lower is better; ``None`` if one is
    missing. NaN stays NaN (ranked last)."""
    out = []
    for name, direction in directions.items():
        if name not in values:
            return None
        v = float(values[name])
        out.append(v if direction == "maximize" else -v)
    return out


def rung_rows(
    trials: Sequence[optuna.trial.FrozenTrial], epoch: int, directions: Mapping[str, str]
) -> dict[int, list[float]]:
    """``{trial number: oriented values}`` of every trial that recorded values at ``epoch``."""
    key = str(epoch)
    out: dict[int, list[float]] = {}
    for t in trials:
        point = (t.user_attrs.get(RUNGS_ATTR) or {}).get(key)
        row = oriented(point, directions) if isinstance(point, Mapping) else None
        if row is not None:
            out[t.number] = row
    return out


def decide_in_storage(
    study: optuna.Study,
    trial: int,
    epoch: int,
    directions: Mapping[str, str],
    *,
    eta: int,
    min_trials: int,
) -> Decision:
    """:func:`decide` for ``trial`` at the rung ``epoch``, from what the storage holds now."""
    rows = rung_rows(study.get_trials(deepcopy=False), epoch, directions)
    return decide(trial, rows, eta=eta, min_trials=min_trials)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ----------------------------------------------------------------------------- in a trial


class RungMonitor:
    """The epoch callback of one trial: records its values at each rung, stops it there unless
    it ranks in the top ``1/eta`` of the trials at that rung.

    Args:
        schedule: ``search.schedule``.
        directions: the compared metrics (:func:`compared_metrics`).
        epochs: ``train.epochs``, the top rung.
        trial: the running Optuna trial.
    """

    def __init__(
        self,
        schedule: ScheduleConfig,
        directions: Mapping[str, str],
        epochs: int,
        trial: optuna.Trial,
    ) -> None:
        self.eta = schedule.eta
        self.min_trials = schedule.min_trials if schedule.min_trials is not None else schedule.eta
        self.directions = dict(directions)
        self.rungs = rung_epochs(schedule.min_epochs, schedule.eta, epochs)
        self.trial = trial
        self.values: dict[int, dict[str, float]] = {}
        self.started = time.perf_counter()  # created just before training starts

    @property
    def epochs(self) -> list[int]:
        """The epochs at which a trial is compared (and its coding metrics measured there)."""
        return self.rungs[:-1]

    @property
    def top(self) -> int:
        """The index of the top rung (``train.epochs``)."""
        return len(self.rungs) - 1

    @property
    def coding_metrics(self) -> list[str]:
        """What the Evaluator must measure on the activations at each rung."""
        return [n for n in self.directions if n not in RUN_AT_CHECKPOINT]

    def table(self) -> dict[str, dict[str, float]]:
        """The rungs as stored on the trial: ``{"<epoch>": {metric: value}}``."""
        return {str(e): v for e, v in sorted(self.values.items())}

    def record(self, rung: int, epoch: int, values: Mapping[str, float]) -> None:
        """Store the trial's values at ``rung`` (the storage is where the others read them)."""
        self.values[epoch] = {n: float(values[n]) for n in self.directions if n in values}
        self.trial.set_user_attr(RUNGS_ATTR, self.table())
        self.trial.set_user_attr(RUNG_ATTR, rung)

    def finish(self, metrics: Mapping[str, float]) -> None:
        """A trial that completed reached the top rung: record its final values there."""
        self.record(self.top, self.rungs[-1], metrics)

    def __call__(self, epoch: int, values: Mapping[str, float]) -> None:
        import optuna

        if epoch not in self.epochs:
            return
        rung = self.rungs.index(epoch)
        self.record(rung, epoch, values)
        rows = rung_rows(self.trial.study.get_trials(deepcopy=False), epoch, self.directions)
        mine = oriented(self.values[epoch], self.directions)
        if mine is None:
            missing = [n for n in self.directions if n not in self.values[epoch]]
            raise ValueError(f"the rung at epoch {epoch} lacks {', '.join(missing)}")
        rows[self.trial.number] = mine  # its own values as measured, whatever the read saw
        decision = decide(self.trial.number, rows, eta=self.eta, min_trials=self.min_trials)
        if decision.promote:
            return
        shown = ", ".join(f"{m}={values[m]:.4g}" for m in self.directions)
        reason = (
            f"schedule: stopped at rung {rung} (epoch {epoch} of {self.rungs[-1]}): "
            f"{_ordinal(decision.position + 1)} of {decision.compared} trials at that rung, "
            f"the top {decision.keep} go on ({shown})"
        )
        self.trial.set_user_attr("prune_reason", reason)
        partial: dict[str, Any] = {k: float(v) for k, v in values.items()}
        partial["epochs"] = float(epoch)
        partial["time/train"] = time.perf_counter() - self.started  # rung measurements included
        self.trial.set_user_attr("metrics", partial)
        raise optuna.TrialPruned(reason)


# ----------------------------------------------------------------------------- after a search


def rung_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The rung a trial reached (user attribute ``rung``), ``None`` without a schedule."""
    value = trial.user_attrs.get(RUNG_ATTR)
    return None if value is None else int(value)


def rung_counts(study: optuna.Study) -> dict[int, int]:
    """``{rung: trials stopped there}`` over the study's PRUNED trials that reached a rung."""
    out: dict[int, int] = {}
    for t in study.get_trials(deepcopy=False):
        r = rung_of(t)
        if r is not None and t.state.name == "PRUNED":
            out[r] = out.get(r, 0) + 1
    return dict(sorted(out.items()))


def rungs_of_study(study: optuna.Study) -> tuple[list[int], dict[str, str]] | None:
    """The rungs' epochs and the compared metrics of a study's stored config; ``None`` for a
    study searched without a schedule."""
    from codenas.search.storage import stored_config

    config = stored_config(study)
    schedule = config.search.schedule
    if schedule is None:
        return None
    objectives = {o.metric: str(o.direction) for o in config.objectives}
    epochs = rung_epochs(schedule.min_epochs, schedule.eta, config.train.epochs)
    return epochs, compared_metrics(objectives, schedule.metrics)


def rung_front(study: optuna.Study, rung: int) -> list[FrontRow]:
    """The trials non-dominated at ``rung`` among all that reached it (whatever happened to
    them after), with their values there: the compared metrics only, at the same epochs.

    Raises:
        ConfigError: the study ran without a schedule, or has no such rung.
    """
    import moocore

    from codenas.errors import ConfigError
    from codenas.search.pareto import objective_names, row_of

    found = rungs_of_study(study)
    if found is None:
        raise ConfigError(f"study {study.study_name!r} was searched without search.schedule")
    epochs, directions = found
    if not 0 <= rung < len(epochs):
        raise ConfigError(
            f"--rung: study {study.study_name!r} has rungs 0..{len(epochs) - 1} "
            f"(epochs {', '.join(map(str, epochs))}), got {rung}"
        )
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    rows = {
        n: v
        for n, v in rung_rows(list(trials.values()), epochs[rung], directions).items()
        if all(math.isfinite(x) for x in v)
    }
    if not rows:
        return []
    numbers = sorted(rows)
    keep = moocore.is_nondominated(np.array([rows[n] for n in numbers]), maximise=True)
    names = objective_names(study)
    out = []
    for n, member in zip(numbers, keep, strict=True):
        if not member:
            continue
        row = row_of(trials[n], names)
        at = trials[n].user_attrs[RUNGS_ATTR][str(epochs[rung])]
        values = {k: float(at[k]) for k in [*names, *directions] if k in at}
        out.append(dataclasses.replace(row, values=values, rung=rung))
    return out
