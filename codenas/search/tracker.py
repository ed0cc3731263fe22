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

:func:`codenas.search.run` opens a tracker class's instance on a thread from the first trial's
start (:class:`DeferredTracker`): ``trial_started`` and ``set_parent_status`` are queued until
it exists, every other call waits for it, and an error met while opening stops the search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from codenas.registry import Registry

_log = logging.getLogger(__name__)

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
    config: Config,
    study: optuna.Study,
    *,
    created: bool,
    name: str = DEFAULT_TRACKER,
    background: bool = False,
) -> Tracker | None:
    """The tracker ``name`` for ``study``, or ``None`` when ``tracking.enabled`` is false.

    ``background``: return a :class:`DeferredTracker` that opens it on a thread once started
    (for a factory that declares its ``trial_attrs``, as a tracker class does).
    """
    if not config.tracking.enabled:
        return None
    if name not in TRACKERS:
        _load_plugins()
    factory = TRACKERS.get(name)
    # A factory that does not declare its trial_attrs (a plain function) is opened at once:
    # the stale-trial handler needs them before the tracker exists.
    attrs = getattr(factory, "trial_attrs", None)
    if background and attrs is not None:
        return DeferredTracker(lambda: factory(config, study, created=created), tuple(attrs))
    return factory(config, study, created=created)


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


class TrackerStartFailed(Exception):
    """A tracker opened in the background (:class:`DeferredTracker`) failed to open; ``error``
    is what its factory raised (the search stops with it, as if it had been raised at once)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class DeferredTracker:
    """A tracker opened on a thread beside the first trial's training.

    Opening MLflow's tracker (importing MLflow, opening or creating its store, creating the
    parent run) costs about a second in front of a search whose first trial does not need it
    until it has results. This wrapper runs ``open_tracker`` on a thread from :meth:`start`:
    ``trial_started`` and ``set_parent_status`` calls made meanwhile are queued and replayed,
    in order, on that thread as soon as the tracker exists (so a run is opened as early as the
    tracker allows); every other call (``log_metrics`` before a trial's values are returned,
    the Optuna callback, the end-of-search steps) waits for it first. What the tracker would
    have raised while opening (a bad URI, an unreachable server) is raised there, wrapped in
    :class:`TrackerStartFailed`, and ``down`` is then true. A kill before the tracker opened
    leaves trials without runs, which the next ``reconcile`` opens and ends (as for a process
    killed between sampling and ``trial_started``).

    Args:
        open_tracker: makes the tracker (called once, on the thread).
        trial_attrs: the tracker class's ``trial_attrs`` (known before it exists).
    """

    def __init__(self, open_tracker: Callable[[], Tracker], trial_attrs: tuple[str, ...]) -> None:
        import threading

        self.trial_attrs = trial_attrs
        self._lock = threading.Lock()
        self._queued: list[tuple[str, tuple[Any, ...]]] = []
        self._tracker: Tracker | None = None
        self._ready = False  # the tracker exists and nothing is queued: calls go straight to it
        self._error: Exception | None = None
        self._down = False
        self._thread = threading.Thread(
            target=self._open, args=(open_tracker,), name="codenas-open-tracker", daemon=True
        )

    def start(self) -> None:
        """Start opening the tracker (once; :meth:`wait` starts it too if nobody did).

        Start it where the main thread is about to train: opening it is mostly Python
        (imports), which holds the GIL, so beside the main thread's own imports it would only
        slow them down (measured: the first trial started no earlier).
        """
        with self._lock:
            if self._thread.ident is None:
                self._thread.start()

    def _open(self, open_tracker: Callable[[], Tracker]) -> None:
        try:
            self._tracker = open_tracker()
            while True:
                with self._lock:
                    if not self._queued:
                        self._ready = True
                        return
                    name, args = self._queued.pop(0)
                self._replay(name, args)
        except Exception as err:  # raised to the search where it next waits for the tracker
            self._error = err

    def _replay(self, name: str, args: tuple[Any, ...]) -> None:
        from codenas.errors import TrackingUnavailable

        assert self._tracker is not None
        if name == "trial_started" and not _still_running(args[0]):
            # It ended (interrupted, failed or pruned) before the tracker opened: reconcile,
            # here or in another worker, opens and ends its run, once (it looks for one by its
            # tags first); opening one here too could race that and log the trial twice.
            return
        try:
            getattr(self._tracker, name)(*args)
        except TrackingUnavailable:
            raise
        except Exception as err:
            if name != "trial_started":
                raise
            # The trial may have ended (failed or pruned) before the tracker opened, so its
            # attributes can no longer be written: its run is ended (or opened) by the
            # tracker's callback and reconcile, as for a trial_started that failed at once.
            _log.debug("trial_started replayed late: %s: %s", type(err).__name__, err)

    def _defer(self, name: str, *args: Any) -> None:
        with self._lock:
            if not self._ready and self._error is None:
                self._queued.append((name, args))
                return
        getattr(self.wait(), name)(*args)

    def wait(self) -> Tracker:
        """The tracker, once opened and every queued call replayed; raises
        :class:`TrackerStartFailed` if opening it (or a queued call) failed."""
        self.start()
        self._thread.join()
        if self._error is not None:
            self._down = True
            raise TrackerStartFailed(self._error) from self._error
        assert self._tracker is not None
        return self._tracker

    @property
    def down(self) -> bool:
        if self._down or self._error is not None:
            return True
        return bool(self._tracker.down) if self._ready and self._tracker is not None else False

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value
        if self._ready and self._tracker is not None:
            self._tracker.down = value

    def trial_started(self, trial: optuna.Trial, spec: Spec | None, retry_of: int | None) -> None:
        self._defer("trial_started", trial, spec, retry_of)

    def set_parent_status(self, status: str) -> None:
        self._defer("set_parent_status", status)

    def log_metrics(self, trial: optuna.Trial, metrics: dict[str, float]) -> None:
        self.wait().log_metrics(trial, metrics)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.wait()(study, trial)

    def flush(self) -> None:
        flush = getattr(self.wait(), "flush", None)
        if flush is not None:
            flush()

    def trial_killed(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.wait().trial_killed(study, trial)

    def finish_study(self, status: str, totals: Mapping[str, float]) -> None:
        self.wait().finish_study(status, totals)

    def reconcile(self) -> Any:
        return self.wait().reconcile()

    def update_front(self, study: optuna.Study, *, final: bool = False) -> None:
        self.wait().update_front(study, final=final)


def _still_running(trial: optuna.Trial) -> bool:
    """Whether ``trial`` is RUNNING in its storage now."""
    import optuna

    running = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return any(t.number == trial.number for t in running)
