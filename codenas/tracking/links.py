"""Links into the MLflow UI for codenas experiments, landing on a study's Pareto front.

MLflow 3.17's UI opens an experiment in its GenAI mode, on an overview page, with children
collapsed under their parent and no metric columns. Two things it supports make a link land
on the front instead (read from the UI's bundle and checked in a browser,
``tests/cli/test_ui_browser.py``):

- ``?workflowType=machine_learning`` selects the "Model training" runs table;
- ``?viewStateShareKey=KEY`` loads a *shared view*: the JSON in the experiment tag
  ``mlflow.sharedViewState.KEY`` (what the UI's own "Share" button writes), holding the search
  filter, the sort and the visible columns. The filter on ``codenas.pareto`` leaves out the
  parent run, so the front's trial runs are the table's rows, not collapsed under it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from codenas.tracking.client import make_client
from codenas.urls import is_server, mask_url

SHARED_VIEW_TAG = "mlflow.sharedViewState."
"""Prefix of the experiment tag that holds a shared view of the runs table (MLflow UI)."""


def codenas_experiments(tracking_uri: str) -> list[tuple[str, str]]:
    """``(name, id)`` of every experiment codenas created on ``tracking_uri``."""
    client = make_client(tracking_uri)
    found = client.search_experiments(filter_string="tags.codenas = 'true'", max_results=1000)
    return [(e.name, e.experiment_id) for e in found]


def runs_table_url(base: str, experiment_id: str, view: str | None = None) -> str:
    """The MLflow UI's training-runs table of an experiment, with the shared view ``view``."""
    query: dict[str, str] = {"workflowType": "machine_learning"}
    if view:
        query["viewStateShareKey"] = view
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{urlencode(query)}"


def front_view_key(study_name: str) -> str:
    """The shared-view key of a study's front (tag keys allow letters, digits, ``_-./``)."""
    return "codenas-front-" + re.sub(r"[^A-Za-z0-9_.\-]", "-", study_name)


def front_view_state(
    study_name: str, objectives: Sequence[tuple[str, str]], space: str | None = None
) -> dict[str, Any]:
    """The runs-table state that shows a study's Pareto front.

    Args:
        study_name: the study (its trial runs carry ``codenas.study``).
        objectives: ``(metric, direction)`` pairs; the table is sorted by the first one, best
            first, and shows each as a column.
        space: the space name; its layer widths (``widths``, ``channels``) become a column.

    Returns:
        The JSON-serialisable state the MLflow UI reads from a shared view.
    """
    name = study_name.replace("'", "\\'")
    from codenas.spaces import SPACES, layers_field

    layers = [f"params.`{layers_field(space)}`"] if space in SPACES else []
    columns = [
        "tags.`codenas.trial_number`",
        *(f"metrics.`{metric}`" for metric, _ in objectives),
        *layers,
        "params.`activation`",
    ]
    first, direction = objectives[0] if objectives else ("val_accuracy", "maximize")
    return {
        "searchFilter": f"tags.`codenas.pareto` = 'true' and tags.`codenas.study` = '{name}'",
        "orderByKey": f"metrics.`{first}`",
        "orderByAsc": direction == "minimize",
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs",
        "datasetsFilter": [],
        "selectedColumns": columns,
        "columnOrder": columns,
    }


def save_front_views(tracking_uri: str, experiment_id: str) -> list[tuple[str, str]]:
    """Write the shared view of each study's front in an experiment; ``(study, key)`` pairs.

    The studies are the experiment's parent runs (``codenas.role = study``); their
    ``objectives`` and ``space.name`` parameters give the columns and the sort.
    """
    client = make_client(tracking_uri)
    parents = client.search_runs(
        [experiment_id], filter_string="tags.`codenas.role` = 'study'", max_results=1000
    )
    saved = []
    for run in sorted(parents, key=lambda r: r.info.start_time or 0):
        study = run.data.tags.get("codenas.study")
        if not study:
            continue
        try:
            objectives = [
                (o["metric"], o["direction"]) for o in json.loads(run.data.params["objectives"])
            ]
        except (KeyError, ValueError, TypeError):
            objectives = []
        state = front_view_state(study, objectives, run.data.params.get("space.name"))
        key = front_view_key(study)
        client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(state))
        saved.append((study, key))
    return saved


def front_links(tracking_uri: str, base: str) -> list[tuple[str, str, str]]:
    """``(experiment, study, url)``: a link to each codenas study's front on ``base``.

    Writes each front's shared view (an experiment tag) on the way; an experiment with no
    study yet gets a link to its runs table.
    """
    links = []
    for name, experiment_id in codenas_experiments(tracking_uri):
        views = save_front_views(tracking_uri, experiment_id)
        if not views:
            links.append((name, "", runs_table_url(base, experiment_id)))
        for study, key in views:
            links.append((name, study, runs_table_url(base, experiment_id, key)))
    return links


def ui_command(tracking_uri: str) -> str:
    """The shell command that opens the MLflow UI on ``tracking_uri``."""
    if is_server(tracking_uri):
        return f"open {tracking_uri}"
    return f"mlflow ui --backend-store-uri {mask_url(tracking_uri)}"
