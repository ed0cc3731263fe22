"""The driver: config -> dataset -> Optuna study -> trials -> MLflow.

``run(config)`` is what ``codenas search`` calls. It opens (or continues) the study in its
storage, refuses a config that does not match the stored study, and runs trials with
``study.optimize`` so that Optuna's heartbeat marks the trial of a killed worker as failed and
re-queues it once with the same parameters.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from codenas.config import Config
from codenas.errors import StorageError, StudyMismatchError
from codenas.spaces import Space, Spec, get_space

if TYPE_CHECKING:
    import optuna

    from codenas.data import Dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.search.early import CheckpointMonitor
    from codenas.search.pareto import FrontRow
    from codenas.tracking import MlflowTracker

CONFIG_ATTR = "codenas.config"
OBJECTIVES_ATTR = "codenas.objectives"
_TRACEBACK_CHARS = 4000


# ----------------------------------------------------------------------------- storage


class StaleTrialHandler:
    """Optuna's heartbeat callback for a trial whose worker died, plus codenas's own hooks.

    It re-queues the trial with the same parameters (Optuna's
    ``RetryHeartbeatStaleTrialCallback``, up to ``retries`` times), then calls each hook
    (the MLflow tracker ends the trial's run as KILLED).
    """

    def __init__(self, retries: int) -> None:
        import optuna
        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries)
        self.hooks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._retry(study, trial)
        for hook in self.hooks:
            with contextlib.suppress(Exception):  # never let bookkeeping break the search
                hook(study, trial)


def make_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    stale_handler: StaleTrialHandler | None = None,
) -> optuna.storages.BaseStorage:
    """An Optuna RDB storage for ``url`` (SQLite file, PostgreSQL, MySQL), checked to connect.

    With ``heartbeat_interval``, running trials send heartbeats; a trial silent for
    ``grace_period`` seconds (its worker died) becomes FAIL, and ``stale_handler`` re-queues it.
    """
    import optuna
    from optuna.exceptions import ExperimentalWarning

    from codenas.search import _sqlite
    from codenas.tracking import mask_url

    _sqlite.tune(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several workers share one SQLite file: wait for the lock instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif "://" in url:
        engine_kwargs["pool_pre_ping"] = True
    lock = _sqlite.lock_path(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            if lock is not None:
                return _sqlite.LockedSQLiteStorage(
                    url,
                    lock,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=stale_handler if heartbeat_interval else None,
                )
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=stale_handler if heartbeat_interval else None,
            )
    except Exception as err:
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise StorageError(f"cannot open Optuna storage {mask_url(url)!r}: {reason}") from None


def storage_for(
    config: Config, stale_handler: StaleTrialHandler | None = None
) -> optuna.storages.BaseStorage:
    """The storage of ``config``, with heartbeats so a dead worker's trial is retried."""
    s = config.study
    return make_storage(
        s.storage,
        heartbeat_interval=s.heartbeat_interval,
        grace_period=s.grace_period,
        stale_handler=stale_handler or StaleTrialHandler(s.retries),
    )


# ----------------------------------------------------------------------------- sampler


def sampler_seed(base: int, *salt: int) -> int:
    """A seed mixing the study seed with the trial count and worker index.

    A continued study or a second worker must not replay the random start-up draws of the
    first, which a plain ``seed`` would do.
    """
    return int(np.random.SeedSequence([base & 0xFFFFFFFF, *salt]).generate_state(1)[0])


def make_sampler(
    config: Config, seed: int, *, data: Dataset | None = None, space: Space | None = None
) -> optuna.samplers.BaseSampler:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    from codenas.errors import ConfigError

    if config.study.sampler == "code":
        from codenas.search.samplers.driver import code_sampler

        return code_sampler(config, seed, data=data, space=space)
    cls = {
        "tpe": optuna.samplers.TPESampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "random": optuna.samplers.RandomSampler,
        "gp": optuna.samplers.GPSampler,
    }[config.study.sampler]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return cls(seed=seed, **config.study.sampler_options)
    except TypeError as err:
        raise ConfigError(f"study.sampler_options: {err}") from None


# ----------------------------------------------------------------------------- study


def _diff(stored: Any, given: Any, prefix: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(given, dict):
        out: list[str] = []
        for key in sorted(set(stored) | set(given)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in stored:
                out.append(f"{name}: not in the stored config")
            elif key not in given:
                out.append(f"{name}: missing from the given config")
            else:
                out.extend(_diff(stored[key], given[key], name))
        return out
    if stored != given:
        return [f"{prefix}: stored {stored!r}, given {given!r}"]
    return []


def check_study_config(study: optuna.Study, config: Config) -> None:
    """Raise :class:`StudyMismatchError` unless ``config`` measures what ``study`` measured."""
    stored = study.user_attrs.get(CONFIG_ATTR)
    where = f"study {study.study_name!r}"
    if stored is None:
        raise StudyMismatchError(
            f"{where} exists but was not created by codenas; use --study to pick another name"
        )
    try:
        stored_cfg = Config.from_dict(stored, source=f"{where} (stored config)")
        stored_problem = stored_cfg.problem()
    except Exception:  # a config stored by another codenas version: compare the raw dicts
        stored_problem = {k: v for k, v in stored.items() if k not in ("study", "tracking")}
    diffs = _diff(stored_problem, json.loads(json.dumps(config.problem())))
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise StudyMismatchError(
            f"{where} was created with a different config ({shown}); continue it with the "
            "same config, or start a new study with --study NEW_NAME"
        )


def _stored_form(config: Config) -> dict[str, Any]:
    """The config as stored on the study: credentials in URLs masked."""
    from codenas.tracking import mask_url

    data = config.to_dict()
    data["study"]["storage"] = mask_url(data["study"]["storage"])
    data["tracking"]["uri"] = mask_url(data["tracking"]["uri"])
    return data


def open_study(
    config: Config,
    storage: optuna.storages.BaseStorage | None = None,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    wait: float = 30.0,
) -> tuple[optuna.Study, bool]:
    """Create the study of ``config``, or load it if it exists and matches.

    Creation is atomic in the storage, so among workers starting together exactly one creates
    the study; the others wait (up to ``wait`` seconds) for it to record its config.

    Returns:
        ``(study, created)``: ``created`` is true for the one process that created it.
    """
    import time

    import optuna

    from codenas.tracking import CREATED_ATTR

    storage = storage if storage is not None else storage_for(config)
    name = config.study.name
    try:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=config.directions,
            sampler=sampler,
            load_if_exists=False,
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        deadline = time.monotonic() + wait
        while CONFIG_ATTR not in study.user_attrs and not study.trials:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        check_study_config(study, config)
        return study, False
    study.set_user_attr(OBJECTIVES_ATTR, config.objective_names)
    study.set_user_attr(CREATED_ATTR, time.time())
    study.set_user_attr(CONFIG_ATTR, _stored_form(config))  # last: others wait for it
    return study, True


def load_study(study_name: str | None, storage_url: str) -> optuna.Study:
    """Load an existing study; with ``study_name=None``, the storage's only study."""
    import optuna

    storage = make_storage(storage_url)
    names = optuna.get_all_study_names(storage)
    if study_name is None:
        if len(names) == 1:
            study_name = names[0]
        else:
            from codenas.errors import ConfigError

            listing = ", ".join(names) if names else "none"
            raise ConfigError(
                f"{storage_url}: name the study with --study (studies there: {listing})"
            )
    if study_name not in names:
        from codenas.errors import UnknownNameError, unknown_name_message

        raise UnknownNameError(unknown_name_message(f"study in {storage_url}", study_name, names))
    return optuna.load_study(study_name=study_name, storage=storage)


def stored_config(study: optuna.Study) -> Config:
    """The config a codenas study was created with."""
    from codenas.errors import ConfigError

    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise ConfigError(f"study {study.study_name!r} was not created by codenas")
    return Config.from_dict(raw, source=f"study {study.study_name!r}")


# ----------------------------------------------------------------------------- objective


def retry_of(trial: optuna.Trial) -> int | None:
    """The number of the trial that ``trial`` re-runs after its worker died, if any."""
    attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
    origin = attrs.get("failed_trial")
    return None if origin is None else int(origin)


def trial_seed(config: Config, trial: optuna.Trial, origin: int | None) -> int:
    """The training seed of a trial; a retry (``origin`` set) reuses its original's seed."""
    return int(config.study.seed) * 1_000_003 + (trial.number if origin is None else origin)


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
        tracker: MlflowTracker | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.space = space
        self.evaluator = evaluator
        self.tracker = tracker
        self.fatal: Exception | None = None
        self.last_retry: int | None = None  # the trial the last call re-ran, if a retry

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

    def _checkpoint_monitor(self, trial: optuna.Trial) -> CheckpointMonitor | None:
        """The epoch callback that stops a dominated trial, if early stopping is enabled."""
        if not self.config.search.early_stopping.enabled:
            return None
        from codenas.search.early import CheckpointMonitor

        return CheckpointMonitor(self.config, trial)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        import optuna

        from codenas.search.samplers.code import LAYERS_ATTR
        from codenas.tracking import TrackingUnavailable, worker_id

        spec: Spec | None = None
        origin = self.last_retry = retry_of(trial)
        try:
            trial.set_user_attr("worker", worker_id())
            spec = self.space.sample(trial, self.data.input_shape, self.data.n_outputs)
            trial.set_user_attr("spec", spec.to_dict())
            if self.tracker is not None:
                self.tracker.trial_started(trial, spec, origin)
            self._check_static_constraints(trial, spec)
            # Multi-objective early stopping (codenas/search/early.py): off by default.
            monitor = self._checkpoint_monitor(trial)
            result = self.evaluator.evaluate(
                spec,
                seed=trial_seed(self.config, trial, origin),
                on_epoch_end=monitor,
                checkpoint_metrics=monitor.coding_metrics if monitor is not None else (),
                checkpoint_epochs=monitor.epochs if monitor is not None else None,
            )
            metrics = result.metrics
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr(LAYERS_ATTR, result.code_layers)  # what CodeSampler reads
            if monitor is not None:
                from codenas.search.early import CHECKPOINTS_ATTR

                trial.set_user_attr(CHECKPOINTS_ATTR, monitor.table())
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
        except TrackingUnavailable as err:
            trial.set_user_attr("fail_reason", f"TrackingUnavailable: {err}"[:2000])
            if self.tracker is not None:
                self.tracker.down = True
            self.fatal = err
            trial.study.stop()
            raise
        except Exception as err:
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}"[:2000])
            trial.set_user_attr("fail_traceback", traceback.format_exc()[-_TRACEBACK_CHARS:])
            if self.tracker is not None and spec is None:
                with contextlib.suppress(Exception):
                    self.tracker.trial_started(trial, None, origin)
            raise


# ----------------------------------------------------------------------------- budget


class Budget:
    """How many more trials to start; shared between workers when ``value`` is shared.

    A trial that re-runs one whose worker died (a retry) gives its ticket back: the budget
    counts evaluations the user asked for, and a killed trial has already used one.

    Args:
        value: an ``int``, or a ``multiprocessing.Value("i")`` shared by several workers.
    """

    def __init__(self, value: Any) -> None:
        self._value = value

    @property
    def left(self) -> int:
        return int(self._value if isinstance(self._value, int) else self._value.value)

    def take(self) -> bool:
        if isinstance(self._value, int):
            if self._value <= 0:
                return False
            self._value -= 1
            return True
        with self._value.get_lock():
            if self._value.value <= 0:
                return False
            self._value.value -= 1
            return True

    def give_back(self) -> None:
        if isinstance(self._value, int):
            self._value += 1
            return
        with self._value.get_lock():
            self._value.value += 1


# ----------------------------------------------------------------------------- run


def default_threads(workers: int = 1) -> int:
    """Torch threads per worker: the cores this process may use, split between workers."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def set_threads(threads: int) -> None:
    """Pin torch's and the BLAS libraries' (numpy, scikit-learn) threads of this process.

    Threads beyond the cores a worker owns do not add speed; on a busy machine they spin and
    wait for each other (more than 10x slower on 2 shared cores).
    """
    import threadpoolctl
    import torch

    torch.set_num_threads(threads)
    threadpoolctl.threadpool_limits(limits=threads)


@contextlib.contextmanager
def _quiet_optuna(enabled: bool) -> Iterator[None]:
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
) -> optuna.Study:
    """Run ``n_trials`` more trials of the search ``config`` (default ``study.trials``).

    Running the same config again continues the same study. Every trial is tracked in MLflow
    (unless ``tracking.enabled`` is false). Trials that re-run a dead worker's trial do not
    count towards ``n_trials``.

    Args:
        config: the validated config (see :func:`codenas.load_config`).
        n_trials: trials to add to the study; default ``config.study.trials``.
        progress: draw codenas's progress bar on stderr.
        quiet: silence Optuna's per-trial log lines (failures still reach the progress bar,
            Optuna's trial attributes and MLflow).
        callbacks: extra Optuna callbacks, called after each trial.
        enqueue: trial parameters (``{"depth": 2, "width": 64, ...}``) to evaluate first;
            they count towards ``n_trials``.
        budget: a :class:`Budget` shared with other workers (overrides ``n_trials``).
        retries_only: run only the trials re-queued after a worker died (WAITING), then stop.
        worker_index: index of this worker among ``workers`` on one machine (seeds, threads).
        workers: number of workers sharing the machine's cores.
        source: where the config came from, for error messages.

    Returns:
        The Optuna study.

    Raises:
        CodenasError: a bad config, dataset or storage, before any training; or
            :class:`~codenas.tracking.TrackingUnavailable` if MLflow stayed unreachable.
    """
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator

    n_trials = config.study.trials if n_trials is None else n_trials
    budget = budget if budget is not None else Budget(n_trials)
    set_threads(config.train.threads or default_threads(workers))

    # Every check that can fail on bad input runs before any training.
    from codenas.search.early import check_early_stopping

    check_early_stopping(config)
    stale = StaleTrialHandler(config.study.retries)
    storage = storage_for(config, stale)
    space = get_space(config.space.name)(config.space)
    data = load_dataset(config.data)
    space.check_input(data.input_shape)
    evaluator = Evaluator(config, data, source=source)
    with _quiet_optuna(quiet):
        study, created = open_study(config, storage)
    # Alone on a study, a search is reproducible from its seed; beside running workers (or as
    # one of several), the process id keeps this worker's draws apart from theirs.
    running = any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False))
    salt = os.getpid() if workers > 1 or running else 0
    seed = sampler_seed(config.study.seed, len(study.trials), worker_index, salt)
    study.sampler = make_sampler(config, seed, data=data, space=space)

    tracker = None
    if config.tracking.enabled:
        from codenas.tracking import MlflowTracker

        tracker = MlflowTracker(config, study, created=created)
        stale.hooks.append(tracker.trial_killed)
    if progress:
        import sys

        print(
            f"study {study.study_name!r}: {len(study.trials)} trials so far, {budget.left} "
            "more; objectives: "
            + ", ".join(f"{o.metric} ({o.direction})" for o in config.objectives),
            file=sys.stderr,
        )
    for params in enqueue:
        study.enqueue_trial(dict(params), skip_if_exists=True)
    objective = Objective(config, data, space, evaluator, tracker)

    bar = None
    if progress:
        from codenas.search.progress import ProgressBar

        bar = ProgressBar(budget.left, config.objective_names, config.directions)
    all_callbacks: list[Callable[..., None]] = []
    if tracker is not None:
        all_callbacks.append(tracker)
    if bar is not None:
        all_callbacks.append(bar)
    all_callbacks.extend(callbacks)

    if tracker is not None:
        tracker.set_parent_status("RUNNING")
    try:
        with _quiet_optuna(quiet):
            # One optimize call per trial: the budget is checked before each trial starts,
            # so workers sharing it never overshoot, and Optuna's heartbeat still runs.
            while objective.fatal is None:
                if retries_only:
                    if not _has_waiting(study):
                        break
                elif not budget.take():
                    break
                objective.last_retry = None
                study.optimize(
                    objective,
                    n_trials=1,
                    catch=(Exception,),
                    callbacks=all_callbacks,
                    gc_after_trial=False,
                )
                if objective.last_retry is not None and not retries_only:
                    budget.give_back()  # re-running a dead worker's trial is not a new trial
    finally:
        if bar is not None:
            bar.close()
        if tracker is not None and not tracker.down:
            # A Ctrl-C leaves the interrupted trial FAIL in Optuna with its run RUNNING:
            # reconcile ends that run as KILLED before the process exits.
            with contextlib.suppress(Exception):
                tracker.reconcile()
                tracker.update_front(study, final=True)
                tracker.set_parent_status("FINISHED")
    if objective.fatal is not None:
        raise objective.fatal
    if workers == 1 and not retries_only:
        front_reports(study, config, log=tracker is not None, progress=progress)
    return study


def front_reports(study: optuna.Study, config: Config, *, log: bool, progress: bool) -> None:
    """Write the neural-code report of each new Pareto member (``tracking.report``).

    A report never fails a finished search: a problem is one warning line.
    """
    if not config.tracking.report or not study.best_trials:
        return
    import sys

    from codenas.decisions.report import report_front

    if progress:
        print(
            "writing neural-code reports of the Pareto front (tracking.report: false skips "
            "them)...",
            file=sys.stderr,
        )
    try:
        reports = report_front(study, config, config.tracking.report_dir, log=log)
    except Exception as err:
        print(f"codenas: warning: front reports not written: {err}", file=sys.stderr)
        return
    if progress and reports:
        where = reports[0].out_dir.parent
        print(f"reports: {where}/trial-N/report.html ({len(reports)} new)", file=sys.stderr)


def _has_waiting(study: optuna.Study) -> bool:
    import optuna

    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))


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


logging.getLogger(__name__).addHandler(logging.NullHandler())
