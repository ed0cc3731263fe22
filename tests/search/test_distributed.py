"""Scale-out and faults with real servers: PostgreSQL, an MLflow tracking server, SQLite.

Workers are real processes (the ``codenas`` command line); kills are real signals. Results are
checked through Optuna's and MLflow's public APIs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from sqlalchemy.pool import NullPool

from codenas.search.storage import retried_trial_number
from tests.servers import MlflowServer, Postgres, Relay, postgres_available

pytestmark = pytest.mark.slow

FAST_HEARTBEAT = ["study.heartbeat_interval=1", "study.grace_period=3"]


def write_config(root: Path, name: str, storage: str, tracking: str, extra: list[str]) -> Path:
    """A small digits search whose trials last about a second (long enough to be killed)."""
    from codenas.config import apply_overrides

    raw = apply_overrides(
        {},
        [
            f"study.name={name}",
            f"study.storage={storage}",
            f"tracking.uri={tracking}",
            f"tracking.experiment={name}",
            "train.epochs=40",
            "train.threads=1",
            "space.depth=2",
            "space.width={min: 32, max: 64, log: true}",
            "metrics.samples=200",
            "constraints=[]",
            "tracking.report=false",
            *extra,
        ],
    )
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


ROOT = Path(__file__).resolve().parents[2]


def codenas(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """The ``codenas`` command line of this checkout (first on the path, whatever is installed)."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "codenas.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


def wait_for_trial(storage: str, name: str, predicate, timeout: float = 120):
    deadline = time.monotonic() + timeout
    # One storage object for the whole wait: a URL per poll would open a new connection pool
    # each time (PostgreSQL then refuses clients).
    rdb = optuna.storages.RDBStorage(storage, engine_kwargs={"poolclass": NullPool})
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=name, storage=rdb)
        except KeyError:
            study = None
        if study is not None:
            for trial in study.get_trials(deepcopy=False):
                if predicate(trial):
                    return trial
        time.sleep(0.05)
    raise AssertionError(f"no trial matched within {timeout} s")


def kill_mid_trial(victim: subprocess.Popen, storage: str, name: str) -> None:
    """SIGKILL ``victim`` while one of its trials is running (its MLflow run open).

    A trial lasts about a second: one seen RUNNING may complete before a kill lands. So the
    victim is stopped first (SIGSTOP), the trial read again, and killed only if it is still
    RUNNING (a stopped process cannot complete it); else it goes on and the next is awaited.
    """

    def running(t: optuna.trial.FrozenTrial) -> bool:
        return (
            t.state.name == "RUNNING"
            and "mlflow_run_id" in t.user_attrs
            and t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
        )

    rdb = optuna.storages.RDBStorage(storage, engine_kwargs={"poolclass": NullPool})
    for _ in range(20):
        trial = wait_for_trial(storage, name, running)
        victim.send_signal(signal.SIGSTOP)
        study = optuna.load_study(study_name=name, storage=rdb)
        if running(study.get_trials(deepcopy=False)[trial.number]):
            victim.send_signal(signal.SIGKILL)
            return
        victim.send_signal(signal.SIGCONT)
    raise AssertionError("the victim's trials all completed before it could be stopped")


def check_tracking(storage: str, name: str, tracking: str) -> tuple[optuna.Study, dict]:
    """Every COMPLETE trial has exactly one FINISHED child run with its metrics."""
    rdb = optuna.storages.RDBStorage(storage, engine_kwargs={"poolclass": NullPool})
    study = optuna.load_study(study_name=name, storage=rdb)
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    parents = client.search_runs([experiment.experiment_id], "tags.`codenas.role` = 'study'")
    assert len(parents) == 1, "exactly one parent run per study"
    children = client.search_runs(
        [experiment.experiment_id],
        f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'",
        max_results=1000,
    )
    runs_of = Counter(r.data.tags["codenas.trial_number"] for r in children)
    assert all(n == 1 for n in runs_of.values()), f"a trial is logged exactly once: {runs_of}"
    by_trial = {int(r.data.tags["codenas.trial_number"]): r for r in children}
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            run = by_trial[trial.number]
            assert run.info.status == "FINISHED"
            assert run.data.metrics["val_accuracy"] == pytest.approx(trial.values[0])
            assert "effective_rank/layer_0" in run.data.metrics
        elif trial.state.is_finished():
            assert by_trial[trial.number].info.status in ("FAILED", "KILLED")
    return study, by_trial


