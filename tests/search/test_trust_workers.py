"""Trust (issue 13) with real worker processes: a SIGKILLed trial's retry, Ctrl-C with
``--workers``. Kills are real signals; results are read through Optuna's and MLflow's APIs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

import codenas
from codenas.search.storage import retried_trial_number
from tests.search.test_distributed import (
    FAST_HEARTBEAT,
    check_tracking,
    wait_for_trial,
    write_config,
)
from tests.search.test_distributed import (
    codenas as codenas_cli,
)

pytestmark = pytest.mark.slow


def test_the_retry_of_a_sigkilled_trial_does_not_carry_its_run(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "killed"
    cfg = write_config(tmp_path, name, storage, tracking, FAST_HEARTBEAT)
    proc = codenas_cli("search", str(cfg), "--no-progress", "--trials", "50", cwd=tmp_path)
    victim = wait_for_trial(
        storage, name, lambda t: t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs
    )
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    time.sleep(3 + 1)  # past the grace period: the trial's heartbeat is stale
    # The next process of the study fails the stale trial and re-queues it (here one that runs
    # no trial, so the retry stays queued for inspection).
    study = codenas.search.run(codenas.load_config(cfg), n_trials=0)
    killed = study.trials[victim.number]
    assert killed.state.name == "FAIL"
    (retry,) = [t for t in study.trials if retried_trial_number(t) == victim.number]
    assert retry.state.name == "WAITING" and retry.params == killed.params
    assert "mlflow_run_id" not in retry.user_attrs, "the retry must not carry the killed run"
    assert not {"worker", "metrics", "spec"} & set(retry.user_attrs)
    _, by_trial = check_tracking(storage, name, tracking)  # one run per trial, states agree
    run = by_trial[victim.number]
    assert run.info.run_id == killed.user_attrs["mlflow_run_id"]
    assert run.info.status == "KILLED"
    assert "stopped sending heartbeats" in run.data.tags["codenas.fail_reason"]
    assert retry.number not in by_trial  # its run opens when it starts, linked to the killed one


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _two_workers_in_a_trial(tmp_path: Path, name: str):
    """``codenas search --workers 2`` in its own process group (as a terminal gives a
    command), once both workers run a trial. Returns the process, both stores' URLs and the
    two workers' ids."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tmp_path, name, storage, tracking, [])
    proc = codenas_cli(
        "search",
        str(cfg),
        "--no-progress",
        "--trials",
        "50",
        "--workers",
        "2",
        cwd=tmp_path,
        start_new_session=True,
    )
    workers: set[str] = set()

    def both_in_a_trial(t: optuna.trial.FrozenTrial) -> bool:
        if t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs:
            workers.add(t.user_attrs["worker"])
        return len(workers) == 2

    wait_for_trial(storage, name, both_in_a_trial)
    return proc, storage, tracking, workers


def _exits_130_and_leaves_no_process(proc) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(proc.pid), "a worker or the fork server outlived the command"


def test_ctrl_c_with_workers_ends_every_trial_and_leaves_no_process(tmp_path: Path) -> None:
    name = "interrupted-workers"
    proc, storage, tracking, _ = _two_workers_in_a_trial(tmp_path, name)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole group gets SIGINT
    _exits_130_and_leaves_no_process(proc)

    study, by_trial = check_tracking(storage, name, tracking)
    states = {t.state.name for t in study.trials}
    assert states <= {"COMPLETE", "FAIL"}, states  # nothing left RUNNING
    interrupted = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(interrupted) >= 1
    for trial in interrupted:
        assert trial.user_attrs.get("fail_reason") == "interrupted (Ctrl-C or SIGTERM)"
        assert by_trial[trial.number].info.status == "KILLED"
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`codenas.role` = 'study'")
    assert parent.info.status == "KILLED" and parent.info.end_time is not None
    assert parent.data.metrics["trials_failed"] == len(interrupted)


def test_sigterm_to_the_command_alone_stops_worker_zero_and_the_others(tmp_path: Path) -> None:
    """A scheduler stops the job with SIGTERM to the command's process only. That process runs
    trials itself (worker 0): its trial and the other worker's are both recorded as
    interrupted, the fork server and the worker are gone, and the command exits 130."""
    name = "sigterm-workers"
    proc, storage, tracking, workers = _two_workers_in_a_trial(tmp_path, name)
    assert any(w.endswith(f":{proc.pid}") for w in workers), "the command is worker 0"
    proc.send_signal(signal.SIGTERM)  # to the command only, not its group
    _exits_130_and_leaves_no_process(proc)
    study, by_trial = check_tracking(storage, name, tracking)
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "FAIL"}
    interrupted = [t for t in study.trials if t.state.name == "FAIL"]
    # Each worker in a trial when the signal came fails it (one between trials has none).
    assert interrupted and {t.user_attrs["worker"] for t in interrupted} <= workers
    for trial in interrupted:
        assert trial.user_attrs.get("fail_reason") == "interrupted (Ctrl-C or SIGTERM)"
        assert by_trial[trial.number].info.status == "KILLED"


def test_a_normal_two_worker_search_ends_its_record_once(tmp_path: Path) -> None:
    """Each worker runs the end-of-search steps itself; the last one ends the parent run with
    the totals and draws the final front, and the command adds no second copy of either."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "two-workers-once"
    cfg = write_config(tmp_path, name, storage, tracking, [])
    proc = codenas_cli(
        "search", str(cfg), "--no-progress", "--trials", "6", "--workers", "2", cwd=tmp_path
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    study, _ = check_tracking(storage, name, tracking)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`codenas.role` = 'study'")
    assert parent.info.status == "FINISHED"
    history = client.get_metric_history(parent.info.run_id, "trials_complete")
    assert [(m.value, m.step) for m in history] == [(6.0, 6)]
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto_front.json", "pareto_front.csv", "pareto_front.png"} <= files
