"""How trackers (MLflow, or your own) plug into a search without the search importing them.

A tracker follows a study as it runs: :func:`codenas.search.run` creates one per process from
a registered factory (``"mlflow"`` by default: :mod:`codenas.tracking` registers it, and
pyproject.toml declares it as an entry point of the group ``codenas.trackers``, which is how a
search finds it without importing it by name) and calls it at fixed points. The search owns
this interface; the tracking layer implements it. So the driver stays Optuna-only, and a
tracker can be tested, or replaced, on its own.

The calls, in order:

* ``trial_started(trial, spec, retry_of)`` once a trial's architecture is sampled (``spec`` is
  ``None`` if sampling failed), so a killed process leaves a record that can be ended;
* ``log_metrics(trial, metrics)`` *before* the objective returns its values, so Optuna never
  records a trial COMPLETE whose metrics did not reach the tracker;
* ``tracker(study, frozen_trial)`` as an Optuna callback once the trial has its final state;
* ``trial_killed(study, frozen_trial)`` when a dead worker's trial is failed by the heartbeat;
* ``set_parent_status("RUNNING")`` when a process starts, then ``reconcile()`` and
  ``update_front(study, final=True)`` when it ends, and ``finish_study(status, totals)`` only
  in the process that ends while no trial of the study is running any more (the last worker;
  ``totals`` from :func:`codenas.search.study.study_totals`). A failure in any of these is a
  logged warning, each step is attempted on its own.

A tracker sets ``down = True`` once its backend stayed unreachable; the search then stops with
:class:`~codenas.errors.TrackingUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from codenas.registry import Registry

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config
    from codenas.spaces import Spec


class Tracker(Protocol):
    """What :func:`codenas.search.run` calls on a tracker (see the module docstring)."""

    down: bool
    # User attributes the tracker writes on a trial (its run id): a retry of a killed trial
    # starts without them, so the killed trial's record is never attributed to the retry.
    trial_attrs: tuple[str, ...]

    def trial_started(
        self, trial: optuna.Trial, spec: Spec | None, retry_of: int | None
    ) -> None: ...

    def log_metrics(self, trial: optuna.Trial, metrics: dict[str, float]) -> None: ...

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None: ...

    # Wait for any writes the tracker does in the background, then raise the error one of
    # them met; called after the last trial and before the end-of-search steps.
    def flush(self) -> None: ...

    def trial_killed(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None: ...

    def set_parent_status(self, status: str) -> None: ...

    def finish_study(self, status: str, totals: Mapping[str, float]) -> None: ...

    def reconcile(self) -> Any: ...

    def update_front(self, study: optuna.Study, *, final: bool = False) -> None: ...


TrackerFactory = Callable[..., Tracker]
"""``factory(config, study, *, created) -> Tracker``; ``created`` is true in the one process
that created the study (it alone creates shared records such as MLflow's parent run)."""

TRACKERS: Registry[TrackerFactory] = Registry("tracker")


def register_tracker(name: str) -> Callable[[TrackerFactory], TrackerFactory]:
    """Register a tracker factory under ``name`` (decorator)."""
    return TRACKERS.register(name)


DEFAULT_TRACKER = "mlflow"


def make_tracker(
    config: Config, study: optuna.Study, *, created: bool, name: str = DEFAULT_TRACKER
) -> Tracker | None:
    """The tracker ``name`` for ``study``, or ``None`` when ``tracking.enabled`` is false."""
    if not config.tracking.enabled:
        return None
    if name not in TRACKERS:
        _load_plugins()
    return TRACKERS.get(name)(config, study, created=created)


ENTRY_POINT_GROUP = "codenas.trackers"


def _load_plugins() -> None:
    """Register the trackers that installed packages declare as entry points.

    codenas declares its own (``mlflow = "codenas.tracking.tracker:MlflowTracker"`` in
    pyproject.toml), the way pytest finds plugins: the search layer names no tracker module,
    and ``import codenas`` does not pay for MLflow until a search tracks.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in TRACKERS:
            loaded = entry.load()
            if entry.name not in TRACKERS:  # loading a class decorated with register_tracker
                TRACKERS.add(entry.name, loaded)
