"""MLflow and study bookkeeping for picking, right-sizing, training and reports.

The search itself logs through :mod:`codenas.tracking`; this module holds the few calls
the later steps make on the runs it left: tag a pick, add recomputed metrics to a trial's run,
log a fully trained model, read a run back and attach report files. It reuses the tracking
module's client (one quick attempt per request) and experiment helpers. The ``tracking``
package is the only place of codenas that imports ``mlflow``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenas.errors import ConfigError, StorageError, first_line
from codenas.tracking.client import ensure_experiment, flatten, make_client, quote, search_all_runs
from codenas.urls import mask_url

if TYPE_CHECKING:
    import optuna
    from torch import nn

    from codenas.config import Config
    from codenas.spaces import Spec

_log = logging.getLogger(__name__)

PICKED_TAG = "codenas.picked"
ROLE_TAG = "codenas.role"
MODEL_ROLES = ("train", "erase", "distil", "edit")  # runs that log their own model and config
SPEC_TAG = "codenas.spec"


# ----------------------------------------------------------------------------- study config


def study_config(
    study: optuna.Study,
    storage: str | None = None,
    tracking_uri: str | None = None,
    *,
    tracking: bool = True,
) -> Config:
    """The config a study was created with, with usable storage and tracking URLs.

    The stored config has passwords masked (``***``); ``storage`` and ``tracking_uri`` replace
    them (pass the URLs the study was opened with). ``tracking=False`` turns MLflow tracking
    off (for work that logs nothing, such as re-training a trial to read its code).

    Raises:
        ConfigError: the study was not created by codenas, or a needed URL is still masked.
    """
    from codenas.config import Config
    from codenas.search.storage import stored_config

    data = stored_config(study).to_dict()
    if storage:
        data["study"]["storage"] = storage
    if tracking_uri:
        data["tracking"]["uri"] = tracking_uri
    if not tracking:
        data["tracking"]["enabled"] = False
    if "***" in data["study"]["storage"]:
        raise ConfigError(
            f"study {study.study_name!r}: its storage URL has a masked password; pass --storage"
        )
    if "***" in data["tracking"]["uri"] and data["tracking"]["enabled"]:
        raise ConfigError(
            f"study {study.study_name!r}: its tracking URI has a masked password; "
            "pass --tracking-uri"
        )
    return Config.from_dict(data, source=f"study {study.study_name!r}")


# ----------------------------------------------------------------------------- clients


def sqlite_missing(uri: str) -> bool:
    """True for a ``sqlite:///`` URI whose file does not exist (opening it would create it)."""
    if not uri.startswith("sqlite:///"):
        return False
    path = uri.removeprefix("sqlite:///")
    return path not in ("", ":memory:") and not Path(path).exists()


