"""The driver: config -> dataset -> Optuna study -> trials (-> trackers such as MLflow).

``run(config)`` is what ``codenas search`` calls (through :mod:`codenas.workflows`, which adds
the end-of-search reports). It checks the config in one pass (:func:`check_config`,
:func:`check_data`), prepares what the trials share once (:func:`prepare`: the storage, the
data, the study, the tracker), refuses a config that does not match the stored study, and runs
trials with ``study.optimize`` so that Optuna's
heartbeat marks the trial of a killed worker as failed and re-queues it once with the same
parameters. Trackers plug in through :mod:`codenas.search.tracker`; this package never
imports mlflow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from codenas.config import Config
from codenas.errors import first_line
from codenas.search import interrupts
from codenas.search.budget import Budget, deadline_for
from codenas.search.objective import Objective
from codenas.search.storage import fail_dead_workers, load_study
from codenas.search.tracker import (
    DEFAULT_TRACKER,
    DeferredTracker,
    Tracker,
    TrackerStartFailed,
)
from codenas.training.runtime import default_threads, set_threads

if TYPE_CHECKING:
    import optuna

    from codenas.data import Dataset
    from codenas.search.pareto import FrontRow
    from codenas.search.storage import StaleTrialHandler
    from codenas.spaces import Space

_log = logging.getLogger(__name__)


def sampler_seed(base: int, *salt: int) -> int:
    """A seed mixing the study seed with the trial count and worker index.

    A continued study or a second worker must not replay the random start-up draws of the
    first, which a plain ``seed`` would do.
    """
    return int(np.random.SeedSequence([base & 0xFFFFFFFF, *salt]).generate_state(1)[0])


def check_sampler(config: Config) -> None:
    """Refuse bad ``study.sampler_options`` before a study is opened or created."""
    from codenas.search.samplers.registry import get_sampler

    get_sampler(config.study.sampler).check(config.study.sampler_options)


def make_sampler(
    config: Config, seed: int, *, data: Dataset | None = None, space: Space | None = None
) -> optuna.samplers.BaseSampler:
    """The registered sampler ``study.sampler`` (:mod:`codenas.search.samplers.registry`),
    modelling only the trials built from their parameters (a right-sized or seeded trial's
    recorded ``width``/``shape`` are not its widths: :mod:`codenas.search.samplers.modelled`),
    behind the zero-cost screen ``search.screen`` when one is set (and the data is given)."""
    from codenas.search.samplers.modelled import ModelledSampler
    from codenas.search.samplers.registry import get_sampler
    from codenas.search.screen import screened

    plugin = get_sampler(config.study.sampler)
    sampler = plugin.make(seed, config.study.sampler_options, config=config, data=data, space=space)
    return screened(ModelledSampler(sampler), config.search.screen, config, data, space)


# ----------------------------------------------------------------------------- preparation
# Everything a search checks and prepares before its first trial, once per process:
# check_config runs every check that needs only the config, check_data every one that needs
# the data too, both before any study is created or any trial starts (as Lightning's
# configuration validator does before a fit), so a bad config is one error and nothing
# written. prepare() then makes what every trial shares, each once: the storage, the space,
# the data, the study, the tracker. run() and run_workers() both start from a Preparation;
# with --workers, worker 0 uses the coordinator's instead of making its own.


def check_config(config: Config) -> None:
    """The checks that need only the config: those pydantic cannot make alone because they
    cross sections or construct something (the schedule against ``train.epochs`` and the
    objectives; the sampler and its ``study.sampler_options``).

    Raises:
        ConfigError: the first problem, naming its key.
    """
    from codenas.search.schedule import check_schedule

    check_schedule(
        config.search.schedule,
        {o.metric: str(o.direction) for o in config.objectives},
        config.train.epochs,
    )
    # The sampler's plug-in checks its options by name; building it without data checks what
    # only construction finds (the code sampler's warm start, which needs the data, is
    # skipped): about a millisecond.
    check_sampler(config)
    make_sampler(config, 0)


def check_device(config: Config) -> None:
    """``train.accelerator`` and ``train.precision`` are usable on this machine (a GPU that
    is there, the packages a precision needs); ``auto`` and ``cpu`` at 32 bits always are.

    Raises:
        ConfigError: naming both keys, before any storage or study is made.
    """
    if config.train.accelerator in ("auto", "cpu") and config.train.precision in ("32-true", "32"):
        return  # the default: nothing to import ahead of the first trial
    from codenas.training.loop import make_fabric

    make_fabric(config.train)


def check_data(config: Config, data: Dataset, space: Space, *, source: str) -> None:
    """The checks that need the data: the space takes its inputs, every metric can be
    measured on it (factors it lacks, accuracy on a regression).

    Raises:
        ConfigError: the first problem.
    """
    from codenas.config.objectives import check_against_dataset
    from codenas.evaluation.evaluate import metric_names

    space.check_input(data.input_shape)
    check_against_dataset(
        metric_names(config), task=data.task, has_factors=data.has_factors, source=source
    )


@dataclasses.dataclass
class Preparation:
    """What the trials of one process share, made once by :func:`prepare`.

    Attributes:
        config: the checked config; source: where it came from, for messages.
        data: the loaded dataset; space: the search space.
        storage: the Optuna storage (with heartbeats); stale: its dead-worker handler.
        study: the opened (or created) study; created: whether this process created it.
        tracker: the study's tracker, ``None`` when ``tracking.enabled`` is false.
    """

    config: Config
    source: str
    data: Dataset
    space: Space
    storage: optuna.storages.BaseStorage
    stale: StaleTrialHandler
    study: optuna.Study
    created: bool
    tracker: Tracker | None


def prepare(
    config: Config,
    *,
    source: str = "config",
    tracker_name: str = DEFAULT_TRACKER,
    defer_tracker: bool = False,
) -> Preparation:
    """Check ``config`` (:func:`check_config`, :func:`check_data`), then open its storage,
    load its data, open or create its study and make its tracker, each once.

    ``defer_tracker``: open the tracker on a thread beside what follows (the first trial's
    training; :class:`codenas.search.tracker.DeferredTracker`).

    Raises:
        CodenasError: a bad config, dataset or storage; nothing is written (no storage file,
            no study, no run) before the checks have passed.
    """
    from codenas.data import load_dataset
    from codenas.search.storage import StaleTrialHandler, open_study, storage_for
    from codenas.search.tracker import make_tracker
    from codenas.spaces import get_space

    check_config(config)
    check_device(config)
    space = get_space(config.space.name)(config.space)
    data = load_dataset(config.data)
    check_data(config, data, space, source=source)
    # Only now is anything written (an SQLite storage's file, the study).
    stale = StaleTrialHandler(config.study.retries)
    storage = storage_for(config, stale)
    study, created = open_study(config, storage)
    if created:  # a study created anew under an old name: the weights there are not its own
        from codenas.search.weights import study_store

        store = study_store(config, config.study.name)
        if store is not None and not store.keep_all:
            store.reset()
    tracker = make_tracker(
        config, study, created=created, name=tracker_name, background=defer_tracker
    )
    if tracker is not None:
        # A dead worker's trial, failed by the heartbeat of any process, ends its run too.
        stale.hooks.append(tracker.trial_killed)
        stale.drop_attrs.update(tracker.trial_attrs)
    return Preparation(config, source, data, space, storage, stale, study, created, tracker)


@contextlib.contextmanager
def quiet_optuna(enabled: bool = True) -> Iterator[None]:
    """Optuna's log below ERROR off while inside (its per-trial lines, "A new study created"),
    as it was before when leaving."""
    if not enabled:
        yield
        return
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def run(
    config: Config,
    *,
    n_trials: int | None = None,
    progress: bool = False,
    quiet: bool = True,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    enqueue: Sequence[dict[str, Any]] = (),
    budget: Budget | None = None,
    retries_only: bool = False,
    worker_index: int = 0,
    workers: int = 1,
    source: str = "config",
    tracker_name: str = DEFAULT_TRACKER,
    prepared: Preparation | None = None,
) -> optuna.Study:
    """Run ``n_trials`` more trials of the search ``config`` (default ``study.trials``), and
    stop starting trials at ``study.timeout`` (counted from the command's start:
    :func:`codenas.search.budget.command_clock`, else from this call).

    Running the same config again continues the same study. Every trial is tracked in MLflow
    (unless ``tracking.enabled`` is false). Trials that re-run a dead worker's trial do not
    count towards ``n_trials``. The end-of-search reports are not written here:
    :func:`codenas.workflows.search` (what ``codenas search`` runs) adds them.

    Args:
        config: the validated config (see :func:`codenas.load_config`).
        n_trials: trials to add to the study; default ``config.study.trials`` (``None``
            there: no bound but the timeout).
        progress: draw codenas's progress bar on stderr.
        quiet: silence Optuna's per-trial log lines (failures still reach the progress bar,
            Optuna's trial attributes and MLflow).
        callbacks: extra Optuna callbacks, called after each trial.
        enqueue: trial parameters (``{"depth": 2, "width": 64, ...}``) to evaluate first;
            they count towards ``n_trials``.
        budget: a :class:`Budget` shared with other workers (overrides ``n_trials`` and
            the timeout: its deadline is theirs).
        retries_only: run only the trials re-queued after a worker died (WAITING), then stop.
        worker_index: index of this worker among ``workers`` on one machine (seeds, threads).
        workers: number of workers sharing the machine's cores.
        source: where the config came from, for error messages.
        tracker_name: the registered tracker (:mod:`codenas.search.tracker`) to use.
        prepared: this process's checked data, storage, study and tracker
            (:func:`codenas.search.prepare.prepare`); made here when not given.

    Returns:
        The Optuna study.

    Raises:
        CodenasError: a bad config, dataset or storage, before any training; or
            :class:`~codenas.tracking.TrackingUnavailable` if MLflow stayed unreachable.
    """
    from codenas.evaluation.evaluate import Evaluator

    if budget is None:
        n_trials = config.study.trials if n_trials is None else n_trials
        budget = Budget(n_trials, deadline_for(config.study.timeout))
    set_threads(config.train.threads or default_threads(workers))
    if prepared is None:  # every check that can fail on bad input runs here, before any work
        with quiet_optuna(quiet):
            # The tracker opens on a thread while the first trial trains (issue 21).
            prepared = prepare(config, source=source, tracker_name=tracker_name, defer_tracker=True)
    study, tracker, data, space = prepared.study, prepared.tracker, prepared.data, prepared.space
    evaluator = Evaluator(config, data, source=source, check=False)  # checked by prepare
    # Alone on a study, a search is reproducible from its seed; beside running workers (or as
    # one of several), the process id keeps this worker's draws apart from theirs.
    running = any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False))
    salt = os.getpid() if workers > 1 or running else 0
    seed = sampler_seed(config.study.seed, len(study.trials), worker_index, salt)
    study.sampler = make_sampler(config, seed, data=data, space=space)
    if progress:
        _announce(study, budget, config)
    for params in enqueue:
        study.enqueue_trial(dict(params), skip_if_exists=True)
    objective = Objective(config, data, space, evaluator, tracker)
    store = objective.weights

    bar = None
    if progress:
        from codenas.search.progress import ProgressBar

        total = None if budget.unlimited else budget.left
        bar = ProgressBar(total, config.objective_names, config.directions)
    all_callbacks = [c for c in (tracker, bar) if c is not None] + list(callbacks)
    if store is not None and not store.keep_all:
        all_callbacks.append(store.prune_to_front)
    if tracker is not None:
        tracker.set_parent_status("RUNNING")  # before any trial: a failure here stops the search
        if isinstance(tracker, DeferredTracker):
            tracker.start()  # opens it beside the first trial's training
    status = "FINISHED"
    # Ctrl-C and SIGTERM are raised inside the objective or between trials, never inside
    # Optuna's ask/tell (codenas/search/interrupts.py); later ones wait for the clean-up.
    with interrupts.search_signals():
        try:
            with quiet_optuna(quiet):
                _trials(study, objective, budget, all_callbacks, retries_only=retries_only)
            if tracker is not None and not tracker.down:
                flush_tracker(tracker)  # the last trials' background writes (a lost backend raises)
        except TrackerStartFailed as err:  # it never opened: its own error, as if raised at once
            status = "FAILED"
            raise err.error from None
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            if bar is not None:
                bar.close()
            if tracker is not None and not tracker.down:
                # A Ctrl-C leaves the interrupted trial FAIL in Optuna with its run RUNNING:
                # reconcile ends that run as KILLED before the process exits.
                wrap_up(study, tracker, status="FAILED" if objective.fatal else status)
    if objective.fatal is not None:
        raise objective.fatal
    return study


def _announce(study: optuna.Study, budget: Budget, config: Config) -> None:
    """The line before the progress bar: the trials so far and to come, the objectives."""
    import sys

    # Queued trials (a seeded or right-sized proposal, a retry) have not run yet: they are
    # among the trials to come, not the ones so far.
    queued = sum(t.state.name == "WAITING" for t in study.get_trials(deepcopy=False))
    done = len(study.trials) - queued
    first = f" ({queued} queued, run first)" if queued else ""
    more = "trials until the deadline" if budget.unlimited else f"{budget.left} more"
    if budget.deadline is not None and not budget.unlimited:
        more += " or until the deadline"
    print(
        f"study {study.study_name!r}: {done} trials so far, {more}{first}; "
        "objectives: " + ", ".join(f"{o.metric} ({o.direction})" for o in config.objectives),
        file=sys.stderr,
    )


def _trials(
    study: optuna.Study,
    objective: Objective,
    budget: Budget,
    callbacks: Sequence[Callable[..., None]],
    *,
    retries_only: bool,
) -> None:
    """Run trials while the budget (count and deadline) allows and nothing was fatal.

    One ``optimize`` call per trial: the budget is checked before each trial starts, so
    workers sharing it never overshoot, and Optuna's heartbeat still runs.
    """
    ran = 0
    while objective.fatal is None:
        interrupts.check()  # a Ctrl-C/SIGTERM that came between two trials
        if retries_only:
            if budget.expired or not _retry_waiting(study):
                break
        elif not budget.take():  # spent, or past the deadline
            break
        objective.last_retry = None
        objective.started = (time.process_time(), time.perf_counter())
        # A worker that died on this machine leaves its trial to be re-run now, not after the
        # grace period (Optuna's own check in ``optimize`` reads the heartbeats).
        attempt("failing the trials of dead workers", fail_dead_workers, study)
        study.optimize(
            objective,
            n_trials=1,
            catch=(Exception,),
            callbacks=list(callbacks),
            gc_after_trial=False,
        )
        ran += 1
        if objective.last_retry is not None and not retries_only:
            budget.give_back()  # re-running a dead worker's trial is not a new trial
    interrupts.check()  # one that came during the last trial's bookkeeping
    if ran and not retries_only and objective.fatal is None:
        # A dead worker's trial re-queued while this process ran its last trials is not a
        # new trial: run it now, or, once every live worker has ended, it waits for ever.
        # (One whose heartbeat is not stale yet when the last worker ends stays RUNNING until
        # the next search of the study fails and re-queues it.)
        _trials(study, objective, budget, callbacks, retries_only=True)


def _retry_waiting(study: optuna.Study) -> bool:
    """Whether a dead worker's trial waits to be re-run (failing the stale ones first)."""
    import optuna

    from codenas.search.storage import retried_trial_number

    no_trial_running(study)  # fails and re-queues the trials of dead workers
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    return any(retried_trial_number(t) is not None for t in waiting)


