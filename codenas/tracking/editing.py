"""MLflow calls of the edits made to a trained network: ``codenas erase``, ``distil``, ``edit``.

An edit is logged as one top-level run, like a ``codenas train`` run (params, metrics, text
files and the edited or distilled model in MLflow's PyTorch flavour, through
:func:`codenas.tracking.runs.log_trained`), tagged ``codenas.role`` = ``erase``, ``distil``
or ``edit`` and linked to the network it came from by ``codenas.source_run_id`` (the source's
MLflow run, when it has one), ``codenas.source_study`` / ``codenas.source_trial`` (a search
trial) and ``codenas.source_kind``. Such a run is itself a source for the next edit or a report: its
``config.yaml`` and ``codenas.spec`` tag rebuild the network, its model reloads the weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from codenas.tracking.runs import (
    ROLE_TAG,
    client_for,
    log_trained,
)

if TYPE_CHECKING:
    from torch import nn

EDIT_ROLES = ("erase", "distil", "edit")
SOURCE_RUN_TAG = "codenas.source_run_id"


def run_experiment_name(uri: str, run_id: str) -> str | None:
    """The name of the experiment holding ``run_id`` (``None`` if it cannot be read)."""
    with contextlib.suppress(Exception):
        client = client_for(uri)
        run = client.get_run(run_id)
        return str(client.get_experiment(run.info.experiment_id).name)
    return None


def log_edit(
    uri: str,
    experiment: str,
    *,
    role: str,
    run_name: str,
    model: nn.Module,
    input_example: Any,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    texts: Mapping[str, str],
) -> tuple[str, str]:
    """Log one edit run (``role`` ``erase``, ``distil`` or ``edit``) with its model.

    Args:
        uri, experiment: where to log (the experiment is created if missing).
        role: ``"erase"``, ``"distil"`` or ``"edit"``: the ``codenas.role`` tag.
        run_name: the run's name in the UI.
        model: the edited (or distilled) module, logged as ``model``.
        input_example: a few input rows (numpy), fixing the model signature.
        params, metrics: as MLflow params (nested dicts flattened) and metrics.
        tags: more tags; the source links (``codenas.source_*``) among them.
        texts: text artifacts by file name (``config.yaml``, ``spec.yaml``, a report).

    Returns:
        ``(run_id, model_uri)``.
    """
    if role not in EDIT_ROLES:
        raise ValueError(f"role must be one of {EDIT_ROLES}, got {role!r}")
    return log_trained(
        uri,
        experiment,
        run_name=run_name,
        model=model,
        input_example=input_example,
        params=params,
        metrics=metrics,
        tags={**tags, ROLE_TAG: role},
        texts=texts,
    )
