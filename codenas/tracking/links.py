"""Links into the MLflow UI for codenas experiments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codenas.urls import mask_url

if TYPE_CHECKING:
    pass

from codenas.tracking.client import make_client


def codenas_experiments(tracking_uri: str) -> list[tuple[str, str]]:
    """``(name, id)`` of every experiment codenas created on ``tracking_uri``."""
    client = make_client(tracking_uri)
    found = client.search_experiments(filter_string="tags.codenas = 'true'", max_results=1000)
    return [(e.name, e.experiment_id) for e in found]


def runs_table_url(base: str, experiment_id: str) -> str:
    """The MLflow UI's training-runs table of an experiment (MLflow 3 opens on an overview)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"


def ui_command(tracking_uri: str) -> str:
    """The shell command that opens the MLflow UI on ``tracking_uri``."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"mlflow ui --backend-store-uri {mask_url(tracking_uri)}"
