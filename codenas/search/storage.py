"""Optuna storages and studies: open, create, load, and the config a study was created with.

A codenas study records its config (``codenas.config``, credentials masked) and objective names
as study user attributes, so a worker can join it without its config file and a continued
search is refused if it would measure something else.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenas.config import Config
from codenas.errors import (
    ConfigError,
    StorageError,
    StudyMismatchError,
    UnknownNameError,
    first_line,
    unknown_name_message,
)
from codenas.urls import mask_url

if TYPE_CHECKING:
    import optuna

CONFIG_ATTR = "codenas.config"
OBJECTIVES_ATTR = "codenas.objectives"
CREATED_ATTR = "codenas.created_at"

_log = logging.getLogger(__name__)


# User attributes a trial writes while it runs: its outcome, not its input. A retry starts
# without them (it would otherwise carry the killed trial's worker, metrics and, through the
# tracker's attribute, the killed trial's MLflow run).
OUTCOME_ATTRS = frozenset(
    {"worker", "spec", "metrics", "fail_reason", "fail_traceback", "prune_reason"}
    # its cost and how far the schedule let it train (search/objective.py, search/schedule.py)
    | {"cpu_seconds", "wall_seconds", "rung", "rungs"}
    # what a trial measured for the code sampler (search/samplers): its per-layer code and the
    # weights it saved for inheritance belong to the killed run, not to its retry
    | {"code.layers", "code.weights", "code.inherited", "code.inherit_reason"}
)
QUEUE_TAG = "codenas.queued_as"


class StaleTrialHandler:
    """Optuna's heartbeat callback for a trial whose worker died, plus codenas's own hooks.

    It re-queues the trial with the same parameters and input attributes (Optuna's
    ``RetryHeartbeatStaleTrialCallback``, up to ``retries`` times), then calls each hook (the
    MLflow tracker ends the trial's run as KILLED). The retry does not inherit the user
    attributes in :data:`OUTCOME_ATTRS` nor those in ``drop_attrs`` (a tracker adds the
    attribute holding its run id), so nothing can attribute the killed trial's run to it; its
    link to the killed trial is Optuna's (:func:`retried_trial_number`).
    """

    def __init__(self, retries: int) -> None:
        import optuna
        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries)
        self.hooks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = []
        self.drop_attrs: set[str] = set(OUTCOME_ATTRS)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        import copy

        inputs = copy.copy(trial)  # the stored trial keeps every attribute
        inputs.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in self.drop_attrs}
        try:
            self._retry(study, inputs)
        except Exception as err:  # the trial stays FAIL in any case; say that it is not retried
            _log.warning(
                "trial %d of study %r (worker died) was not re-queued: %s",
                trial.number,
                study.study_name,
                first_line(err, with_type=True),
            )
        for hook in self.hooks:
            try:
                hook(study, trial)
            except Exception as err:  # bookkeeping never breaks the search, but it is said
                _log.warning(
                    "after trial %d of study %r was failed as stale, %s failed: %s",
                    trial.number,
                    study.study_name,
                    getattr(hook, "__qualname__", repr(hook)),
                    first_line(err, with_type=True),
                )


def retried_trial_number(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the trial that ``trial`` re-runs after its worker died, if any.

    Optuna's public (experimental) ``RetryHeartbeatStaleTrialCallback.retried_trial_number``:
    the first trial of a chain of retries.
    """
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        number = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    return None if number is None else int(number)


def enqueue(
    study: optuna.Study, params: dict[str, Any], user_attrs: dict[str, Any] | None = None
) -> int:
    """Queue a trial and return its number, also while other processes queue or run trials.

    ``study.enqueue_trial`` returns nothing, and the newest WAITING trial may be another
    process's; the trial is found instead by a unique tag (:data:`QUEUE_TAG`) queued with it.
    A retry of the trial carries the same tag, so the lowest number is the queued one.
    """
    import uuid

    key = uuid.uuid4().hex
    study.enqueue_trial(dict(params), user_attrs={**(user_attrs or {}), QUEUE_TAG: key})
    return min(
        t.number for t in study.get_trials(deepcopy=False) if t.user_attrs.get(QUEUE_TAG) == key
    )


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
        path = _sqlite.path_of(url)
        if path is not None and not os.path.isdir(os.path.dirname(path)):
            reason = f"its folder {os.path.dirname(path)!r} does not exist"
        else:
            reason = first_line(err)
        raise StorageError(f"cannot open Optuna storage {mask_url(url)!r}: {reason}") from None


def storage_for(
    config: Config, stale_handler: StaleTrialHandler | None = None
) -> optuna.storages.BaseStorage:
    """The storage of ``config``, with heartbeats so a dead worker's trial is retried.

    For the commands that write a study (search, worker, ``--seed-from``): the folder of a
    local SQLite file is created when missing, as the MLflow store's is."""
    from codenas.search import _sqlite

    s = config.study
    path = _sqlite.path_of(s.storage)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return make_storage(
        s.storage,
        heartbeat_interval=s.heartbeat_interval,
        grace_period=s.grace_period,
        stale_handler=stale_handler or StaleTrialHandler(s.retries),
    )


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
        if study.metric_names is None:  # a study made before codenas named its objectives
            _name_objectives(study, config)
        return study, False
    _name_objectives(study, config)
    study.set_user_attr(OBJECTIVES_ATTR, config.objective_names)
    study.set_user_attr(CREATED_ATTR, time.time())
    study.set_user_attr(CONFIG_ATTR, _stored_form(config))  # last: others wait for it
    return study, True


def _name_objectives(study: optuna.Study, config: Config) -> None:
    """Name the study's objectives (optuna-dashboard and ``study.metric_names`` show them)."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names(list(config.objective_names))


def load_study(study_name: str | None, storage_url: str) -> optuna.Study:
    """Load an existing study; with ``study_name=None``, the storage's only study."""
    import optuna

    storage = make_storage(storage_url)
    names = optuna.get_all_study_names(storage)
    if study_name is None:
        if len(names) == 1:
            study_name = names[0]
        else:
            listing = ", ".join(names) if names else "none"
            raise ConfigError(
                f"{mask_url(storage_url)}: name the study with --study (studies there: {listing})"
            )
    if study_name not in names:
        raise UnknownNameError(
            unknown_name_message("study", study_name, names, where=mask_url(storage_url))
        )
    return optuna.load_study(study_name=study_name, storage=storage)


def stored_config(study: optuna.Study) -> Config:
    """The config a codenas study was created with."""
    raw = study.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise ConfigError(f"study {study.study_name!r} was not created by codenas")
    return Config.from_dict(raw, source=f"study {study.study_name!r}")


def worker_id() -> str:
    """``host/machine:pid`` of this process, recorded on every trial (and its MLflow run).

    ``machine`` names this kernel boot and PID namespace (Linux; without it, ``host:pid``): a
    process that has the same one can tell at once whether the worker still lives
    (:func:`fail_dead_workers`), also where machines or containers share a host name.
    """
    import socket

    machine = _machine()
    host = socket.gethostname() if machine is None else f"{socket.gethostname()}/{machine}"
    return f"{host}:{os.getpid()}"


@functools.cache
def _machine() -> str | None:
    """A short id of this kernel boot and PID namespace (Linux), or None where there is none."""
    import hashlib

    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return hashlib.blake2b(f"{boot} {namespace}".encode(), digest_size=4).hexdigest()


def worker_gone(worker: str) -> bool:
    """Whether ``worker`` (a :func:`worker_id`) ran in this machine's PID namespace and its
    process has ended (a zombie not yet reaped has ended). A worker elsewhere, or recorded
    without a machine id, is not known to be gone: only its heartbeat can tell."""
    where, _, pid = worker.rpartition(":")
    _, slash, machine = where.rpartition("/")
    if not (slash and pid.isdigit()) or machine != _machine():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # ended in between
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def fail_dead_workers(study: optuna.Study) -> int:
    """Fail, and re-queue, the RUNNING trials of workers that ran on this machine and ended.

    The heartbeat tells a dead worker only after the grace period; on its own machine the
    process table tells at once (a ``kill -9``, the OOM killer, a crashed ``--workers``
    child). Each such trial becomes FAIL and goes to the storage's stale-trial callback
    (:class:`StaleTrialHandler`: re-queued, its run ended as KILLED), exactly as if its
    heartbeat had gone stale; where several processes find it, one wins and the others skip it.

    Returns:
        The number of trials this call failed.
    """
    import optuna

    from codenas.search._optuna_private import stale_trial_callback

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    dead = [t for t in running if worker_gone(str(t.user_attrs.get("worker", "")))]
    if not dead:
        return 0
    callback = stale_trial_callback(study)
    failed = 0
    for trial in dead:
        try:
            stored = study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except Exception:  # another process failed it first, or it ended in between
            continue
        failed += 1
        if callback is not None:
            callback(study, stored)
    return failed
