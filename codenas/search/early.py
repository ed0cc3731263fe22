"""Multi-objective early stopping: stop a trial whose partial objectives are already dominated.

Optuna's pruners are single-objective: ``trial.report`` raises in a multi-objective study. codenas
prunes on its own, at *checkpoints*: the end of each epoch of the brief training from
``warmup_epochs`` to the last but one (after the last epoch there is no training left to save).

1. The trial's *partial objective vector* is read: the objectives that are cheap to measure
   after an epoch (validation metrics, ``params``, ``early_score`` and the cheap coding metrics
   of :data:`CHECKPOINT_METRICS`; expensive ones such as ``dci_forest`` are left out), or the
   metrics named in ``search.early_stopping.metrics``.
2. It is compared with the *completed* trials' vectors **at the same epoch** (each trial
   stores its checkpoints in the user attribute ``"checkpoints"``:
   ``{"<epoch>": {metric: value}}``, so workers sharing a storage compare with each other's
   trials).
3. If at least ``min_trials`` completed trials have that checkpoint and at least
   ``dominated_share`` of them Pareto-dominate the trial there (no worse on every metric,
   better on one), the trial stops: its ``prune_reason`` user attribute says why, and
   ``optuna.TrialPruned`` marks it PRUNED (the MLflow tracker ends its run KILLED with the tag
   ``codenas.prune_reason``).

The rule itself is the pure function :func:`decide` over plain dicts, testable on hand-made
tables. The completed trials are read from the storage once per trial (at its first comparison),
which keeps the cost to one query per trial.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from codenas.config.objectives import (  # noqa: F401  (re-exported: part of this API)
    CHECKPOINT_METRICS,
    RUN_AT_CHECKPOINT,
    check_checkpoint_metric,
)

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config

CHECKPOINTS_ATTR = "checkpoints"


def checkpoint_directions(config: Config) -> dict[str, str]:
    """The metrics compared at checkpoints and their directions (``maximize``/``minimize``).

    Default: the objectives found in :data:`CHECKPOINT_METRICS`, with the objectives'
    directions. Named metrics that are not objectives take their registered direction.
    """
    from codenas.metrics import get_metric

    objectives = {o.metric: str(o.direction) for o in config.objectives}
    es = config.search.early_stopping
    names = (
        es.metrics if es.metrics is not None else [m for m in objectives if m in CHECKPOINT_METRICS]
    )
    out: dict[str, str] = {}
    for name in names:
        direction = objectives.get(name) or get_metric(name).direction
        if direction is None:
            raise ValueError(
                f"search.early_stopping.metrics: {name!r} has no better direction; make it an "
                "objective with a direction, or leave it out"
            )
        out[name] = direction
    return out


def check_early_stopping(config: Config) -> None:
    """Refuse an enabled early stopping that would compare nothing that changes in training."""
    from codenas.errors import ConfigError

    if not config.search.early_stopping.enabled:
        return
    try:
        directions = checkpoint_directions(config)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not [n for n in directions if n != "params"]:
        raise ConfigError(
            "search.early_stopping: no objective can be read at a checkpoint (only params, "
            "which training does not change); add search.early_stopping.metrics, e.g. "
            "[val_accuracy, params], or set enabled: false"
        )


# ----------------------------------------------------------------------------- the rule


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` Pareto-dominates ``b``, both oriented so that higher is better."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def _oriented(values: Mapping[str, float], directions: Mapping[str, str]) -> list[float] | None:
    out = []
    for name, direction in directions.items():
        if name not in values:
            return None
        v = float(values[name])
        out.append(v if direction == "maximize" else -v)
    return out


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome of one checkpoint comparison.

    Attributes:
        stop: whether the trial is stopped.
        dominated_by: completed trials that dominate it at this checkpoint.
        compared: completed trials with a value at this checkpoint.
        reason: one line for ``prune_reason`` (empty unless ``stop``).
    """

    stop: bool
    dominated_by: int
    compared: int
    reason: str = ""


