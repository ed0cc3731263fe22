"""MLflow tracking of a study: one parent run per study, one nested child run per trial.

The only module of codenas that imports mlflow. It plugs into the search in two places:
:meth:`MlflowTracker.trial_started` opens the trial's run as soon as its architecture is sampled
(so a killed process leaves a run that can be marked killed, never a silent gap), and the
tracker is an Optuna callback (``study.optimize(..., callbacks=[tracker])``) that logs the
trial's metrics, ends its run with the trial's real state, and keeps the ``codenas.pareto`` tags
and the parent's Pareto artifacts in step with ``study.best_trials``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from codenas.errors import StorageError

if TYPE_CHECKING:
    import optuna
    from mlflow.tracking import MlflowClient

    from codenas.config import Config
    from codenas.spaces import Spec

_log = logging.getLogger(__name__)

PARENT_ATTR = "codenas.mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"
STATUS_OF_STATE = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (database and http URLs alike)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password is not None:
            return parsed.render_as_string(hide_password=True)
        return url
    except Exception:  # not a database URL
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:6000]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a local SQLite store: ``mlartifacts/`` beside the database file (absolute URI).

    MLflow's own default (``./mlruns``) would be created in whatever directory the search runs
    in, and an ``./mlruns`` folder silently switches MLflow's default store, so codenas keeps
    the artifacts next to the database instead.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    return (db.resolve().parent / "mlartifacts").as_uri()


def make_client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` on ``tracking_uri``, checked to answer (``StorageError`` if not)."""
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()  # after the import: importing mlflow configures its loggers

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)
    except Exception as err:  # mlflow raises many types for an unreachable backend
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise StorageError(
            f"cannot use MLflow tracking URI {mask_url(tracking_uri)!r}: {reason}"
        ) from None
    return client


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (race-safely) if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise StorageError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
                "or set tracking.experiment to another name"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name,
            artifact_location=default_artifact_location(tracking_uri),
            tags={"mlflow.experimentKind": "custom_model_development", "codenas": "true"},
        )
    except Exception:  # another worker created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