def check_killed_and_retried(study: optuna.Study, by_trial: dict, victim: int) -> None:
    summary = [
        (t.number, t.state.name, t.user_attrs.get("worker"), retried_trial_number(t))
        for t in study.trials
    ]
    killed = [
        t
        for t in study.trials
        if t.state.name == "FAIL" and t.user_attrs.get("worker", "").endswith(f":{victim}")
    ]
    assert len(killed) == 1, summary
    killed_trial = killed[0]
    assert by_trial[killed_trial.number].info.status == "KILLED"
    assert (
        "stopped sending heartbeats"
        in by_trial[killed_trial.number].data.tags["codenas.fail_reason"]
    )
    retries = [t for t in study.trials if retried_trial_number(t) == killed_trial.number]
    assert len(retries) == 1, f"the killed trial is retried once: {summary}"
    retry = retries[0]
    assert retry.state.name == "COMPLETE"
    assert retry.params == killed_trial.params
    tags = by_trial[retry.number].data.tags
    assert tags["codenas.retry_of_trial"] == str(killed_trial.number)
    assert tags["codenas.retry_of_run"] == by_trial[killed_trial.number].info.run_id


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Postgres, MlflowServer]]:
    if not postgres_available():
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; .ci/run installs them"
        )
    pg = Postgres()
    root = tmp_path_factory.mktemp("mlflow-server")
    try:
        server = MlflowServer(pg.create_database("mlflow"), root)
    except Exception:
        pg.stop()
        raise
    try:
        yield pg, server
    finally:
        server.stop()
        pg.stop()


@pytest.mark.postgres
def test_three_machines_on_postgres_and_a_tracking_server_survive_a_kill(
    servers: tuple[Postgres, MlflowServer], tmp_path: Path
) -> None:
    pg, mlflow_server = servers
    storage = pg.create_database("optuna_kill")
    name = "three-workers"
    cfg = write_config(tmp_path, name, storage, mlflow_server.url, FAST_HEARTBEAT)
    # Three "machines": the same command, started together, one study, one parent run. They
    # share this machine's process table, so the survivors find the victim dead at their next
    # trial (not after the grace period, which they might not outlast) and re-run its trial.
    procs = [codenas("search", str(cfg), "--no-progress", "--trials", n) for n in ("3", "10", "10")]
    victim = procs[0]
    kill_mid_trial(victim, storage, name)
    victim.wait()  # reaped, as init reaps a killed process on another machine
    for proc in procs[1:]:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    study, by_trial = check_tracking(storage, name, mlflow_server.url)
    check_killed_and_retried(study, by_trial, victim.pid)
    states = Counter(t.state.name for t in study.trials)
    # The survivors ran their 20 trials plus the free retry; the victim's trials before the
    # kill are COMPLETE too.
    victim_done = sum(
        1
        for t in study.trials
        if t.state.name == "COMPLETE" and t.user_attrs["worker"].endswith(f":{victim.pid}")
    )
    assert states == {"COMPLETE": 20 + 1 + victim_done, "FAIL": 1}