def decide(
    current: Mapping[str, float],
    completed: Sequence[Mapping[str, float]],
    directions: Mapping[str, str],
    *,
    dominated_share: float,
    min_trials: int,
) -> Decision:
    """Stop a trial whose checkpoint vector enough completed trials dominate at that checkpoint.

    Args:
        current: the trial's values at the checkpoint, ``{metric: value}``.
        completed: the completed trials' values at the same checkpoint; a row lacking a metric
            or holding a NaN is left out.
        directions: ``{metric: "maximize" | "minimize"}``, the metrics compared.
        dominated_share: stop when at least this share of the compared rows dominate, in (0, 1].
        min_trials: compare only with at least this many rows.

    Returns:
        A :class:`Decision`. A NaN in ``current`` counts as the worst value.
    """
    if not 0.0 < dominated_share <= 1.0:
        raise ValueError(f"`0 < dominated_share <= 1` must hold, got {dominated_share=}")
    me = _oriented(current, directions)
    if me is None:
        missing = [n for n in directions if n not in current]
        raise ValueError(f"the checkpoint lacks {', '.join(missing)}")
    me = [-math.inf if math.isnan(v) else v for v in me]
    rows = [r for r in (_oriented(c, directions) for c in completed) if r is not None]
    rows = [r for r in rows if not any(math.isnan(v) for v in r)]
    k = sum(dominates(r, me) for r in rows)
    n = len(rows)
    if n < min_trials or k < dominated_share * n:
        return Decision(False, k, n)
    shown = ", ".join(f"{m}={current[m]:.4g} ({d[:3]})" for m, d in directions.items())
    return Decision(
        True,
        k,
        n,
        f"dominated by {k} of {n} completed trials ({k / n:.0%} >= {dominated_share:.0%}) "
        f"at the same checkpoint: {shown}",
    )


# ----------------------------------------------------------------------------- in a trial


class CheckpointMonitor:
    """The epoch callback of one trial: records its checkpoints and stops it when dominated.

    Args:
        config: the search config (``search.early_stopping``, objectives, ``train.epochs``).
        trial: the running Optuna trial; its study's completed trials are the reference.
    """

    def __init__(self, config: Config, trial: optuna.Trial) -> None:
        self.es = config.search.early_stopping
        self.directions = checkpoint_directions(config)
        self.last_epoch = config.train.epochs
        self.trial = trial
        self.checkpoints: dict[int, dict[str, float]] = {}
        self.started = time.perf_counter()  # created just before training starts
        self._reference: list[dict[str, dict[str, float]]] | None = None

    @property
    def epochs(self) -> range:
        """The epochs at which a trial is compared (and its checkpoint metrics measured)."""
        return range(self.es.warmup_epochs, self.last_epoch)

    @property
    def coding_metrics(self) -> list[str]:
        """What the Evaluator must measure on the activations at each checkpoint."""
        return [n for n in self.directions if n not in RUN_AT_CHECKPOINT]

    def table(self) -> dict[str, dict[str, float]]:
        """The checkpoints as stored on the trial: ``{"<epoch>": {metric: value}}``."""
        return {str(e): v for e, v in sorted(self.checkpoints.items())}

    def _completed(self) -> list[dict[str, dict[str, float]]]:
        if self._reference is None:
            import optuna

            trials = self.trial.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            self._reference = [t.user_attrs.get(CHECKPOINTS_ATTR) or {} for t in trials]
        return self._reference

    def __call__(self, epoch: int, values: Mapping[str, float]) -> None:
        import optuna

        if epoch not in self.epochs:
            return
        point = {n: float(values[n]) for n in self.directions if n in values}
        self.checkpoints[epoch] = point
        reference = [t[str(epoch)] for t in self._completed() if str(epoch) in t]
        decision = decide(
            point,
            reference,
            self.directions,
            dominated_share=self.es.dominated_share,
            min_trials=self.es.min_trials,
        )
        if decision.stop:
            reason = f"early stopping at epoch {epoch}/{self.last_epoch}: {decision.reason}"
            self.trial.set_user_attr(CHECKPOINTS_ATTR, self.table())
            self.trial.set_user_attr("prune_reason", reason)
            partial: dict[str, Any] = {k: float(v) for k, v in values.items()}
            partial["epochs"] = float(epoch)
            partial["time/train"] = time.perf_counter() - self.started  # checkpoints included
            self.trial.set_user_attr("metrics", partial)
            raise optuna.TrialPruned(reason)
