"""Tracking helpers against real MLflow clients (no server fakes)."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from codenas.search.storage import _stored_form
from codenas.tracking import (
    RetryingClient,
    TrackingUnavailable,
    create_run_once,
    flatten,
    mask_url,
)
from tests.conftest import make_config
from tests.servers import free_port


@pytest.mark.parametrize(
    ("uri", "server"),
    [
        ("http://127.0.0.1:5000", True),
        ("https://mlflow.example.org", True),
        ("sqlite:///mlflow.db", False),
        ("postgresql://u:p@db/mlflow", False),
        ("./mlruns", False),
    ],
)
def test_a_tracking_server_is_told_from_a_local_store(uri: str, server: bool) -> None:
    from codenas.urls import is_server

    assert is_server(uri) is server


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql://bob:s3cret@db.example:5432/optuna",
            "postgresql://bob:***@db.example:5432/optuna",
        ),
        ("mysql+pymysql://u:p@h/db", "mysql+pymysql://u:***@h/db"),
        ("http://alice:pw@mlflow.example:5000", "http://alice:***@mlflow.example:5000"),
        ("sqlite:///optuna.db", "sqlite:///optuna.db"),
        ("http://mlflow.example:5000", "http://mlflow.example:5000"),
    ],
)
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_the_stored_config_never_holds_a_password(tmp_path) -> None:
    config = make_config(
        tmp_path,
        ["study.storage=postgresql://bob:s3cret@db/optuna", "tracking.uri=http://a:pw@h:5000"],
    )
    stored = _stored_form(config)
    assert "s3cret" not in str(stored) and "pw@" not in str(stored)
    assert stored["study"]["storage"] == "postgresql://bob:***@db/optuna"


def test_flatten_makes_dotted_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
    }


def test_an_unreachable_server_is_retried_with_warnings_then_given_up() -> None:
    warnings: list[str] = []
    client = RetryingClient(
        MlflowClient(f"http://127.0.0.1:{free_port()}"),
        "http://127.0.0.1:1",
        retry_for=3.5,
        warn=warnings.append,
    )
    start = time.monotonic()
    with pytest.raises(TrackingUnavailable, match=r"unreachable for \d+ s \(connection refused\)"):
        client.search_experiments(max_results=1)
    elapsed = time.monotonic() - start
    # Back-off 1 s, 2 s, ... (each announced by a warning) while the next wait still fits in
    # retry_for; how many fit depends on how long each refused attempt took on this machine.
    announced = [int(w.split(" in ")[1].split(" s")[0]) for w in warnings]
    assert announced and announced == [2**k for k in range(len(announced))]
    assert "retrying search_experiments in 1 s" in warnings[0]
    assert sum(announced) <= 3.5  # it never waits past the bound
    assert elapsed >= sum(announced)  # the waits really happened
    assert elapsed < 3.5 + 10  # and then it stopped (generous for a loaded machine)


def test_a_bad_request_is_not_retried(tmp_path) -> None:
    warnings: list[str] = []
    client = RetryingClient(
        MlflowClient(f"sqlite:///{tmp_path / 'm.db'}"), "x", retry_for=30, warn=warnings.append
    )
    with pytest.raises(Exception, match=r"(?i)not found|does not exist|No Run"):
        client.get_run("0" * 32)
    assert warnings == []


def test_create_run_once_creates_one_run(tmp_path) -> None:
    raw = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    client = RetryingClient(raw, "x", retry_for=5)
    experiment = raw.create_experiment("e")
    run_id = create_run_once(client, experiment, "r", {"k": "v"})
    runs = raw.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [run_id]
    assert runs[0].data.tags["k"] == "v" and "codenas.request_id" in runs[0].data.tags


def test_reconcile_opens_and_ends_the_run_of_a_trial_that_never_had_one(tmp_path) -> None:
    import optuna

    from codenas.search.storage import open_study
    from codenas.tracking import MlflowTracker

    config = make_config(tmp_path, ["study.trials=1"])
    study, created = open_study(config)
    MlflowTracker(config, study, created=created)
    # A trial that failed before any run was opened (MLflow was down, or the worker died early).
    trial = study.ask()
    trial.set_user_attr("fail_reason", "TrackingUnavailable: MLflow down")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    tracker = MlflowTracker(config, study, created=False)  # the next run of the command
    client = MlflowClient(config.tracking.uri)
    runs = client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{tracker.parent_run_id}'"
    )
    assert len(runs) == 1
    assert runs[0].info.status == "KILLED"
    assert runs[0].data.tags["codenas.trial_number"] == str(trial.number)
    assert runs[0].data.tags["codenas.fail_reason"] == "TrackingUnavailable: MLflow down"
    assert tracker.reconcile() == 0  # idempotent


def test_reconcile_ends_a_run_whose_id_never_reached_its_trial_and_opens_no_second(
    tmp_path,
) -> None:
    """An interrupt between opening a trial's run and recording its id on the trial: another
    worker's reconcile finds the run by its tags instead of opening a second one."""
    import optuna

    from codenas.search.storage import open_study
    from codenas.tracking import MlflowTracker

    config = make_config(tmp_path, ["study.trials=1"])
    study, created = open_study(config)
    first = MlflowTracker(config, study, created=created)
    other = MlflowTracker(config, study, created=False)  # another worker, started already
    trial = study.ask()
    first._open_run(trial.number, "w0")  # opened; the trial never got its id
    trial.set_user_attr("fail_reason", "interrupted (Ctrl-C or SIGTERM)")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    other.reconcile()  # at its end of search
    client = MlflowClient(config.tracking.uri)
    runs = client.search_runs(
        [other.experiment_id], f"tags.mlflow.parentRunId = '{other.parent_run_id}'"
    )
    assert len(runs) == 1
    assert runs[0].info.status == "KILLED"
    assert runs[0].data.tags["codenas.fail_reason"] == "interrupted (Ctrl-C or SIGTERM)"