def client_for(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri``; :class:`StorageError` if it does not answer or a
    SQLite file is missing (it is never created here)."""
    import os

    # Downloads (a run's config.yaml, a logged model) print no progress bars on the terminal.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if sqlite_missing(uri):
        raise StorageError(
            f"{uri}: no MLflow database there ({uri.removeprefix('sqlite:///')} does not exist "
            f"in {Path.cwd()}); pass --tracking-uri"
        )
    return make_client(uri)


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the block, then restore the previous URI."""
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


# ----------------------------------------------------------------------------- pick


def mark_picked(uri: str, study_name: str, run_id: str, summary: str) -> list[str]:
    """Tag ``run_id`` ``codenas.picked=true`` and untag the study's previous pick.

    The previous pick (any run of the same study in the same experiment with
    ``codenas.picked=true``) gets ``codenas.picked=false``; the study's parent run gets
    ``codenas.picked_trial`` (the chosen trial number).

    Returns:
        The run ids that were untagged.
    """
    from mlflow.entities import RunTag

    client = client_for(uri)
    run = client.get_run(run_id)
    experiment_id = run.info.experiment_id
    previous = search_all_runs(
        client,
        [experiment_id],
        f"tags.`codenas.study` = {quote(study_name)} and tags.`{PICKED_TAG}` = 'true'",
    )
    untagged = []
    for old in previous:
        if old.info.run_id != run_id:
            client.set_tag(old.info.run_id, PICKED_TAG, "false")
            untagged.append(old.info.run_id)
    client.log_batch(
        run_id,
        tags=[
            RunTag(PICKED_TAG, "true"),
            RunTag("codenas.picked_rule", summary[:5000]),
            RunTag("codenas.picked_at", time.strftime("%Y-%m-%dT%H:%M:%S")),
        ],
    )
    parent = run.data.tags.get("mlflow.parentRunId")
    trial = run.data.tags.get("codenas.trial_number")
    if parent and trial is not None:
        client.set_tag(parent, "codenas.picked_trial", trial)
    return untagged


# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What codenas needs of an MLflow run to rebuild its network.

    Attributes:
        run_id, experiment_id: the run.
        tags, params, metrics: as MLflow stores them.
        config: the search (or training) config logged with the run or its parent, as a dict;
            ``None`` if none was found.
        kind: ``"trial"`` (a child run of a search), ``"train"`` / ``"erase"`` /
            ``"distil"`` (a run that logged its own model: ``codenas train``, ``erase``,
            ``distil``) or ``"other"``.
    """

    run_id: str
    experiment_id: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    config: dict[str, Any] | None
    kind: str

    @property
    def spec(self) -> dict[str, Any] | None:
        text = self.tags.get(SPEC_TAG)
        return None if text is None else dict(json.loads(text))


_SHORT_ID = re.compile(r"[0-9a-f]{6,31}")


def _by_prefix(client: Any, prefix: str, uri: str) -> str | None:
    """The one run whose id starts with ``prefix`` (``codenas front`` shows 12 characters),
    or ``None`` when ``prefix`` is not a short id or no run has it.

    Raises:
        StorageError: several runs start with it.
    """
    if not _SHORT_ID.fullmatch(prefix):
        return None
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = [
        r.info.run_id
        for r in search_all_runs(client, experiments)
        if r.info.run_id.startswith(prefix)
    ]
    if len(found) > 1:
        raise StorageError(
            f"run id {prefix!r} is ambiguous at {mask_url(uri)}: {len(found)} runs start with "
            f"it ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}); give more of it"
        )
    return found[0] if found else None


def read_run(uri: str, run_id: str) -> RunRecord:
    """Read a run, its spec tag and the config logged with it (or with its parent run)."""
    import yaml

    client = client_for(uri)
    try:
        run = client.get_run(run_id)
    except Exception as err:
        full = _by_prefix(client, run_id, uri)
        if full is None:
            raise StorageError(
                f"no MLflow run {run_id!r} at {mask_url(uri)} ({first_line(err, 200)})"
            ) from None
        run_id, run = full, client.get_run(full)
    tags = dict(run.data.tags)
    role = tags.get(ROLE_TAG)
    # A run that logged its own model and config.yaml (codenas train, erase, distil), a trial
    # (its config is on the study's parent run), or something else.
    kind = role if role in MODEL_ROLES else ("trial" if "codenas.trial_number" in tags else "other")
    config = None
    holder = run_id if kind in MODEL_ROLES else tags.get("mlflow.parentRunId")
    if holder:
        import tempfile

        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = client.download_artifacts(holder, "config.yaml", tmp)
                config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except Exception as err:  # the caller falls back to the run's own tags and params
            _log.warning(
                "run %s: the config.yaml of run %s was not read (%s); using the run's tags",
                run_id,
                holder,
                first_line(err, 200),
            )
    return RunRecord(
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        tags=tags,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        config=config,
        kind=kind,
    )


def read_network_run(uri: str, run_id: str) -> tuple[RunRecord, Config]:
    """A run that holds a network (a trial, or a train/erase/distil run) and its config.

    The config is the one logged with the run (or its study's parent run), tracking on
    ``uri``: with it and the ``codenas.spec`` tag the network can be rebuilt and its data read.

    Raises:
        ConfigError: the run has no spec (not a codenas network) or no config.yaml.
    """
    from codenas.config import Config

    record = read_run(uri, run_id)
    if record.kind == "other" or record.spec is None:
        raise ConfigError(
            f"run {run_id} is neither a trial of a codenas search nor a `codenas train`, "
            "erase or distil run (it has no codenas.spec tag)"
        )
    if record.config is None:
        where = "its parent (study) run" if record.kind == "trial" else "the run"
        raise ConfigError(f"run {run_id}: no config.yaml artifact on {where}")
    raw = dict(record.config)
    raw["tracking"] = {**raw.get("tracking", {}), "uri": uri, "enabled": True}
    return record, Config.from_dict(raw, source=f"run {run_id} (config.yaml)")


def log_values(
    uri: str, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str] | None = None
) -> None:
    """Add metrics (and tags) to an existing run, finished or not."""
    from mlflow.entities import Metric, RunTag

    client = client_for(uri)
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
    tag_items = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    for start in range(0, max(1, len(items)), 1000):
        client.log_batch(
            run_id, metrics=items[start : start + 1000], tags=tag_items if start == 0 else []
        )


def set_tags(uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    log_values(uri, run_id, {}, tags)


def log_files(uri: str, run_id: str, paths: Sequence[Path], artifact_path: str) -> None:
    """Attach files to a run under ``artifact_path/``."""
    client = client_for(uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path)


# ----------------------------------------------------------------------------- trained models


def log_trained(
    uri: str,
    experiment: str,
    *,
    run_name: str,
    model: nn.Module,
    input_example: Any,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    texts: Mapping[str, str],
) -> tuple[str, str]:
    """Log one ``codenas train`` run: params, metrics, tags, text files and the model.

    The model goes through MLflow's PyTorch flavour (``mlflow.pytorch.log_model``) in MLflow's
    default, safe ``pt2`` format (``torch.export``; loading needs torch, not codenas); the
    ``input_example`` (a few input rows) fixes the signature, with a dynamic batch size.

    Returns:
        ``(run_id, model_uri)``; the model also loads from ``runs:/<run_id>/model``.
    """
    import mlflow
    import torch
    from mlflow.entities import Metric, Param, RunTag

    client = client_for(uri)
    experiment_id = ensure_experiment(client, experiment, uri)
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    run_id = run.info.run_id
    status = "FAILED"
    try:
        flat = {k: v for k, v in flatten(dict(params)).items()}
        plist = [
            Param(k, v if isinstance(v, str) else json.dumps(v)[:6000]) for k, v in flat.items()
        ]
        now = int(time.time() * 1000)
        mlist = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
        for start in range(0, len(plist), 100):
            client.log_batch(run_id, params=plist[start : start + 100])
        for start in range(0, len(mlist), 1000):
            client.log_batch(run_id, metrics=mlist[start : start + 1000])
        client.log_batch(run_id, tags=[RunTag("mlflow.runName", run_name)])
        for name, text in texts.items():
            client.log_text(run_id, text, name)
        was_training = model.training
        model.eval()  # export the inference graph (BatchNorm running statistics, no dropout)
        with _tracking_uri(uri), mlflow.start_run(run_id=run_id):
            info = mlflow.pytorch.log_model(
                model,
                name="model",
                input_example=input_example,
                # Pinned rather than inferred: inference re-imports the model in a subprocess.
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )
        model.train(was_training)
        status = "FINISHED"
        return run_id, str(info.model_uri)
    finally:
        client.set_terminated(run_id, status=status)


def load_logged_model(uri: str, run_id: str) -> nn.Module:
    """``mlflow.pytorch.load_model`` of a ``codenas train`` run's model."""
    import mlflow

    client_for(uri)  # checks the URI and quiets the download progress bars

    with _tracking_uri(uri):
        return mlflow.pytorch.load_model(f"runs:/{run_id}/model", map_location="cpu")


def load_network(uri: str, run_id: str, spec: Spec) -> nn.Module:
    """The run's logged weights in a fresh module built from ``spec`` (its ``codenas.spec``).

    Raises:
        ConfigError: the logged model's weights do not fit the spec.
    """
    from codenas.spaces import build_model

    logged = load_logged_model(uri, run_id)
    model = build_model(spec)
    try:
        model.load_state_dict(logged.state_dict())
    except (RuntimeError, KeyError) as err:
        raise ConfigError(
            f"run {run_id}: the logged model does not match its spec: {first_line(err, 200)}"
        ) from None
    return model
