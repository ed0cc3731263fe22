"""After a command ends, its SQLite stores are whole in their ``.db`` files: the WAL (where
WAL mode keeps recent commits) has been checkpointed into them, so a ``.db`` copied or mailed
alone, without ``-wal``/``-shm``, has every trial and run. Real command, real files, read back
through Optuna's and MLflow's own APIs."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from codenas.search import _sqlite
from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[2]


def _copy_alone(folder: Path, name: str, to: Path) -> Path:
    """Copy ``folder/name`` without its ``-wal``/``-shm`` (what a user mailing it does)."""
    to.mkdir(exist_ok=True)
    copy = to / name
    shutil.copyfile(folder / name, copy)
    assert not (to / f"{name}-wal").exists()
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_the_db_files_alone_hold_the_whole_search(tmp_path: Path, workers: int) -> None:
    work = tmp_path / "work"
    work.mkdir()
    overrides = [a for o in tiny_overrides(work, "alone") for a in ("--set", o)]
    path = os.environ.get("PYTHONPATH")
    command = ["search", "--no-progress", "--trials", "4", "--workers", str(workers)]
    done = subprocess.run(
        [sys.executable, "-m", "codenas.cli", *command, *overrides],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Nothing may open the originals before they are copied: closing the last connection to
    # a WAL database checkpoints it, which would hide a missing checkpoint.
    copies = tmp_path / "mailed"
    optuna_db = _copy_alone(work, "optuna.db", copies)
    mlflow_db = _copy_alone(work, "mlflow.db", copies)
    for name in ("optuna.db", "mlflow.db"):
        wal = work / f"{name}-wal"
        assert not wal.exists() or wal.stat().st_size == 0, f"{name}-wal was not checkpointed"
        with contextlib.closing(sqlite3.connect(copies / name)) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    study = optuna.load_study(study_name="alone", storage=f"sqlite:///{optuna_db}")
    assert len(study.trials) == 4
    assert all(t.state.name == "COMPLETE" and len(t.values) == 3 for t in study.trials)
    client = MlflowClient(f"sqlite:///{mlflow_db}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.`codenas.study` = 'alone'", max_results=100)
    trial_runs = {r.data.tags.get("codenas.trial_number") for r in runs} - {None}
    assert trial_runs == {str(t.number) for t in study.trials}
    (parent,) = [r for r in runs if r.data.tags.get("codenas.role") == "study"]
    assert parent.info.status == "FINISHED"


def _wal_file_with_rows(path: Path, rows: int) -> sqlite3.Connection:
    """A WAL-mode database whose rows are still in its WAL: the writer's connection is kept
    open (the last connection to close would checkpoint it)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")  # keep every commit in the WAL
    con.execute("CREATE TABLE t (x INTEGER)")
    for i in range(rows):
        with con:
            con.execute("INSERT INTO t VALUES (?)", (i,))
    return con


def _rows_of_copy(path: Path, to: Path) -> int | None:
    copy = _copy_alone(path.parent, path.name, to)
    with contextlib.closing(sqlite3.connect(copy)) as con:
        try:
            return int(con.execute("SELECT count(*) FROM t").fetchone()[0])
        except sqlite3.OperationalError:  # no such table: the file alone is empty
            return None


def test_checkpoint_moves_the_wal_into_the_file(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    writer = _wal_file_with_rows(db, 50)
    try:
        assert _rows_of_copy(db, tmp_path / "before") is None  # the problem: the file alone
        assert _sqlite.checkpoint(str(db))
        assert (tmp_path / "store.db-wal").stat().st_size == 0
        assert _rows_of_copy(db, tmp_path / "after") == 50
    finally:
        writer.close()


def test_checkpoint_leaves_other_files_alone(tmp_path: Path) -> None:
    db = tmp_path / "rollback.db"
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE t (x INTEGER)")
    before = db.read_bytes()
    assert not _sqlite.checkpoint(str(db))  # not in WAL mode: nothing to do
    assert db.read_bytes() == before
    assert not (tmp_path / "rollback.db-wal").exists()
    assert not _sqlite.checkpoint(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()  # never created


def test_the_stores_a_process_tuned_are_checkpointed_at_its_exit(tmp_path: Path) -> None:
    """The atexit hook: a process that tunes a store, writes through SQLAlchemy and exits
    with its connection pool open leaves the file whole."""
    db = tmp_path / "tuned.db"
    script = f"""
import sqlalchemy
from codenas.search import _sqlite
url = "sqlite:///{db}"
_sqlite.tune(url)
engine = sqlalchemy.create_engine(url)
conn = engine.connect()  # never closed, as a command's pools are not
conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
for i in range(30):
    conn.exec_driver_sql(f"INSERT INTO t VALUES ({{i}})")
    conn.commit()
import gc, os, sys
sys.stdout.write(str(os.path.getsize("{db}-wal")))
sys.stdout.flush()
# Exit as the `codenas` command does (codenas.cli.console_main): the pool sits in a cycle
# that the frozen collector never frees, so SQLite's own checkpoint-on-close never runs.
cycle = [engine, conn]
cycle.append(cycle)
del engine, conn, cycle
gc.disable()
gc.freeze()
sys.exit(0)
"""
    path = os.environ.get("PYTHONPATH")
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0  # the rows were in the WAL while the process ran
    assert _rows_of_copy(db, tmp_path / "copy") == 30


def test_a_file_that_is_no_database_is_told_at_once_and_a_real_one_is_not(
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    reason = _sqlite.not_a_database(f"sqlite:///{garbage}")
    assert reason is not None and str(garbage) in reason and "not a database" in reason
    real = tmp_path / "real.db"
    with contextlib.closing(sqlite3.connect(real)) as con:
        con.execute("CREATE TABLE t (x)")
        con.commit()
    assert _sqlite.not_a_database(f"sqlite:///{real}") is None
    # held by a writer: busy is not broken (the client waits for it as it always did)
    with contextlib.closing(sqlite3.connect(real, isolation_level=None)) as writer:
        writer.execute("BEGIN EXCLUSIVE")
        assert _sqlite.not_a_database(f"sqlite:///{real}") is None
        writer.execute("ROLLBACK")
    (tmp_path / "empty.db").touch()  # what a client creates its schema in
    for url in (
        f"sqlite:///{tmp_path / 'empty.db'}",
        f"sqlite:///{tmp_path / 'none.db'}",
        "postgresql://u@127.0.0.1:1/db",
        "sqlite:///:memory:",
    ):
        assert _sqlite.not_a_database(url) is None