class MlflowTracker:
    """Logs a study to MLflow (see the module docstring).

    Args:
        config: the search config (logged on the parent run, storage password masked).
        study: the Optuna study.
        created: whether this process created the study; only the creator creates the parent
            run, the others wait for its id, so concurrent workers never make two parents.
        wait_parent: seconds a non-creator waits for the parent run id before creating one.
    """

    def __init__(
        self, config: Config, study: optuna.Study, *, created: bool, wait_parent: float = 30.0
    ) -> None:
        self.config = config
        self.study = study
        self.uri = config.tracking.uri
        self.client = make_client(self.uri)
        self.experiment_id = ensure_experiment(self.client, config.experiment, self.uri)
        self.parent_run_id = self._parent_run(created, wait_parent)
        self._pareto_tags: dict[int, bool] = {}
        # Runs opened by the callback for trials that failed before their run existed; a
        # finished trial cannot take the run id as an attribute any more.
        self._orphan_runs: dict[int, str] = {}
        self._front_key: tuple[Any, ...] | None = None
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
        if not created:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                from optuna import load_study

                fresh = load_study(study_name=study.study_name, storage=study._storage)
                run_id = fresh.user_attrs.get(PARENT_ATTR)
                if self._parent_exists(run_id):
                    return str(run_id)
                found = self._find_parent()
                if found:
                    return found
                time.sleep(0.5)
        found = self._find_parent()
        if found:
            study.set_user_attr(PARENT_ATTR, found)
            return found
        return self._create_parent()

    def _find_parent(self) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`codenas.study` = '{self.study.study_name}' "
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
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.study.study_name,
            tags={
                "codenas.study": self.study.study_name,
                "codenas.role": "study",
                "codenas.storage": mask_url(self.config.study.storage),
                "mlflow.note.content": (
                    f"codenas study `{self.study.study_name}`: one nested run per trial. "
                    "Filter the Pareto front with tags.`codenas.pareto` = 'true'."
                ),
            },
        )
        run_id = run.info.run_id
        params = [Param(k, _param_value(v)) for k, v in sorted(flatten(cfg).items())]
        for chunk in _chunks(params, 100):
            self.client.log_batch(run_id, params=chunk)
        import yaml

        self.client.log_text(run_id, yaml.safe_dump(cfg, sort_keys=False), "config.yaml")
        self.study.set_user_attr(PARENT_ATTR, run_id)
        return run_id

    # ----------------------------------------------------------------------- trial runs

    def trial_started(
        self, trial: optuna.Trial, spec: Spec | None, retry_of: int | None = None
    ) -> str:
        """Open the trial's child run (RUNNING) and record its id on the trial.

        ``retry_of`` is the number of the trial this one re-runs (its worker died); the run is
        linked to that trial's run by the tags ``codenas.retry_of_trial`` / ``_run``.
        """
        from mlflow.entities import Param

        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "codenas.study": self.study.study_name,
            "codenas.trial_number": str(trial.number),
            "codenas.pareto": "false",
        }
        if retry_of is not None:
            tags["codenas.retry_of_trial"] = str(retry_of)
            origin = self._run_of_trial(retry_of)
            if origin:
                tags["codenas.retry_of_run"] = origin
        if spec is not None:
            tags["codenas.spec"] = spec.to_json()
        run = self.client.create_run(
            self.experiment_id, run_name=f"trial-{trial.number}", tags=tags
        )
        params = {k: v for k, v in trial.params.items()}
        if spec is not None:
            params.update(spec.to_dict())
        self.client.log_batch(
            run.info.run_id, params=[Param(k, _param_value(v)) for k, v in params.items()]
        )
        trial.set_user_attr(RUN_ATTR, run.info.run_id)
        return run.info.run_id

    def _run_of_trial(self, number: int) -> str | None:
        try:
            trial = self.study.get_trials(deepcopy=False)[number]
        except IndexError:
            return None
        return trial.user_attrs.get(RUN_ATTR)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: log the finished trial, end its run, refresh the Pareto tags."""
        from mlflow.entities import Metric

        run_id = trial.user_attrs.get(RUN_ATTR) or self._orphan_runs.get(trial.number)
        if run_id is None:  # the trial failed before its run was opened (e.g. in sampling)
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"trial-{trial.number}",
                tags={
                    "mlflow.parentRunId": self.parent_run_id,
                    "codenas.study": study.study_name,
                    "codenas.trial_number": str(trial.number),
                },
            )
            run_id = run.info.run_id
            self._orphan_runs[trial.number] = run_id
        now = int(time.time() * 1000)
        values = dict(trial.user_attrs.get("metrics", {}))
        metrics = [Metric(k, float(v), now, 0) for k, v in sorted(values.items())]
        state = trial.state.name
        tags = {"codenas.state": state, "codenas.pareto": "false"}
        reason = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason")
        if reason:
            tags["codenas.fail_reason" if state == "FAIL" else "codenas.prune_reason"] = str(
                reason
            )[:8000]
        from mlflow.entities import RunTag

        for i, chunk in enumerate(_chunks(metrics, 1000) if metrics else [[]]):
            self.client.log_batch(
                run_id, metrics=chunk, tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else []
            )
        if trial.user_attrs.get("fail_traceback"):
            self.client.log_text(run_id, trial.user_attrs["fail_traceback"], "traceback.txt")
        self.client.set_terminated(run_id, status=STATUS_OF_STATE.get(state, "FAILED"))
        self._pareto_tags[trial.number] = False
        self.update_front(study)

    # ----------------------------------------------------------------------- Pareto front

    def update_front(self, study: optuna.Study) -> None:
        """Make every child run's ``codenas.pareto`` tag agree with ``study.best_trials``,
        and refresh ``pareto_front.{json,csv,png}`` on the parent when the front changed."""
        from codenas.search import pareto

        trials = study.get_trials(deepcopy=False)
        front = {t.number for t in study.best_trials}
        for t in trials:
            run_id = t.user_attrs.get(RUN_ATTR)
            if run_id is None:
                continue
            desired = t.number in front
            if self._pareto_tags.get(t.number) is not desired:
                self.client.set_tag(run_id, "codenas.pareto", "true" if desired else "false")
                self._pareto_tags[t.number] = desired
        rows = pareto.front_rows(study)
        key = tuple((r.trial, tuple(r.values.values())) for r in rows)
        if key == self._front_key:
            return
        self._front_key = key
        names = pareto.objective_names(study)
        self.client.log_text(self.parent_run_id, pareto.to_json(rows), "pareto_front.json")
        self.client.log_text(self.parent_run_id, pareto.to_csv(rows, names), "pareto_front.csv")
        if rows:
            fig = pareto.plot_front(study)
            self.client.log_figure(self.parent_run_id, fig, "pareto_front.png")

    def reconcile(self) -> int:
        """Mark runs of trials that ended without this process (killed workers) as KILLED.

        Returns the number of runs fixed.
        """
        states = {t.user_attrs.get(RUN_ATTR): t for t in self.study.get_trials(deepcopy=False)}
        running = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`codenas.study` = '{self.study.study_name}' "
                "and attributes.status = 'RUNNING'"
            ),
            max_results=1000,
        )
        fixed = 0
        for run in running:
            trial = states.get(run.info.run_id)
            if trial is None or not trial.state.is_finished():
                continue
            self.client.set_tag(run.info.run_id, "codenas.state", trial.state.name)
            self.client.set_terminated(run.info.run_id, status="KILLED")
            fixed += 1
        return fixed

    def set_parent_status(self, status: str) -> None:
        self.client.update_run(self.parent_run_id, status=status)

    def runs_url(self) -> str | None:
        """The MLflow UI link to this experiment's runs table, for an http tracking URI."""
        if self.uri.startswith(("http://", "https://")):
            return f"{self.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs"
        return None


def ui_command(tracking_uri: str) -> str:
    """The shell command that opens the MLflow UI on ``tracking_uri``."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"mlflow ui --backend-store-uri {mask_url(tracking_uri)}"
