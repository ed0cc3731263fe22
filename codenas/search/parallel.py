"""Several worker processes on one machine, sharing one study and one trial budget.

``run_workers(config, n_trials, workers)`` is ``codenas search --workers N``. Before any worker
starts, this process checks the config, the storages and the data, creates the study and its
MLflow parent run (so workers never race to create either), then starts ``N`` processes that run
``codenas.search.run`` against the same study with a shared :class:`~codenas.search.study.Budget`
and ``cores / N`` torch threads each. It draws one progress bar by reading the study. Nothing
here schedules trials: Optuna's storage hands them out, exactly as it does across machines.

A worker that dies (SIGKILL, out of memory) costs its running trial: once Optuna's heartbeat
grace period has passed, the trial becomes FAIL and is re-queued with the same parameters, and
if no live worker is left to run it, this process starts one more.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from codenas.config import Config
from codenas.errors import CodenasError
from codenas.search.tracker import make_tracker


def _worker_main(
    config_data: dict[str, Any],
    source: str,
    tickets: Any,
    index: int,
    workers: int,
    drain: bool = False,
) -> None:
    """Entry point of one worker process (spawned: it imports everything afresh)."""
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from codenas.config import Config
    from codenas.errors import CodenasError
    from codenas.search.objective import Budget
    from codenas.search.study import run

    config = Config.from_dict(config_data, source=source)
    try:
        run(
            config,
            budget=Budget(tickets),
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
) -> Any:
    """Run ``n_trials`` more trials of ``config`` with ``workers`` processes on this machine.

    ``enqueue`` lists trial parameters to evaluate first (they count towards ``n_trials``),
    as in :func:`codenas.search.run`.

    Returns:
        The Optuna study once every worker has finished.

    Raises:
        CodenasError: bad config, data or storage (before any worker starts).
        KeyboardInterrupt: after Ctrl-C/SIGTERM has stopped every worker (each records its
            running trial as failed in both stores).
    """
    from codenas.data import load_dataset
    from codenas.search.storage import StaleTrialHandler, open_study, storage_for
    from codenas.spaces import get_space

    n_trials = config.study.trials if n_trials is None else n_trials
    # Check everything a worker would, once, here: a bad config fails before any process starts.
    stale = StaleTrialHandler(config.study.retries)
    storage = storage_for(config, stale)
    space = get_space(config.space.name)(config.space)
    space.check_input(load_dataset(config.data).input_shape)
    study, created = open_study(config, storage)
    # Created here, once, so the workers never race to create the parent run; it also ends the
    # run of a dead worker's trial when this process fails it as stale.
    tracker = make_tracker(config, study, created=created)
    if tracker is not None:
        stale.hooks.append(tracker.trial_killed)
        stale.drop_attrs.update(tracker.trial_attrs)
    start = len(study.trials)
    for params in enqueue:
        study.enqueue_trial(dict(params), skip_if_exists=True)

    ctx = mp.get_context("spawn")
    tickets = ctx.Value("i", n_trials)
    data = config.to_dict()

    def spawn(index: int, drain: bool = False) -> mp.process.BaseProcess:
        proc = ctx.Process(
            target=_worker_main,
            args=(data, source, tickets, index, workers, drain),
            name=f"codenas-worker-{index}",
        )
        proc.start()
        return proc

    procs = [spawn(i) for i in range(workers)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        print(
            f"study {study.study_name!r}: {start} trials so far, {n_trials} more on "
            f"{workers} workers",
            file=sys.stderr,
        )
        bar = tqdm(total=n_trials, unit="trial", desc="search", file=sys.stderr, dynamic_ncols=True)
    deaths: list[float] = []  # when workers died holding a trial (a stale trial to wait out)
    died: list[int] = []  # exit codes of workers that died abnormally
    replaced = 0
    finished_then = 0
    interrupted = False
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            alive = [p for p in procs if p.is_alive()]
            for proc in procs:
                if (
                    not proc.is_alive()
                    and proc.exitcode not in (0, 130, None)
                    and not getattr(proc, "_codenas_seen", False)
                ):
                    proc._codenas_seen = True  # type: ignore[attr-defined]
                    died.append(int(proc.exitcode or 0))
                    if proc.exitcode == 2:
                        continue  # the worker printed its one-line error
                    if _held_a_trial(study, start, proc.pid):
                        deaths.append(time.monotonic())
                        what = (
                            "its trial is retried once the heartbeat grace period "
                            f"({config.study.grace_period} s) has passed"
                        )
                    else:
                        what = "it held no trial"
                    msg = (
                        f"codenas: warning: {proc.name} (pid {proc.pid}) died with exit code "
                        f"{proc.exitcode}; {what}"
                    )
                    (bar.write if bar else print)(msg, file=sys.stderr)  # type: ignore[operator]
            if bar is not None:
                done, failed, pruned, _ = _counts(study, start)
                bar.n = min(n_trials, done + failed + pruned)
                bar.set_postfix(failed=failed, pruned=pruned, workers=len(alive), refresh=False)
                bar.refresh()
            if not alive:
                finished = sum(_counts(study, start)[:3])
                if died and (finished == finished_then or replaced >= 3):
                    raise WorkerError(
                        f"workers keep dying (exit codes {sorted(set(died))}) without finishing "
                        "trials; stopped (see the messages above)"
                    )
                if died and (deaths or tickets.value > 0):
                    # A dead worker's trial may still be RUNNING: once the grace period has
                    # passed it becomes FAIL and is re-queued (WAITING). One more worker then
                    # finishes the budget, or runs just the re-queued trials if none is left.
                    if deaths:
                        wait = deaths[-1] + config.study.grace_period + 1 - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        _fail_stale(study)
                    deaths.clear()
                    died.clear()
                    replaced += 1
                    finished_then = finished
                    waiting = any(
                        t.state.name == "WAITING" for t in study.get_trials(deepcopy=False)
                    )
                    if tickets.value > 0 or waiting:
                        procs.append(spawn(workers, drain=tickets.value <= 0))
                        continue
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        interrupted = True
        for proc in procs:
            if proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()  # SIGTERM: the worker records its trial and exits 130
        for proc in procs:
            proc.join(timeout=60)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
    if interrupted:
        raise KeyboardInterrupt
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=storage)


class WorkerError(CodenasError):
    """The worker processes of ``--workers`` kept dying without finishing trials."""


def _held_a_trial(study: Any, start: int, pid: int | None) -> bool:
    """Whether the worker ``pid`` was running a trial (its ``worker`` attr ends in ``:pid``)."""
    return any(
        t.state.name == "RUNNING" and str(t.user_attrs.get("worker", "")).endswith(f":{pid}")
        for t in study.get_trials(deepcopy=False)[start:]
    )


def _fail_stale(study: Any) -> None:
    import optuna

    with contextlib.suppress(Exception):
        optuna.storages.fail_stale_trials(study)
