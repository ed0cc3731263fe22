"""A new MLflow SQLite file from a cached empty one, not from ~50 schema migrations.

MLflow builds a new SQLite tracking database by running every Alembic migration since its
first release: about 0.8 s on two cores, paid by each search in a fresh directory before its
first trial. :func:`seed` copies instead an empty database that MLflow's own migrations made
once for this MLflow version (kept in the user's cache directory), then sets the two values of
it that depend on where it is: the artifact location of MLflow's ``Default`` experiment (as
MLflow would compute it, from the current directory) and that experiment's creation time.

Only a file that does not exist yet is ever written, atomically (a link that fails if another
process created the file first), so a database that MLflow or another worker made is never
touched. Any failure falls back to MLflow's own path: the file is simply not seeded.
Set ``CODENAS_NO_DB_TEMPLATE=1`` to turn this off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from codenas.cache import cache_dir

_log = logging.getLogger(__name__)


def template_path() -> Path:
    """The cached empty database of the installed MLflow version."""
    import mlflow

    return cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"


def _make_template(path: Path) -> None:
    """Let MLflow create an empty database, then move it to ``path`` (atomically)."""
    from mlflow.tracking import MlflowClient

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        db = Path(tmp) / "empty.db"
        MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments(max_results=1)
        os.replace(db, path)


def _default_artifact_location() -> str:
    """Experiment 0's artifact location, as MLflow's SQLite store computes it."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    return append_to_uri_path(resolve_uri_if_local(DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH), "0")


def seed(tracking_uri: str) -> bool:
    """Create the SQLite file of ``tracking_uri`` from the template if it does not exist.

    Returns:
        Whether the file was created here (``False``: not a local SQLite URI, the file exists,
        or the template could not be used, in which case MLflow creates the file itself).
    """
    if not tracking_uri.startswith("sqlite:///") or os.environ.get("CODENAS_NO_DB_TEMPLATE"):
        return False
    target = Path(tracking_uri.removeprefix("sqlite:///"))
    if str(target) in ("", ":memory:") or target.exists() or not target.parent.is_dir():
        return False
    try:
        template = template_path()
        if not template.exists():
            _make_template(template)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".db", delete=False) as tmp:
            part = Path(tmp.name)
        try:
            shutil.copyfile(template, part)
            now = int(time.time() * 1000)
            with contextlib.closing(sqlite3.connect(part)) as con, con:
                con.execute(
                    "UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                    "last_update_time = ? WHERE experiment_id = 0",
                    (_default_artifact_location(), now, now),
                )
            os.link(part, target)  # fails if the file appeared meanwhile: then it is kept
        finally:
            part.unlink(missing_ok=True)
    except FileExistsError:
        return False
    except Exception as err:  # never worse than MLflow's own migrations
        _log.debug("MLflow database template not used for %s: %s", target, err)
        return False
    return True