def flush_tracker(tracker: Tracker) -> None:
    """``tracker.flush()``, for trackers that write in the background (a tracker without the
    method writes synchronously: nothing to wait for)."""
    flush = getattr(tracker, "flush", None)
    if flush is not None:
        flush()


def attempt(what: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Run one bookkeeping ``step``; a failure is a logged warning with its reason, not an error.

    The trials are already stored when these steps run: a tracker that fails them must not
    fail the search, nor skip the steps after it, nor go unsaid.

    Returns:
        Whether the step succeeded.
    """
    try:
        step(*args, **kwargs)
    except Exception as err:
        _log.warning("%s failed: %s", what, first_line(err, with_type=True))
        return False
    return True


def no_trial_running(study: optuna.Study) -> bool:
    """Whether no worker of ``study`` (on any machine) is running a trial now.

    Trials whose heartbeat is older than the grace period, or whose worker ran on this
    machine and has ended (:func:`~codenas.search.storage.fail_dead_workers`), belong to dead
    workers: they are failed first (and re-queued,
    :class:`~codenas.search.storage.StaleTrialHandler`), so a killed worker does not keep the
    study "running" for ever. A live worker's trial is RUNNING
    from its start to its end, so the process whose own last trial ends while this holds is
    the last one: it alone marks the study's tracking record finished. (A worker between two
    trials holds none for a moment; it checks again when its next trial ends.)
    """
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        attempt("failing the trials of dead workers", optuna.storages.fail_stale_trials, study)
    attempt("failing the trials of dead workers", fail_dead_workers, study)
    return not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))


def study_totals(study: optuna.Study) -> dict[str, float]:
    """The study's totals for its tracking record: trial counts, front size, best values.

    Keys: ``trials_complete``, ``trials_failed``, ``trials_pruned``, ``trials_waiting``,
    ``front_size`` (feasible Pareto members), ``best/<objective>`` (the best value of each
    objective over the front, in the objective's direction; absent while the front is empty),
    and ``cpu_seconds`` and ``wall_seconds``: the sums of the trials' own (user attributes of
    the same names; with several workers the wall seconds add up the workers' time).
    """
    from codenas.search.pareto import objective_names

    counts = {"COMPLETE": 0, "FAIL": 0, "PRUNED": 0, "WAITING": 0}
    cost = {"cpu_seconds": 0.0, "wall_seconds": 0.0}
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name in counts:
            counts[trial.state.name] += 1
        for key in cost:
            cost[key] += float(trial.user_attrs.get(key, 0.0))
    best = study.best_trials
    totals = {
        "trials_complete": float(counts["COMPLETE"]),
        "trials_failed": float(counts["FAIL"]),
        "trials_pruned": float(counts["PRUNED"]),
        "trials_waiting": float(counts["WAITING"]),
        "front_size": float(len(best)),
        **cost,
    }
    if best:
        for i, (name, direction) in enumerate(
            zip(objective_names(study), study.directions, strict=True)
        ):
            pick = max if direction.name == "MAXIMIZE" else min
            totals[f"best/{name}"] = float(pick(t.values[i] for t in best))
    return totals


def wrap_up(study: optuna.Study, tracker: Tracker, *, status: str, front: bool = True) -> None:
    """The tracker's end-of-search steps, each attempted on its own (see :func:`attempt`).

    Runs left RUNNING are ended (``reconcile``). If no worker of the study is running any more
    (:func:`no_trial_running`), this process was the last one: it brings the front's files up
    to date (``front``; a worker still running does so when it ends, and the front's tags are
    current after every trial anyway) and ends the study's record with ``status`` (FINISHED,
    KILLED after Ctrl-C, FAILED) and its totals.
    """
    # Writes still queued in the background first: reconcile must not take the runs they end
    # for runs left behind (after Ctrl-C, the interrupted trial's callback is among them).
    attempt("writing the last trials' tracking records", flush_tracker, tracker)
    attempt("ending the runs of finished trials (reconcile)", tracker.reconcile)
    last = no_trial_running(study)
    if front and last:
        attempt("updating the Pareto front", tracker.update_front, study, final=True)
    if last:
        attempt(
            f"marking the study's parent run {status}",
            tracker.finish_study,
            status,
            study_totals(study),
        )


def front(
    study: optuna.Study | None = None,
    *,
    study_name: str | None = None,
    storage: str = "sqlite:///optuna.db",
) -> list[FrontRow]:
    """The current Pareto front of a study, as :class:`~codenas.search.pareto.FrontRow` s."""
    from codenas.search.pareto import front_rows

    if study is None:
        study = load_study(study_name, storage)
    return front_rows(study)
