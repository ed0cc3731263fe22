"""The MLflow tracker of a study: one parent run per study, one nested child run per trial.

(The :mod:`codenas.tracking.runs` module holds the calls of the steps after a search:
picking, right-sizing, training, reports. This package is the only one that imports mlflow.)

The only module of codenas that imports mlflow. It plugs into the search in three places:

* :meth:`MlflowTracker.trial_started` (called by the objective) opens the trial's run as soon
  as its architecture is sampled, so a killed process leaves a run that can be marked killed,
  never a silent gap;
* :meth:`MlflowTracker.log_metrics` (called by the objective *before* it returns) logs every
  metric, so Optuna never records a trial COMPLETE whose metrics did not reach MLflow;
* the tracker is an Optuna callback (``study.optimize(..., callbacks=[tracker])``) that ends
  the run with the trial's real state and keeps the ``codenas.pareto`` tags and the parent's
  Pareto artifacts in step with ``study.best_trials``.

An unreachable tracking backend is retried with a bounded exponential back-off and a visible
warning (``tracking.retry_for`` seconds in all, 300 by default); past that bound the trial fails
with the reason and the search stops with a one-line error.

One class in one file (about 490 lines): the tracker's methods share the run bookkeeping of
a study (child runs, Pareto tags, parent artifacts), which splitting would expose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from codenas.errors import TrackingUnavailable, first_line
from codenas.search._optuna_private import best_trials, trials_after
from codenas.search.samplers import code as code_sampler
from codenas.search.samplers import lineage
from codenas.search.storage import CREATED_ATTR, worker_id
from codenas.search.tracker import register_tracker
from codenas.urls import mask_url

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config
    from codenas.spaces import Spec

from codenas.tracking.client import (
    _chunks,
    _param_value,
    create_run_once,
    ensure_experiment,
    flatten,
    make_client,
    quote,
    search_all_runs,
)
from codenas.tracking.writer import BackgroundWriter

_log = logging.getLogger(__name__)

PARENT_ATTR = "codenas.mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"
STATUS_OF_STATE = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
COST_ATTRS = ("cpu_seconds", "wall_seconds")  # a trial's cost (codenas/search/objective.py)


@register_tracker("mlflow")
class MlflowTracker:
    """Logs a study to MLflow (see the module docstring).

    Args:
        config: the search config (logged on the parent run, storage password masked).
        study: the Optuna study.
        created: whether this process created the study; only the creator creates the parent
            run, the others wait for its id, so concurrent workers never make two parents.
        wait_parent: seconds a non-creator waits for the parent run id before creating one.
        plot_interval: least seconds between two redraws of ``pareto_front.png``.
    """

    page_size = 1000  # runs per search_runs request (every page is read)
    owner_grace = 2.0  # seconds another worker's interrupted trial is left to that worker
    trial_attrs = (RUN_ATTR,)  # a retry of a killed trial does not inherit its run id

    def __init__(
        self,
        config: Config,
        study: optuna.Study,
        *,
        created: bool,
        wait_parent: float = 30.0,
        plot_interval: float = 30.0,
    ) -> None:
        self.config = config
        self.study = study
        self.uri = config.tracking.uri
        self.client = make_client(self.uri, retry_for=config.tracking.retry_for)
        self.experiment_id = ensure_experiment(self.client, config.experiment, self.uri)
        self.parent_run_id = self._parent_run(created, wait_parent)
        # Trial number -> child run id and -> its codenas.pareto tag, for every run logged so
        # far by any worker; kept up to date by this process.
        self._runs: dict[int, str] = {}
        self._pareto_tags: dict[int, bool] = {}
        self._load_children()
        self._metrics_logged: set[int] = set()
        self._front_key: tuple[Any, ...] | None = None
        self._plot_key: tuple[Any, ...] | None = None
        # The first plot is due plot_interval after the start (a short search draws it once,
        # at its end).
        self._plot_time = time.monotonic()
        self.plot_interval = plot_interval
        # Set once the backend stayed unreachable: later callbacks then skip MLflow instead
        # of waiting out the back-off again for every trial.
        self.down = False
        # Ending a trial's run and the Pareto tags are written off the trial's critical path
        # (tracking.background; codenas/tracking/writer.py), in order, flushed by flush().
        self._writer = BackgroundWriter() if config.tracking.writes_in_background else None
        self.reconcile()

    # ----------------------------------------------------------------------- parent run

    def _parent_exists(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            run = self.client.get_run(run_id)
        except Exception:
            return False
        return run.info.experiment_id == self.experiment_id

    def _parent_run(self, created: bool, wait: float) -> str:
        study = self.study
        run_id = study.user_attrs.get(PARENT_ATTR)
        if self._parent_exists(run_id):
            return str(run_id)
        # The process that created the study creates the parent run right after it. Another
        # worker that finds a study this young waits for that run rather than racing to make
        # a second one; for an older study the creator is gone, so any worker may create it.
        created_at = float(study.user_attrs.get(CREATED_ATTR, 0.0))
        if not created and time.time() - created_at < wait:
            deadline = created_at + wait
            while time.time() < deadline:
                run_id = study.user_attrs.get(PARENT_ATTR)  # read from the storage each time
                if self._parent_exists(run_id):
                    return str(run_id)
                time.sleep(0.2)
        found = self._find_parent()
        if found:
            study.set_user_attr(PARENT_ATTR, found)
            return found
        return self._create_parent()

    def _find_parent(self) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`codenas.study` = {quote(self.study.study_name)} "
                "and tags.`codenas.role` = 'study'"
            ),
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        return runs[0].info.run_id if runs else None

    def _create_parent(self) -> str:
        from mlflow.entities import Param

        cfg = self.config.to_dict()
        cfg["study"]["storage"] = mask_url(cfg["study"]["storage"])
        cfg["tracking"]["uri"] = mask_url(cfg["tracking"]["uri"])
        run_id = create_run_once(
            self.client,
            self.experiment_id,
            self.study.study_name,
            {
                "codenas.study": self.study.study_name,
                "codenas.role": "study",
                "codenas.storage": mask_url(self.config.study.storage),
                "mlflow.note.content": (
                    f"codenas study `{self.study.study_name}`: one nested run per trial. "
                    "Filter the Pareto front with tags.`codenas.pareto` = 'true'."
                ),
            },
        )
        params = [Param(k, _param_value(v)) for k, v in sorted(flatten(cfg).items())]
        for chunk in _chunks(params, 100):
            self.client.log_batch(run_id, params=chunk)
        import yaml

        self.client.log_text(run_id, yaml.safe_dump(cfg, sort_keys=False), "config.yaml")
        self.study.set_user_attr(PARENT_ATTR, run_id)
        return run_id

    # ----------------------------------------------------------------------- trial runs

    def _open_run(self, number: int, worker: str, extra: Mapping[str, str] | None = None) -> str:
        """Create the child run of trial ``number`` (RUNNING) and remember it."""
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "codenas.study": self.study.study_name,
            "codenas.trial_number": str(number),
            "codenas.pareto": "false",
            "codenas.worker": worker,
            **(extra or {}),
        }
        run_id = create_run_once(self.client, self.experiment_id, f"trial-{number}", tags)
        self._runs[number] = run_id
        self._pareto_tags[number] = False
        return run_id

    def trial_started(
        self, trial: optuna.Trial, spec: Spec | None, retry_of: int | None = None
    ) -> str:
        """Open the trial's child run (RUNNING) and record its id on the trial.

        ``retry_of`` is the number of the trial this one re-runs (its worker died); the run is
        linked to that trial's run by the tags ``codenas.retry_of_trial`` / ``_run``.
        """
        from mlflow.entities import Param

        self._raise_pending()  # a background write that found MLflow down stops the search here
        extra: dict[str, str] = {}
        if retry_of is not None:
            extra["codenas.retry_of_trial"] = str(retry_of)
            origin = self._runs.get(retry_of) or self._run_of_trial(retry_of)
            if origin:
                extra["codenas.retry_of_run"] = origin
        if spec is not None:
            extra["codenas.spec"] = spec.to_json()
        extra.update(self._lineage_tags(trial.user_attrs))
        run_id = self._open_run(trial.number, worker_id(), extra)
        params = dict(trial.params)
        if spec is not None:
            params.update(spec.to_dict())
        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
        trial.set_user_attr(RUN_ATTR, run_id)
        return run_id

    def _lineage_tags(self, attrs: Mapping[str, Any]) -> dict[str, str]:
        """Tags saying which code-sampler rule proposed a trial, from which trial and run, and
        the code values behind it (``codenas.lineage`` = ``shrink<-#12`` in the runs table)."""
        rule = attrs.get(code_sampler.RULE_ATTR)
        if not rule:
            return {}
        tags = {"codenas.rule": str(rule), "codenas.lineage": lineage(dict(attrs))}
        parent = attrs.get(code_sampler.PARENT_ATTR)
        if parent is not None:
            tags["codenas.parent_trial"] = str(parent)
            parent_run = self._runs.get(int(parent)) or self._run_of_trial(int(parent))
            if parent_run:
                tags["codenas.parent_run"] = parent_run
        if attrs.get(code_sampler.REASON_ATTR):
            # MLflow caps a tag at 8,000 characters
            tags["codenas.reason"] = str(attrs[code_sampler.REASON_ATTR])[:5000]
        return tags

    def _logged_run(self, number: int) -> Any:
        """The run of trial ``number`` in MLflow, found by its tags (``None``: none)."""
        runs = list(
            search_all_runs(
                self.client,
                [self.experiment_id],
                f"tags.`codenas.study` = {quote(self.study.study_name)} "
                f"and tags.`codenas.trial_number` = '{number}'",
                page_size=self.page_size,
            )
        )
        return runs[0] if runs else None

    def _run_of_trial(self, number: int) -> str | None:
        try:
            trial = self.study.get_trials(deepcopy=False)[number]
        except IndexError:
            return None
        return trial.user_attrs.get(RUN_ATTR)

    def log_metrics(self, trial: optuna.Trial, metrics: Mapping[str, float]) -> None:
        """Log a trial's metrics to its run; called by the objective before it returns."""
        from mlflow.entities import Metric

        self._raise_pending()
        run_id = trial.user_attrs[RUN_ATTR]
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
        for chunk in _chunks(batch, 1000):
            self.client.log_batch(run_id, metrics=chunk)
        self._metrics_logged.add(trial.number)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: end the trial's run with its state, refresh the Pareto tags.

        With background writes (``tracking.background``; by default for a tracking server)
        this is queued for the background writer and the next trial starts at once;
        :meth:`flush` waits for it.
        """
        if self.down:
            return
        self._raise_pending()
        if self._writer is not None:
            self._writer.submit(self._end_trial, study, trial)
        else:
            self._end_trial(study, trial)

    def flush(self) -> None:
        """Wait for the background writes, then raise the ``TrackingUnavailable`` one of them
        met (the search then stops as when a synchronous write meets it)."""
        if self._writer is not None:
            self._writer.flush()
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._writer is not None and self._writer.error is not None:
            err, self._writer.error = self._writer.error, None
            raise err

    def _end_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.down:
            return
        try:
            self._finish(study, trial)
        except TrackingUnavailable:
            self.down = True
            raise
        except Exception as err:  # the trial is stored; its run is ended later by reconcile
            _log.warning(
                "the run of trial %d was not ended (%s); the end of the search ends it",
                trial.number,
                first_line(err, with_type=True),
            )

    def _finish(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self._run_id(trial)
        if run_id is None:  # the trial failed before its run was opened (e.g. in sampling)
            run_id = self._open_run(trial.number, worker_id())
        trials = trials_after(study, trial)  # one read, shared with the other callbacks
        best = best_trials(study, trials)
        in_front = any(t.number == trial.number for t in best)
        state = trial.state.name
        tags = {"codenas.state": state, "codenas.pareto": "true" if in_front else "false"}
        if trial.user_attrs.get("rung") is not None:  # the schedule's rung it reached
            tags["codenas.rung"] = str(trial.user_attrs["rung"])
        reason = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason")
        if reason:
            key = "codenas.fail_reason" if state == "FAIL" else "codenas.prune_reason"
            tags[key] = str(reason)[:8000]
        now = int(time.time() * 1000)
        values: dict[str, Any] = {}
        if trial.number not in self._metrics_logged:  # a failed or pruned trial's partial values
            values.update(trial.user_attrs.get("metrics", {}))
        # What the trial cost, measured until its values were returned (search/objective.py).
        values.update({k: trial.user_attrs[k] for k in COST_ATTRS if k in trial.user_attrs})
        metrics = [Metric(k, float(v), now, 0) for k, v in sorted(values.items())]
        # One batch carries the final tags (the Pareto tag included) and any late metrics.
        for i, chunk in enumerate(_chunks(metrics, 1000) if metrics else [[]]):
            batch_tags = [RunTag(k, v) for k, v in tags.items()] if i == 0 else []
            self.client.log_batch(run_id, metrics=chunk, tags=batch_tags)
        if trial.user_attrs.get("fail_traceback"):
            self.client.log_text(run_id, trial.user_attrs["fail_traceback"], "traceback.txt")
        self.client.set_terminated(run_id, status=STATUS_OF_STATE.get(state, "FAILED"))
        self._pareto_tags[trial.number] = in_front
        self._metrics_logged.discard(trial.number)
        self.update_front(study, best, trials=trials)

    def trial_killed(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Heartbeat hook: the worker of ``trial`` died; end its run as KILLED with the reason."""
        if self.down:
            return
        run_id = self._run_id(trial)
        if run_id is None:  # killed before its run was opened: open one, so none is missing
            run_id = self._open_run(trial.number, str(trial.user_attrs.get("worker", "?")))
        self.client.set_tag(run_id, "codenas.state", "FAIL")
        self.client.set_tag(run_id, "codenas.fail_reason", self._killed_reason(trial))
        self.client.set_terminated(run_id, status="KILLED")
        self._pareto_tags[trial.number] = False

    # ----------------------------------------------------------------------- Pareto front

    def _load_children(self) -> None:
        """Read every child run already logged: its trial number and ``codenas.pareto`` tag."""
        children = search_all_runs(
            self.client,
            [self.experiment_id],
            f"tags.mlflow.parentRunId = {quote(self.parent_run_id)}",
            page_size=self.page_size,
        )
        for run in children:
            number = run.data.tags.get("codenas.trial_number")
            if number is None:
                continue
            self._runs[int(number)] = run.info.run_id
            if "codenas.pareto" in run.data.tags:
                self._pareto_tags[int(number)] = run.data.tags["codenas.pareto"] == "true"

    def _run_id(self, trial: optuna.trial.FrozenTrial) -> str | None:
        return trial.user_attrs.get(RUN_ATTR) or self._runs.get(trial.number)

    def update_front(
        self,
        study: optuna.Study,
        best: list[optuna.trial.FrozenTrial] | None = None,
        *,
        final: bool = False,
        trials: list[optuna.trial.FrozenTrial] | None = None,
    ) -> None:
        """Make every child run's ``codenas.pareto`` tag agree with ``study.best_trials``,
        and refresh the parent's Pareto artifacts when the front changed.

        The tags follow every change of the front. The parent's files can wait: the plot
        ``pareto_front.png`` (and its interactive twin ``pareto_front.html``) costs about half
        a second to draw and ``pareto_front.json`` / ``.csv`` two artifact writes, so during a
        search they are rewritten at most every ``plot_interval`` seconds, and always at its
        end (``final``: :func:`codenas.search.study.wrap_up`, also after Ctrl-C or SIGTERM).
        """
        from codenas.search import pareto

        trials = study.get_trials(deepcopy=False) if trials is None else trials
        best = best_trials(study, trials) if best is None else best
        front = {t.number for t in best}
        for t in trials:
            run_id = self._run_id(t)
            if run_id is None:
                continue
            desired = t.number in front
            if self._pareto_tags.get(t.number) is not desired:
                self.client.set_tag(run_id, "codenas.pareto", "true" if desired else "false")
                self._pareto_tags[t.number] = desired
        due = final or time.monotonic() - self._plot_time >= self.plot_interval
        if not due:  # the files wait for the next due call (the end of the search at the latest)
            return
        rows = pareto.front_rows(study, best)
        key = tuple((r.trial, tuple(r.values.values())) for r in rows)
        if key != self._front_key:
            names = pareto.objective_names(study)
            self.client.log_text(self.parent_run_id, pareto.to_json(rows), "pareto_front.json")
            self.client.log_text(self.parent_run_id, pareto.to_csv(rows, names), "pareto_front.csv")
            self._front_key = key
            self._plot_time = time.monotonic()
        if rows and key != self._plot_key:
            fig = pareto.plot_front(study, best)
            self.client.log_figure(self.parent_run_id, fig, "pareto_front.png")
            html = pareto.front_html(study)  # the same front, interactive (plotly)
            self.client.log_text(self.parent_run_id, html, "pareto_front.html")
            self._plot_key = key
            self._plot_time = time.monotonic()

    def _killed_reason(self, trial: optuna.trial.FrozenTrial) -> str:
        return (
            f"worker {trial.user_attrs.get('worker', '?')} died or hung (its process ended on "
            "this machine, or it stopped sending heartbeats for "
            f"{self.config.study.grace_period} s); the trial is retried with "
            f"the same parameters up to study.retries={self.config.study.retries} time(s)"
        )

    def reconcile(self) -> int:
        """End runs left RUNNING by trials that finished without their process's callback.

        A killed worker leaves its trial's run RUNNING (the trial becomes FAIL once its
        heartbeat is stale), and Ctrl-C or a lost tracking server can leave the run of a
        finished trial open. Such runs end as KILLED (FAIL/PRUNED trials) or FINISHED
        (COMPLETE trials, whose metrics were logged before Optuna completed them).

        Returns:
            The number of runs fixed.
        """
        trials = {
            self._run_id(t) or f"no-run-{t.number}": t
            for t in self.study.get_trials(deepcopy=False)
        }
        running = list(
            search_all_runs(
                self.client,
                [self.experiment_id],
                f"tags.`codenas.study` = {quote(self.study.study_name)} "
                "and attributes.status = 'RUNNING'",
                page_size=self.page_size,
            )
        )
        fixed = 0
        # A trial interrupted or killed before its run was opened has none yet: open it, so
        # every trial has exactly one run (it is then ended below like the others).
        # A run opened just before an interrupt, whose id never reached the trial, is found by
        # its tags first (another worker's reconcile must not open a second one).
        # A trial that another live worker ran and recorded as interrupted is that worker's
        # to open, in its own reconcile as it stops: two processes stopping together would
        # otherwise both find no run and both open one. Such trials are looked up again after
        # a moment (a dead owner's trial is then opened here, the moment later).
        by_number = {r.data.tags.get("codenas.trial_number"): r for r in running}
        waited = False
        for trial in list(trials.values()):
            if trial.state.is_finished() and self._run_id(trial) is None:
                found = by_number.get(str(trial.number)) or self._logged_run(trial.number)
                if found is None and self._owned_elsewhere(trial) and not waited:
                    time.sleep(self.owner_grace)
                    waited = True
                    found = self._logged_run(trial.number)
                if found is not None:
                    self._runs[trial.number] = found.info.run_id
                    trials[found.info.run_id] = trial
                    if found.info.status == "RUNNING" and found not in running:
                        running.append(found)
                    continue
                run_id = self._open_run(trial.number, str(trial.user_attrs.get("worker", "?")))
                trials[run_id] = trial
                running.append(self.client.get_run(run_id))
        for run in running:
            trial = trials.get(run.info.run_id)
            if trial is None or not trial.state.is_finished():
                continue
            try:
                self._end_run(run.info.run_id, trial)
            except TrackingUnavailable:
                raise
            except Exception as err:
                # Another process (the trial's own, or another worker's reconcile) may be ending
                # the same run at this moment: then there is nothing left to do.
                if self._still_running(run.info.run_id):
                    _log.warning(
                        "the run of trial %d was not ended (%s)",
                        trial.number,
                        first_line(err, with_type=True),
                    )
                continue
            fixed += 1
        return fixed

    @staticmethod
    def _owned_elsewhere(trial: optuna.trial.FrozenTrial) -> bool:
        """Whether another process ran ``trial`` and recorded how it ended (so is alive to
        open its run): a trial failed by the heartbeat check has no reason of its own."""
        owner = trial.user_attrs.get("worker")
        return owner not in (None, worker_id()) and "fail_reason" in trial.user_attrs

    def _end_run(self, run_id: str, trial: optuna.trial.FrozenTrial) -> None:
        self.client.set_tag(run_id, "codenas.state", trial.state.name)
        reason = trial.user_attrs.get("fail_reason")
        if trial.state.name == "FAIL" and not reason:  # failed by the heartbeat check
            reason = self._killed_reason(trial)
        if reason:
            self.client.set_tag(run_id, "codenas.fail_reason", str(reason)[:8000])
        status = "FINISHED" if trial.state.name == "COMPLETE" else "KILLED"
        self.client.set_terminated(run_id, status=status)

    def _still_running(self, run_id: str) -> bool:
        try:
            return bool(self.client.get_run(run_id).info.status == "RUNNING")
        except Exception:  # cannot tell: say so
            return True

    def set_parent_status(self, status: str) -> None:
        self.client.update_run(self.parent_run_id, status=status)

    def finish_study(self, status: str, totals: Mapping[str, float]) -> None:
        """End the parent run (with its end time) and log the study's totals on it.

        Called by the last process of a study to end (no trial RUNNING); the totals' step is
        the number of trials so far, so a continued study shows how they grew.

        Two workers that end at the same moment may both find themselves last: nothing in
        Optuna's storage lets one of them claim the step atomically. Both then log the same
        totals (read from the same finished trials) at the same step and the same timestamp,
        the last trial's completion time, and MLflow keeps a metric entry identical in key,
        value, step and timestamp once: the record is written once either way.
        """
        from mlflow.entities import Metric

        trials = self.study.get_trials(deepcopy=False)
        step = len(trials)
        metrics = [
            Metric(k, float(v), _totals_stamp(trials), step) for k, v in sorted(totals.items())
        ]
        for chunk in _chunks(metrics, 1000):
            self.client.log_batch(self.parent_run_id, metrics=chunk)
        self.client.set_terminated(self.parent_run_id, status=status)


def _totals_stamp(trials: Sequence[optuna.trial.FrozenTrial]) -> int:
    """The timestamp (ms) of a study's totals: its last trial's completion, the same for every
    process that reads the same trials (now, for a study without a finished trial)."""
    done = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    moment = max(done).timestamp() if done else time.time()
    return int(moment * 1000)
