"""Orchestration: the multi-step flows that the commands run, composed from the layers below.

A search then its reports (:func:`search`), a right-sized proposal then its trial
(:func:`run_queued`). Each step lives in its own layer (``search`` runs Optuna, ``tracking``
logs to MLflow, ``decisions`` writes reports); only this module and :mod:`codenas.cli` chain
them, so no lower layer has to import a higher one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from codenas.config import Config
from codenas.decisions.report import front_dir, missing_front_reports, report_trial
from codenas.search.parallel import run_workers
from codenas.search.study import run
from codenas.training.runtime import default_threads, set_threads

if TYPE_CHECKING:
    import optuna


def search(
    config: Config,
    *,
    n_trials: int | None = None,
    workers: int = 1,
    progress: bool = False,
    enqueue: Sequence[dict[str, Any]] = (),
    source: str = "config",
) -> optuna.Study:
    """``codenas search``: run the trials (in ``workers`` processes), then the front reports.

    Args:
        config: the validated config.
        n_trials: trials to add (default ``study.trials``).
        workers: worker processes on this machine (1: this process runs the trials).
        progress: draw the progress bar and the report lines on stderr.
        enqueue: trial parameters to evaluate first (they count towards ``n_trials``).
        source: where the config came from, for messages.

    Returns:
        The study after the search.
    """
    if workers > 1:
        study = run_workers(
            config,
            n_trials=n_trials,
            workers=workers,
            progress=progress,
            source=source,
            enqueue=enqueue,
        )
        set_threads(default_threads())
    else:
        study = run(config, n_trials=n_trials, progress=progress, source=source, enqueue=enqueue)
    front_reports(study, config, log=config.tracking.enabled, progress=progress)
    return study


def front_reports(study: optuna.Study, config: Config, *, log: bool, progress: bool) -> None:
    """Write the neural-code report of each Pareto member that has none yet
    (``tracking.report``); a member's existing ``trial-N/report.html`` is kept, not redone.

    Each report loads the member's kept weights (re-trains it where none were kept): with
    ``progress``, a bar counts them on stderr. A
    report never fails a finished search: a problem is one warning line.
    """
    if not config.tracking.report or not study.best_trials:
        return
    base = front_dir(study.study_name, config.tracking.report_dir)
    try:
        todo = missing_front_reports(study, base)
    except Exception as err:
        print(f"codenas: warning: front reports not written: {err}", file=sys.stderr)
        return
    kept = len(study.best_trials) - len(todo)
    written = 0
    if todo:
        from tqdm.auto import tqdm

        if progress:
            source = (
                "from the weights they kept"
                if config.study.keep_weights
                else "re-training each (study.keep_weights is off)"
            )
            print(
                f"writing the neural-code reports of {len(todo)} Pareto member(s), {source} "
                "(tracking.report: false skips them)...",
                file=sys.stderr,
            )
        bar = tqdm(
            todo,
            desc="reports",
            unit="report",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not progress,
        )
        try:
            for number in bar:
                report_trial(study, number, config, base / f"trial-{number}", log=log)
                written += 1
        except Exception as err:
            print(f"codenas: warning: front reports not written: {err}", file=sys.stderr)
            return
        finally:
            bar.close()
    if progress:
        print(
            f"reports: {base}/trial-N/report.html ({written} new, {kept} kept)",
            file=sys.stderr,
        )


def run_queued(config: Config, study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Run the study's waiting trials up to trial ``number`` (Optuna runs the oldest first),
    then the reports of new front members, as a search would.

    Returns:
        Trial ``number`` after it ran.
    """
    import optuna

    waiting = [
        t.number
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if t.number <= number
    ]
    if waiting:
        study = search(config, n_trials=len(waiting))
    return study.get_trials(deepcopy=False)[number]