def test_workers_on_sqlite_share_one_budget_and_survive_a_kill(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "two-workers"
    cfg = write_config(tmp_path, name, storage, tracking, FAST_HEARTBEAT)
    proc = codenas(
        "search", str(cfg), "--no-progress", "--trials", "6", "--workers", "2", cwd=tmp_path
    )
    # The command's own process is worker 0; the victim is the other worker.
    first = wait_for_trial(
        storage,
        name,
        lambda t: (
            t.state.name == "RUNNING"
            and "mlflow_run_id" in t.user_attrs
            and not t.user_attrs["worker"].endswith(f":{proc.pid}")
        ),
    )
    pid = int(first.user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"(pid {pid}) died" in err
    study, by_trial = check_tracking(storage, name, tracking)
    check_killed_and_retried(study, by_trial, pid)
    # One budget of 6 across both workers; the killed trial used one, its retry was free.
    assert Counter(t.state.name for t in study.trials) == {"COMPLETE": 6, "FAIL": 1}
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) >= 2
    assert any(w.endswith(f":{proc.pid}") for w in workers), "the command is worker 0"
    # The parent run ended once, when no worker was left, with the study's totals.
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`codenas.role` = 'study'")
    assert parent.info.status == "FINISHED" and parent.info.end_time is not None
    last_end = max(t.datetime_complete for t in study.trials).timestamp() * 1000
    assert parent.info.end_time >= last_end
    metrics = parent.data.metrics
    assert (metrics["trials_complete"], metrics["trials_failed"]) == (6, 1)
    assert metrics["front_size"] == len(study.best_trials)


def test_ctrl_c_records_the_running_trial_and_the_same_command_continues(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "interrupted"
    cfg = write_config(tmp_path, name, storage, tracking, [])
    proc = codenas("search", str(cfg), "--no-progress", "--trials", "50", cwd=tmp_path)
    # Interrupt during training: the trial's run exists and about a second of training is left.
    running = wait_for_trial(
        storage,
        name,
        lambda t: t.number >= 1 and t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs,
    )
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    study, by_trial = check_tracking(storage, name, tracking)
    last = study.trials[running.number]
    assert last.state.name == "FAIL", err
    assert last.user_attrs["fail_reason"] == "interrupted (Ctrl-C or SIGTERM)"
    assert by_trial[last.number].info.status == "KILLED"
    assert len(study.trials) == running.number + 1
    before = len(study.trials)
    again = codenas("search", str(cfg), "--no-progress", "--trials", "1", cwd=tmp_path)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == before + 1


@pytest.mark.postgres
def test_tracking_server_outage_is_retried_then_stops_with_a_clear_message(
    servers: tuple[Postgres, MlflowServer], tmp_path: Path
) -> None:
    _, mlflow_server = servers
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    relay = Relay(mlflow_server.port)

    # A short outage: warnings, then the search finishes and nothing is lost.
    name = "outage-short"
    cfg = write_config(tmp_path, name, storage, relay.url, ["tracking.retry_for=120"])
    proc = codenas("search", str(cfg), "--no-progress", "--trials", "4", cwd=tmp_path)
    wait_for_trial(storage, name, lambda t: t.number >= 1 and t.state.name == "RUNNING")
    relay.cut()
    time.sleep(4)
    relay.restore()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "codenas: warning: MLflow http://127.0.0.1:" in err and "retrying" in err
    study, _ = check_tracking(storage, name, mlflow_server.url)
    assert Counter(t.state.name for t in study.trials) == {"COMPLETE": 4}

    # A long outage: bounded back-off, then one clear line and exit 2; no COMPLETE trial
    # lacks its metrics in MLflow, and the trial that could not be logged is FAIL with why.
    name = "outage-long"
    cfg = write_config(tmp_path, name, storage, relay.url, ["tracking.retry_for=5"])
    proc = codenas("search", str(cfg), "--no-progress", "--trials", "20", cwd=tmp_path)
    wait_for_trial(storage, name, lambda t: t.number >= 1 and t.state.name == "RUNNING")
    relay.cut()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("codenas: error: MLflow tracking URI 'http://127.0.0.1:")
    assert "tracking.retry_for=5" in last_line
    relay.restore()
    # The next run of the same command ends the run MLflow could not be told about, and goes on.
    again = codenas("search", str(cfg), "--no-progress", "--trials", "1", cwd=tmp_path)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    study, by_trial = check_tracking(storage, name, mlflow_server.url)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1
    assert failed[0].user_attrs["fail_reason"].startswith("TrackingUnavailable")
    assert (
        by_trial[failed[0].number]
        .data.tags["codenas.fail_reason"]
        .startswith("TrackingUnavailable")
    )
    assert len(study.trials) < 20, "the search stopped"
    relay.cut()