def test_params_reach_the_run_in_its_first_batch_also_when_the_trial_never_completes(
    tmp_path,
) -> None:
    """A trial's params travel with its metrics (or with the tags that end its run): the run of
    a completed trial and that of one interrupted mid-training both end with all of them, and
    reconcile writing a completed run's params a second time is accepted."""
    import optuna

    from codenas.search.storage import open_study
    from codenas.spaces import MLPSpec
    from codenas.tracking import MlflowTracker

    config = make_config(tmp_path, ["study.trials=2"])
    study, created = open_study(config)
    tracker = MlflowTracker(config, study, created=created)
    spec = MLPSpec((4,), 3, (8, 8), "relu", 0.0)
    runs = {}
    for state in ("COMPLETE", "FAIL"):
        trial = study.ask()
        trial.suggest_int("width", 8, 8)
        trial.set_user_attr("spec", spec.to_dict())
        runs[state] = tracker.trial_started(trial, spec)
        if state == "COMPLETE":
            tracker.log_metrics(trial, {"accuracy": 0.5})  # as the objective does, then Optuna
            study.tell(trial, [0.5] * len(config.objective_names))
        else:  # killed mid-training: no callback ran; the next command's reconcile ends it
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C or SIGTERM)")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert MlflowTracker(config, study, created=False).reconcile() == 0  # the next command
    client = MlflowClient(config.tracking.uri)
    expected = {"width": "8", "widths": "[8, 8]", "activation": "relu", "space": "mlp"}
    for state, status in (("COMPLETE", "FINISHED"), ("FAIL", "KILLED")):
        run = client.get_run(runs[state])
        assert run.info.status == status, state
        assert expected.items() <= run.data.params.items(), (state, run.data.params)
        assert run.data.tags["codenas.state"] == state
    assert client.get_run(runs["COMPLETE"]).data.metrics["accuracy"] == 0.5
