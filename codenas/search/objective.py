"""The Optuna objective of a codenas search (the budget workers share: search/budget.py)."""

from __future__ import annotations

import logging
import math
import time
import traceback
from typing import TYPE_CHECKING

from codenas.config import Config
from codenas.errors import TrackingUnavailable
from codenas.search import interrupts
from codenas.search.budget import Budget  # noqa: F401  (its home until 0.3)
from codenas.search.samplers.code import LAYERS_ATTR
from codenas.search.samplers.driver import inheritance_of
from codenas.search.storage import worker_id
from codenas.search.tracker import TrackerStartFailed
from codenas.search.weights import study_store
from codenas.spaces import Space, Spec
from codenas.training.runtime import trial_seed

if TYPE_CHECKING:
    import optuna

    from codenas.data import Dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.search.schedule import RungMonitor
    from codenas.search.tracker import Tracker

_TRACEBACK_CHARS = 4000
_log = logging.getLogger(__name__)


def retry_of(trial: optuna.Trial) -> int | None:
    """The number of the trial that ``trial`` re-runs after its worker died, if any."""
    from codenas.search._optuna_private import stored_trial
    from codenas.search.storage import retried_trial_number

    return retried_trial_number(stored_trial(trial))


class Objective:
    """The Optuna objective: sample a spec, evaluate it, log it, return the objective values.

    Any exception in sampling, building, training or the metrics is recorded on the trial
    (``fail_reason`` and ``fail_traceback`` user attributes) before Optuna marks it FAIL. The
    metrics reach MLflow before the values are returned, so a COMPLETE trial always has them
    there; if MLflow stays unreachable, the trial fails and the study is stopped (``fatal``).
    """

    def __init__(
        self,
        config: Config,
        data: Dataset,
        space: Space,
        evaluator: Evaluator,
        tracker: Tracker | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.space = space
        self.evaluator = evaluator
        self.tracker = tracker
        self.fatal: Exception | None = None
        self.last_retry: int | None = None  # the trial the last call re-ran, if a retry
        # (process CPU seconds, wall seconds) when the search loop began the next trial, before
        # Optuna's ask: the trial's cost includes the sampler's work (set by the loop).
        self.started: tuple[float, float] | None = None
        self.inheritance = inheritance_of(config)
        # Every trial keeps its trained weights (pruned to the front after each trial), so
        # reports and edits load them instead of re-training (codenas/search/weights.py).
        self.weights = (
            self.inheritance.weights
            if self.inheritance is not None
            else study_store(config, config.study.name)
        )

    def _check_static_constraints(self, trial: optuna.Trial, spec: Spec) -> None:
        """Prune a trial whose size already breaks a ``params`` constraint: no training needed."""
        import optuna
        import torch

        from codenas.spaces import build_model
        from codenas.training.loop import count_parameters

        bounds = [c for c in self.config.constraints if c.metric == "params"]
        if not bounds:
            return
        with torch.device("meta"):  # count without allocating the weights
            params = count_parameters(build_model(spec))
        broken = [c for c in bounds if c.violation(params) > 0]
        if broken:
            reason = f"infeasible before training: params={params} breaks {broken[0]}"
            trial.set_user_attr("prune_reason", reason)
            trial.set_user_attr("metrics", {"params": float(params)})
            raise optuna.TrialPruned(reason)

    def _rung_monitor(self, trial: optuna.Trial) -> RungMonitor | None:
        """The epoch callback of the multi-fidelity schedule, if ``search.schedule`` is set."""
        schedule = self.config.search.schedule
        if schedule is None:
            return None
        from codenas.search.schedule import RungMonitor, compared_metrics

        objectives = {o.metric: str(o.direction) for o in self.config.objectives}
        directions = compared_metrics(objectives, schedule.metrics)
        return RungMonitor(schedule, directions, self.config.train.epochs, trial)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        import optuna

        spec: Spec | None = None
        started, self.started = self.started, None
        cpu0, wall0 = started or (time.process_time(), time.perf_counter())
        origin = self.last_retry = retry_of(trial)
        try:
            # Before arm(): a signal that arrived between trials is raised there, and the
            # trial it interrupts must still say which worker ran it.
            trial.set_user_attr("worker", worker_id())
            interrupts.arm()  # Ctrl-C/SIGTERM raise here, where the trial records them
            spec = self.space.sample(trial, self.data.input_shape, self.data.n_outputs)
            trial.set_user_attr("spec", spec.to_dict())
            if self.tracker is not None:
                self.tracker.trial_started(trial, spec, origin)
            self._check_static_constraints(trial, spec)
            # The multi-fidelity schedule (codenas/search/schedule.py): off by default.
            monitor = self._rung_monitor(trial)
            # The code sampler's optional weight inheritance (off by default): docs/sampler.md.
            inherit = self.inheritance
            result = self.evaluator.evaluate(
                spec,
                seed=trial_seed(self.config, trial, origin),
                on_epoch_end=monitor,
                checkpoint_metrics=monitor.coding_metrics if monitor is not None else (),
                checkpoint_epochs=monitor.epochs if monitor is not None else None,
                init=inherit.initialiser(trial, spec, self.evaluator.sample_x) if inherit else None,
            )
            if self.weights is not None:
                self.weights.save(trial, result.train.model)
            metrics = result.metrics
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr(LAYERS_ATTR, result.code_layers)  # what CodeSampler reads
            if monitor is not None:
                monitor.finish(metrics)  # it reached the top rung
            for constraint in self.config.constraints:
                trial.set_constraint(
                    str(constraint), constraint.violation(metrics[constraint.metric])
                )
            values = tuple(float(metrics[name]) for name in self.config.objective_names)
            bad = [
                n
                for n, v in zip(self.config.objective_names, values, strict=True)
                if not math.isfinite(v)
            ]
            if bad:
                raise ValueError(f"objective {bad[0]!r} is {metrics[bad[0]]}")
            if self.tracker is not None:
                self.tracker.log_metrics(trial, metrics)
            return values
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C or SIGTERM)")
            raise
        except (TrackingUnavailable, TrackerStartFailed) as err:
            # The tracker's backend is gone, or it never opened (a tracker opened in the
            # background raises what it met here): the search stops with that error.
            fatal = err.error if isinstance(err, TrackerStartFailed) else err
            reason = f"{type(fatal).__name__}: {fatal}"
            trial.set_user_attr("fail_reason", reason[:2000])
            if self.tracker is not None:
                self.tracker.down = True
            self.fatal = fatal
            trial.study.stop()
            raise
        except Exception as err:
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}"[:2000])
            trial.set_user_attr("fail_traceback", traceback.format_exc()[-_TRACEBACK_CHARS:])
            if self.tracker is not None and spec is None:
                try:  # a run for the trial that failed in sampling, so none is missing
                    self.tracker.trial_started(trial, None, origin)
                except Exception as track_err:
                    _log.warning(
                        "trial %d failed before its run was opened, and opening it failed too "
                        "(%s: %s); the end of the search opens it",
                        trial.number,
                        type(track_err).__name__,
                        str(track_err)[:300],
                    )
            raise
        finally:
            interrupts.disarm()
            _record_cost(trial, cpu0, wall0)


def _record_cost(trial: optuna.Trial, cpu0: float, wall0: float) -> None:
    """Record what the trial cost, from before Optuna's ask to now: ``cpu_seconds`` (this
    process's CPU time, every thread of it: torch's, the sampler's, the tracker's) and
    ``wall_seconds``. Set whatever the trial's outcome, as a pruned or failed trial cost too."""
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    try:
        trial.set_user_attr("cpu_seconds", round(cpu, 4))
        trial.set_user_attr("wall_seconds", round(wall, 4))
    except Exception as err:  # the storage went away: the trial's outcome matters more
        _log.warning("trial %d: its cost was not recorded: %s", trial.number, err)
