"""MLflow tracking: the one layer of codenas that imports mlflow.

=============  ==============================================================================
module         what it holds
=============  ==============================================================================
client.py      the MLflow client with bounded retries and warnings; experiments; run creation
tracker.py     :class:`MlflowTracker`, registered as the search's ``"mlflow"`` tracker: one
               parent run per study, one nested run per trial, the Pareto front kept in step
writer.py      the background thread that ends trials' runs off the critical path
fresh_db.py    a new local SQLite database copied from a cached empty one (no migrations)
preload.py     what a ``--workers`` fork server imports for this tracker (entry point)
runs.py        the runs of the steps after a search: picking, right-sizing, training, reports
links.py       links into the MLflow UI
editing.py     the runs of ``codenas erase`` and ``codenas distil``
=============  ==============================================================================

The search (:mod:`codenas.search`) calls the tracker only through the interface it owns
(:mod:`codenas.search.tracker`); importing this package registers ``"mlflow"`` there.
"""

from __future__ import annotations

from codenas.errors import TrackingUnavailable
from codenas.tracking.client import (
    RetryingClient,
    create_run_once,
    default_artifact_location,
    ensure_experiment,
    flatten,
    make_client,
)
from codenas.tracking.links import (
    codenas_experiments,
    front_links,
    front_view_state,
    runs_table_url,
    ui_command,
)
from codenas.tracking.tracker import PARENT_ATTR, RUN_ATTR, STATUS_OF_STATE, MlflowTracker
from codenas.urls import mask_url

__all__ = [
    "PARENT_ATTR",
    "RUN_ATTR",
    "STATUS_OF_STATE",
    "MlflowTracker",
    "RetryingClient",
    "TrackingUnavailable",
    "codenas_experiments",
    "create_run_once",
    "default_artifact_location",
    "ensure_experiment",
    "flatten",
    "front_links",
    "front_view_state",
    "make_client",
    "mask_url",
    "runs_table_url",
    "ui_command",
]
