"""A new MLflow SQLite file from the cached template (codenas/tracking/fresh_db.py) is the
database MLflow's own migrations make, and nothing else is ever written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from codenas.tracking import fresh_db


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CODENAS_CACHE_DIR", str(cache))
    monkeypatch.delenv("CODENAS_NO_DB_TEMPLATE", raising=False)
    return cache


def _schema(path: Path) -> list[tuple[str, list[str]]]:
    """Every table's and index's definition, its lines sorted: MLflow's own migrations list a
    table's constraints in an order that varies from one run to the next (hash seeds)."""
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return sorted(
            (name, sorted(line.strip().rstrip(",") for line in sql.splitlines()))
            for name, sql in rows
        )


def _rows(path: Path, table: str, columns: str) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return sorted(con.execute(f"SELECT {columns} FROM {table}"))


def test_a_seeded_database_is_the_one_mlflow_makes(tmp_path: Path, monkeypatch) -> None:
    # MLflow's own database, made in this directory ...
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "seeded").mkdir()
    own = tmp_path / "mlflow" / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{own}").search_experiments()
    # ... and one seeded from the template, in the same directory.
    seeded = tmp_path / "seeded" / "mlflow.db"
    assert fresh_db.seed(f"sqlite:///{seeded}")
    assert fresh_db.template_path().exists()
    assert _schema(seeded) == _schema(own)
    assert _rows(seeded, "alembic_version", "*") == _rows(own, "alembic_version", "*")
    assert _rows(seeded, "workspaces", "*") == _rows(own, "workspaces", "*")
    # Experiment 0's artifact location depends on the directory: it is MLflow's, not the
    # template's.
    columns = "experiment_id, name, artifact_location, lifecycle_stage"
    assert _rows(seeded, "experiments", columns) == _rows(own, "experiments", columns)
    # MLflow uses the seeded file as its own: no migration, and runs log.
    client = MlflowClient(tracking_uri=f"sqlite:///{seeded}")
    experiment = client.create_experiment("e")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_only_a_missing_local_file_is_written(tmp_path: Path, monkeypatch) -> None:
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"not touched")
    assert not fresh_db.seed(f"sqlite:///{existing}")
    assert existing.read_bytes() == b"not touched"
    assert not fresh_db.seed("http://127.0.0.1:5000")
    assert not fresh_db.seed(f"sqlite:///{tmp_path / 'no-such-dir' / 'm.db'}")
    assert not (tmp_path / "no-such-dir").exists()
    monkeypatch.setenv("CODENAS_NO_DB_TEMPLATE", "1")
    assert not fresh_db.seed(f"sqlite:///{tmp_path / 'off.db'}")
    assert not (tmp_path / "off.db").exists()
    # No temporary file is left beside the database.
    monkeypatch.delenv("CODENAS_NO_DB_TEMPLATE")
    assert fresh_db.seed(f"sqlite:///{tmp_path / 'new.db'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "existing.db", "new.db"]


def test_an_unusable_template_falls_back_to_mlflow(tmp_path: Path) -> None:
    template = fresh_db.template_path()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"garbage")  # a broken cache file: not a database
    target = tmp_path / "m.db"
    assert not fresh_db.seed(f"sqlite:///{target}")
    assert not target.exists()  # MLflow then creates it itself
    MlflowClient(tracking_uri=f"sqlite:///{target}").search_experiments()
    assert target.exists()
