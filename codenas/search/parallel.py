"""Several worker processes on one machine, sharing one study and one trial budget.

``run_workers(config, n_trials, workers)`` is ``codenas search --workers N``. Before any worker
starts, this process checks the config, the storages and the data, creates the study and its
MLflow parent run (so workers never race to create either), then runs ``codenas.search.run``
itself as worker 0 and starts ``N - 1`` more worker processes against the same study, with a
shared :class:`~codenas.search.budget.Budget` (trials and deadline) and ``cores / N`` torch
threads each. The extra
workers fork from a fork server that imported torch, Lightning, Optuna and MLflow once
(:mod:`codenas.search.forkserver`; ``codenas search --workers N`` starts it before its own
imports), so none of them pays the ~5 s of imports a spawned process would. A thread draws one
progress bar by reading the study. Nothing here schedules trials: Optuna's storage hands them
out, exactly as it does across machines.

A worker that dies (SIGKILL, out of memory) costs its running trial: once Optuna's heartbeat
grace period has passed, the trial becomes FAIL and is re-queued with the same parameters, and
if no live worker is left to run it, this process starts one more.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import multiprocessing.connection
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from codenas.config import Config
from codenas.errors import CodenasError
from codenas.search import forkserver

_log = logging.getLogger(__name__)


def _worker_main(
    config_data: dict[str, Any],
    source: str,
    tickets: Any,
    index: int,
    workers: int,
    deadline: float | None,
    drain: bool = False,
) -> None:
    """Entry point of one worker process (forked from the preloaded fork server, or spawned
    where the platform has none)."""
    # Ctrl-C reaches the whole process group, and the coordinator then sends SIGTERM too: the
    # first signal stops the worker, later ones must not break off its bookkeeping (the
    # interrupted trial's FAIL and its run's KILLED).
    signal.signal(signal.SIGINT, _stop_once)
    signal.signal(signal.SIGTERM, _stop_once)
    from codenas.search.budget import Budget, passed

    if passed(deadline) or (not drain and tickets.value <= 0):
        return  # the others used the whole budget while this one started: nothing to set up
    from codenas.config import Config
    from codenas.errors import CodenasError, show_warnings
    from codenas.search.study import run

    show_warnings()

    config = Config.from_dict(config_data, source=source)
    try:
        run(
            config,
            budget=Budget(tickets, deadline),
            worker_index=index,
            workers=workers,
            source=source,
            retries_only=drain,
        )
    except KeyboardInterrupt:
        sys.exit(130)
    except CodenasError as err:
        print(f"codenas: error: worker {index}: {err}", file=sys.stderr)
        sys.exit(2)


def _run_worker_zero(
    prepared: Any, tickets: Any, deadline: float | None, workers: int, source: str
) -> None:
    """Run this process's share of the trials: it is worker 0, already warm (its imports, its
    data, its storage, its study and its tracker are those the checks before the workers
    made: :func:`codenas.search.study.prepare`, once)."""
    from codenas.search.budget import Budget
    from codenas.search.study import run

    run(
        prepared.config,
        budget=Budget(tickets, deadline),
        worker_index=0,
        workers=workers,
        source=source,
        prepared=prepared,
    )


class _Watch:
    """What the coordinator knows of its worker processes: deaths (with a warning each, and
    when one died holding a trial) and the progress bar, read from the study."""

    def __init__(
        self, study: Any, start: int, n_trials: int | None, grace: float, bar: Any
    ) -> None:
        self.study = study
        self.start = start
        self.n_trials = n_trials
        self.grace = grace
        self.bar = bar
        self.procs: list[mp.process.BaseProcess] = []
        self.deaths: list[float] = []  # when workers died holding a trial (one to wait out)
        self.died: list[int] = []  # exit codes of workers that died abnormally
        self.stopped = threading.Event()
        self.own = 1  # this process's own worker (worker 0), while it runs trials
        self._lock = threading.Lock()

    def run_until_stopped(self, poll: float) -> None:
        """:meth:`check` every ``poll`` seconds until :attr:`stopped` is set (a thread's loop
        while this process runs its own trials)."""
        while not self.stopped.wait(poll):
            try:
                self.check()
            except Exception as err:  # a failed read of the study must not end the watch
                _log.debug("watching the workers: %s", err)

    def check(self) -> list[mp.process.BaseProcess]:
        """Report workers that died since the last check, redraw the bar; the live workers."""
        with self._lock:
            procs = list(self.procs)
            alive = [p for p in procs if p.is_alive()]
            for proc in procs:
                if (
                    proc.is_alive()
                    or proc.exitcode in (0, 130, None)
                    or getattr(proc, "_codenas_seen", False)
                ):
                    continue
                proc._codenas_seen = True  # type: ignore[attr-defined]
                self.died.append(int(proc.exitcode or 0))
                if proc.exitcode == 2:
                    continue  # the worker printed its one-line error
                held = _held_a_trial(self.study, self.start, proc.pid)
                if held:  # this machine's process table tells at once (no heartbeat wait)
                    from codenas.search.storage import fail_dead_workers

                    fail_dead_workers(self.study)
                if held and not _held_a_trial(self.study, self.start, proc.pid):
                    what = "its trial was failed and is retried"
                elif held:
                    self.deaths.append(time.monotonic())
                    what = (
                        "its trial is retried once the heartbeat grace period "
                        f"({self.grace} s) has passed"
                    )
                else:
                    what = "it held no trial"
                msg = (
                    f"codenas: warning: {proc.name} (pid {proc.pid}) died with exit code "
                    f"{proc.exitcode}; {what}"
                )
                (self.bar.write if self.bar else print)(msg, file=sys.stderr)
            if self.bar is not None:
                done, failed, pruned, _ = _counts(self.study, self.start)
                self.bar.n = min(self.n_trials or 2**31, done + failed + pruned)
                self.bar.set_postfix(
                    failed=failed, pruned=pruned, workers=len(alive) + self.own, refresh=False
                )
                self.bar.refresh()
            return alive


def _stop_once(signum: int, frame: Any) -> None:
    """Raise ``KeyboardInterrupt`` on the first SIGINT/SIGTERM, ignore the ones after it."""
    _ignore_stops()
    raise KeyboardInterrupt


def _ignore(signum: int, frame: Any) -> None:
    """A Python-level no-op: unlike ``SIG_IGN``, a signal already pending when it is installed
    is then dropped quietly (CPython raises "Signal N ignored due to race condition" for one
    whose handler became ``SIG_IGN`` before it ran)."""


def _ignore_stops() -> None:
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGTERM, _ignore)


def _counts(study: Any, start: int) -> tuple[int, int, int, int]:
    done = failed = pruned = running = 0
    for trial in study.get_trials(deepcopy=False)[start:]:
        state = trial.state.name
        if state == "COMPLETE":
            done += 1
        elif state == "FAIL":
            failed += 1
        elif state == "PRUNED":
            pruned += 1
        elif state == "RUNNING":
            running += 1
    return done, failed, pruned, running


def run_workers(
    config: Config,
    *,
    n_trials: int | None = None,
    workers: int = 2,
    progress: bool = False,
    source: str = "config",
    enqueue: Sequence[dict[str, Any]] = (),
    poll: float = 0.5,
    stop_timeout: float = 30.0,
) -> Any:
    """Run ``n_trials`` more trials of ``config`` with ``workers`` processes on this machine.

    This process is one of them (worker 0); the ``workers - 1`` others are separate processes.
    ``enqueue`` lists trial parameters to evaluate first (they count towards ``n_trials``),
    as in :func:`codenas.search.run`. After Ctrl-C or SIGTERM each worker records its running
    trial as failed (its run KILLED) and exits; one still alive ``stop_timeout`` seconds later
    is killed. Every worker is joined before this returns or raises.

    Returns:
        The Optuna study once every worker has finished.

    Raises:
        CodenasError: bad config, data or storage (before any worker starts).
        KeyboardInterrupt: after Ctrl-C/SIGTERM has stopped every worker (each records its
            running trial as failed in both stores).
    """
    from codenas.search.budget import UNLIMITED, deadline_for
    from codenas.search.study import prepare, quiet_optuna

    n_trials = config.study.trials if n_trials is None else n_trials
    # One deadline for every worker, from the command's start (study.timeout).
    deadline = deadline_for(config.study.timeout)
    # Everything a worker checks, once, here: a bad config fails before any process starts.
    # The study and its tracker are made here too, so the workers never race to create the
    # parent run; the tracker also ends the run of a dead worker's trial when this process
    # fails it as stale. Worker 0 (this process) runs its trials on this preparation.
    with quiet_optuna():  # Optuna's "A new study created" line, as one worker has none
        prepared = prepare(config, source=source)
    study, tracker, storage = prepared.study, prepared.tracker, prepared.storage
    start = len(study.trials)
    for params in enqueue:
        study.enqueue_trial(dict(params), skip_if_exists=True)

    ctx = forkserver.context()
    tickets = ctx.Value("i", UNLIMITED if n_trials is None else n_trials)
    data = config.to_dict()

    def spawn(index: int, drain: bool = False) -> mp.process.BaseProcess:
        proc = ctx.Process(
            target=_worker_main,
            args=(data, source, tickets, index, workers, deadline, drain),
            name=f"codenas-worker-{index}",
        )
        proc.start()
        return proc

    bar = None
    if progress:
        from tqdm.auto import tqdm

        more = "trials until the deadline" if n_trials is None else f"{n_trials} more"
        print(
            f"study {study.study_name!r}: {start} trials so far, {more} on {workers} workers",
            file=sys.stderr,
        )
        bar = tqdm(total=n_trials, unit="trial", desc="search", file=sys.stderr, dynamic_ncols=True)
    watch = _Watch(study, start, n_trials, config.study.grace_period, bar)
    procs = watch.procs
    replaced = 0
    interrupted = failed = False
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # As in a worker: the first Ctrl-C/SIGTERM stops this process's own trial (worker 0), the
    # ones after it must not break off that trial's bookkeeping nor the workers' clean-up.
    signal.signal(signal.SIGINT, _stop_once)
    signal.signal(signal.SIGTERM, _stop_once)

    # The other workers are started from a thread: the fork server may still be importing
    # (it answers once it has), and this process meanwhile runs trials as worker 0.
    def start_others() -> None:
        for index in range(1, workers):
            procs.append(spawn(index))

    starter = threading.Thread(target=start_others, name="codenas-start-workers", daemon=True)
    watcher = threading.Thread(
        target=watch.run_until_stopped, args=(poll,), name="codenas-watch", daemon=True
    )
    try:
        starter.start()
        watcher.start()
        try:
            _run_worker_zero(prepared, tickets, deadline, workers, source)
        finally:
            watch.own = 0
            watch.stopped.set()
            watcher.join()
            starter.join()
        grace = config.study.grace_period
        replaced = _until_done(watch, tickets, deadline, grace, lambda d: spawn(workers, d), poll)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        failed = True
        raise
    finally:
        # A second Ctrl-C must not cut the clean-up short: each worker gets a bounded time to
        # record its trial, then is killed, and every one is joined (no orphan, no zombie).
        _ignore_stops()
        try:
            killed = _stop_workers(procs, study, start, stop_timeout)
            if bar is not None:
                bar.close()
            # Every worker that ended normally ran the end-of-search steps itself, the last one
            # ending the study's record; they are left to this process only when one did not.
            abnormal = interrupted or failed or bool(killed or replaced or watch.died)
            if tracker is not None and not tracker.down and abnormal:
                from codenas.search.study import wrap_up

                status = "KILLED" if interrupted else "FAILED" if failed else "FINISHED"
                wrap_up(study, tracker, status=status, front=bool(killed or replaced))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if interrupted:
        raise KeyboardInterrupt
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=storage)


def _until_done(
    watch: _Watch,
    tickets: Any,
    deadline: float | None,
    grace: float,
    spawn: Callable[[bool], mp.process.BaseProcess],
    poll: float,
) -> int:
    """Wait for the workers to end; replace workers that died while trials are left.

    A dead worker's trial may still be RUNNING: once the grace period has passed it becomes
    FAIL and is re-queued (WAITING). One more worker then finishes the budget, or runs just
    the re-queued trials if none is left (never after the deadline).

    Returns:
        The number of workers started to replace dead ones.

    Raises:
        WorkerError: workers keep dying without finishing trials.
    """
    from codenas.search.budget import passed

    study, start = watch.study, watch.start
    replaced = finished_then = 0
    while True:
        alive = watch.check()
        if alive:
            # Back as soon as a worker exits (the end of the search, most often), else in
            # ``poll`` seconds to redraw the bar.
            mp.connection.wait([p.sentinel for p in alive], timeout=poll)
            continue
        finished = sum(_counts(study, start)[:3])
        died, deaths = watch.died, watch.deaths
        if died and (finished == finished_then or replaced >= 3):
            raise WorkerError(
                f"workers keep dying (exit codes {sorted(set(died))}) without finishing "
                "trials; stopped (see the messages above)"
            )
        if not (died and (deaths or tickets.value > 0) and not passed(deadline)):
            return replaced
        if deaths:
            wait = deaths[-1] + grace + 1 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            _fail_stale(study)
        deaths.clear()
        died.clear()
        replaced += 1
        finished_then = finished
        waiting = any(t.state.name == "WAITING" for t in study.get_trials(deepcopy=False))
        if not (tickets.value > 0 or waiting):
            return replaced
        watch.procs.append(spawn(tickets.value <= 0))  # drain: only the re-queued trials


def _stop_workers(
    procs: Sequence[mp.process.BaseProcess], study: Any, start: int, timeout: float
) -> list[int]:
    """Stop and join every worker; the trial of one that had to be killed is failed.

    A live worker gets SIGTERM (it records its running trial as failed and exits 130; one that
    already got Ctrl-C ignores it) and ``timeout`` seconds in all to exit, then SIGKILL. The
    RUNNING trial of a killed worker is told FAIL at once (its heartbeat would take the grace
    period), so that the tracker's reconcile ends its run as KILLED.

    Returns:
        The pids of the workers that were killed.
    """
    import optuna

    for proc in procs:
        if proc.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it ended in between: nothing to stop
                proc.terminate()
    deadline = time.monotonic() + timeout
    killed = []
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            _log.warning(
                "%s (pid %s) did not stop within %g s of the interrupt; killed",
                proc.name,
                proc.pid,
                timeout,
            )
            proc.kill()
            proc.join()
            killed.append(proc.pid)
    for trial in study.get_trials(deepcopy=False)[start:]:
        worker = str(trial.user_attrs.get("worker", ""))
        if trial.state.name == "RUNNING" and any(worker.endswith(f":{pid}") for pid in killed):
            try:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            except Exception as err:  # e.g. it ended in between
                _log.warning("trial %d of a killed worker not failed: %s", trial.number, err)
    return killed


class WorkerError(CodenasError):
    """The worker processes of ``--workers`` kept dying without finishing trials."""


def _held_a_trial(study: Any, start: int, pid: int | None) -> bool:
    """Whether the worker ``pid`` was running a trial (its ``worker`` attr ends in ``:pid``)."""
    return any(
        t.state.name == "RUNNING" and str(t.user_attrs.get("worker", "")).endswith(f":{pid}")
        for t in study.get_trials(deepcopy=False)[start:]
    )


def _fail_stale(study: Any) -> None:
    import warnings

    import optuna
    from optuna.exceptions import ExperimentalWarning

    from codenas.search.storage import fail_dead_workers
    from codenas.search.study import attempt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        attempt("failing the trials of dead workers", optuna.storages.fail_stale_trials, study)
    attempt("failing the trials of dead workers", fail_dead_workers, study)
