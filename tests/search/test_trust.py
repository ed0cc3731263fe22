"""Trust (issue 13): the test split never steers selection, no private Optuna APIs, race-free
queues, failures that say so, true parent-run states, honest retries, side-effect-free seeding
and MLflow filters that survive any study name.

Everything runs on real SQLite files (Optuna and MLflow); the multi-process cases are in
``test_trust_workers.py``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

import codenas
from codenas.cli import main
from codenas.decisions.picking import Requirement, pick
from codenas.errors import ConfigError
from tests.conftest import make_config, tiny_overrides
from tests.search.test_pick import front_study, sqlite_study

# ----------------------------------------------------------------------------- the test split


@pytest.mark.parametrize("metric", ["test_accuracy", "test_loss", "test_r2"])
def test_a_test_metric_is_refused_as_a_constraint(tmp_path: Path, metric: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"constraints": [f"{metric} >= 0.5"]}))
    with pytest.raises(ConfigError, match=r"constraints\[0\]\.metric: .*test split") as info:
        codenas.load_config(path)
    assert "\n" not in str(info.value)
    assert "never used for selection" in str(info.value)


def test_cli_search_with_a_test_constraint_exits_2_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["search", "--no-progress"]
    for item in [*tiny_overrides(tmp_path), "constraints=[test_accuracy >= 0.5]"]:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test split" in err
    assert not (tmp_path / "optuna.db").exists()


def test_pick_refuses_a_test_requirement_and_a_test_preference() -> None:
    study = front_study(
        [(0.99, 10000), (0.97, 2000)],
        metrics=[{"test_accuracy": 0.5}, {"test_accuracy": 0.9}],
    )
    with pytest.raises(ConfigError, match="test split"):
        Requirement.parse("test_accuracy>=0.8")
    with pytest.raises(ConfigError, match="test split"):
        pick(study, require=["test_accuracy>=0.8"])
    with pytest.raises(ConfigError, match="test split"):
        pick(study, prefer="test_accuracy")
    assert pick(study, require=["val_accuracy>=0.98"]).trial == 0  # the validation metric works


def test_cli_pick_with_a_test_requirement_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = sqlite_study(tmp_path, points=[(0.99, 10000)])
    assert main(["pick", "--storage", storage, "--require", "test_accuracy>=0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test split" in err and "--require" in err


# ----------------------------------------------------------------------------- MLflow filters


def test_a_study_name_with_a_quote_is_tracked_and_found_again(tmp_path: Path) -> None:
    from codenas.tracking.runs import mark_picked

    from codenas.tracking import MlflowTracker

    config = make_config(tmp_path, ["study.name=it's", "study.trials=2"])
    study = codenas.search.run(config)
    again = MlflowTracker(config, study, created=False)  # finds the parent run by its name
    assert again.parent_run_id == study.user_attrs["codenas.mlflow_parent_run_id"]
    client = MlflowClient(config.tracking.uri)
    experiment = client.get_experiment_by_name(config.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("codenas.role") == "study"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("codenas.trial_number") is not None]
    assert sorted(r.data.tags["codenas.trial_number"] for r in children) == ["0", "1"]
    assert all(r.data.tags["codenas.study"] == "it's" for r in children)
    assert all(r.info.status == "FINISHED" for r in children)
    first, second = (t.user_attrs["mlflow_run_id"] for t in study.trials)
    mark_picked(config.tracking.uri, "it's", first, "test")
    assert mark_picked(config.tracking.uri, "it's", second, "test") == [first]


def test_a_study_name_no_filter_can_quote_is_refused_naming_study_name() -> None:
    with pytest.raises(ConfigError, match=r"study\.name: .*both ' and \"") as info:
        codenas.load_config(None, ['study.name=it\'s "x"'])
    assert "\n" not in str(info.value)


def test_search_all_runs_pages_through_every_result(tmp_path: Path) -> None:
    from codenas.tracking.client import search_all_runs

    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    experiment = client.create_experiment("paging")
    made = {client.create_run(experiment, tags={"k": "v"}).info.run_id for _ in range(5)}
    client.create_run(experiment, tags={"k": "other"})
    found = list(search_all_runs(client, [experiment], "tags.k = 'v'", page_size=2))
    assert {r.info.run_id for r in found} == made
    assert len(found) == 5
