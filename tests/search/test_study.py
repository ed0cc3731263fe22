"""End-to-end searches on real SQLite files, checked through Optuna's and MLflow's public APIs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

import codenas
import codenas.workflows
from codenas.errors import StudyMismatchError
from codenas.search.study import make_sampler, sampler_seed
from codenas.spaces import MLPSpace, MLPSpec, register_space
from tests.conftest import make_config


def child_runs(config: codenas.Config) -> tuple[MlflowClient, str, list]:
    client = MlflowClient(config.tracking.uri)
    experiment = client.get_experiment_by_name(config.experiment)
    assert experiment is not None
    parents = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`codenas.role` = 'study'"
    )
    assert len(parents) == 1, "exactly one parent run per study"
    parent = parents[0].info.run_id
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    return client, parent, children


@pytest.mark.slow
def test_search_tracks_every_trial_and_the_front(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    study = codenas.search.run(config)
    assert len(study.trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    client, parent, children = child_runs(config)
    by_trial = {int(r.data.tags["codenas.trial_number"]): r for r in children}
    assert sorted(by_trial) == [0, 1, 2]
    front = {t.number for t in study.best_trials}
    for t in study.trials:
        run = by_trial[t.number]
        assert t.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.tags["codenas.study"] == "tiny"
        assert run.data.tags["codenas.pareto"] == ("true" if t.number in front else "false")
        m = run.data.metrics
        for name in (
            "val_accuracy",
            "capacity_usage",
            "params",
            "test_accuracy",
            "dead_fraction",
            "effective_rank",
            "effective_rank/layer_0",
            "time/train",
            "time/metrics",
        ):
            assert name in m, name
        assert m["val_accuracy"] == pytest.approx(t.values[0])
        assert m["params"] == t.values[2]
        spec = codenas.spaces.spec_from_dict(
            __import__("json").loads(run.data.tags["codenas.spec"])
        )
        assert spec.to_dict() == t.user_attrs["spec"]
        assert {"depth", "width", "shape", "activation", "dropout"} <= set(run.data.params)

    artifacts = {a.path for a in client.list_artifacts(parent)}
    assert {
        "pareto_front.json",
        "pareto_front.csv",
        "pareto_front.png",
        "pareto_front.html",
        "config.yaml",
    } <= artifacts
    front_json = __import__("json").loads(
        Path(client.download_artifacts(parent, "pareto_front.json", str(tmp_path))).read_text()
    )
    assert sorted(r["trial"] for r in front_json) == sorted(front)
    assert {"trial", "values", "spec", "mlflow_run_id"} <= set(front_json[0])

    # A second invocation continues the same study and the same parent run.
    study2 = codenas.search.run(config, n_trials=2)
    assert len(study2.trials) == 5
    _, parent2, children2 = child_runs(config)
    assert parent2 == parent
    assert len(children2) == 5
    front2 = {t.number for t in study2.best_trials}
    for run in children2:
        number = int(run.data.tags["codenas.trial_number"])
        assert run.data.tags["codenas.pareto"] == ("true" if number in front2 else "false")


@pytest.mark.slow
def test_a_config_that_does_not_match_the_stored_study_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["study.trials=1"])
    codenas.search.run(config)
    other = make_config(tmp_path, ["study.trials=1", "train.epochs=2"])
    with pytest.raises(StudyMismatchError, match=r"train.epochs: stored 1, given 2.*--study"):
        codenas.search.run(other)
    # The sampler seed, trial budget and tracking are not part of the problem.
    same = make_config(tmp_path, ["study.trials=1", "study.seed=7"])
    assert len(codenas.search.run(same).trials) == 2


@register_space
class FlakySpace(MLPSpace):
    """An MLP space with a bug on every odd trial, as a user's own space might have."""

    name = "flaky-test-space"

    def sample(self, trial, input_shape, n_outputs):  # type: ignore[no-untyped-def]
        spec = super().sample(trial, input_shape, n_outputs)
        if trial.number % 2 == 1:
            raise ZeroDivisionError("bug in a user's space")
        return spec


@pytest.mark.slow
def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["space.name=flaky-test-space", "study.trials=4"])
    study = codenas.search.run(config)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "FAIL"]
    failed = study.trials[1]
    assert failed.user_attrs["fail_reason"] == "ZeroDivisionError: bug in a user's space"
    assert "Traceback" in failed.user_attrs["fail_traceback"]
    _, _, children = child_runs(config)
    by_trial = {int(r.data.tags["codenas.trial_number"]): r for r in children}
    assert len(by_trial) == 4
    assert by_trial[1].info.status == "FAILED"
    assert by_trial[1].data.tags["codenas.fail_reason"].startswith("ZeroDivisionError")
    assert by_trial[1].data.tags["codenas.pareto"] == "false"
    assert by_trial[0].info.status == "FINISHED"


@pytest.mark.slow
def test_nan_loss_fails_the_trial_with_its_reason(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        [
            "study.trials=1",
            "train.optimizer=sgd",
            "train.lr=1e30",
            "space.width=32",
            "space.activation=relu",
            "space.depth=2",
        ],
    )
    study = codenas.search.run(config)
    trial = study.trials[0]
    assert trial.state.name == "FAIL"
    assert "TrainingDiverged: training loss became" in trial.user_attrs["fail_reason"]
    _, _, children = child_runs(config)
    assert children[0].info.status == "FAILED"


@pytest.mark.slow
def test_size_constraint_prunes_before_training(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["study.trials=2", "constraints=['params <= 100']"])
    study = codenas.search.run(config)
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert "infeasible before training: params=" in study.trials[0].user_attrs["prune_reason"]
    assert "time/train" not in study.trials[0].user_attrs["metrics"]
    _, _, children = child_runs(config)
    assert {r.info.status for r in children} == {"KILLED"}
    assert study.best_trials == []


@pytest.mark.parametrize("name", ["tpe", "nsga2", "random", "gp"])
def test_every_sampler_handles_the_objectives(tmp_path: Path, name: str) -> None:
    config = make_config(tmp_path, [f"study.sampler={name}"])
    sampler = make_sampler(config, seed=1)
    study = optuna.create_study(directions=config.directions, sampler=sampler)
    space = MLPSpace(config.space)
    for i in range(3):
        trial = study.ask()
        spec = space.sample(trial, (1, 8, 8), 10)
        assert isinstance(spec, MLPSpec)
        study.tell(trial, [0.5 + i / 10, 0.3, float(sum(spec.widths))])
    assert len(study.best_trials) >= 1


def test_sampler_options_are_passed_and_checked(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["study.sampler_options={n_startup_trials: 3}"])
    assert make_sampler(config, 0).base._n_startup_trials == 3
    bad = make_config(tmp_path, ["study.sampler_options={n_startup: 3}"])
    with pytest.raises(codenas.ConfigError, match=r"study\.sampler_options: .*n_startup"):
        make_sampler(bad, 0)


def test_sampler_seed_differs_per_continuation_and_worker() -> None:
    seeds = {sampler_seed(0, n, w) for n in (0, 3) for w in (0, 1)}
    assert len(seeds) == 4
    assert sampler_seed(0, 3, 1) == sampler_seed(0, 3, 1)


def test_objective_directions_follow_the_config(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["objectives=[{metric: val_loss}, dead_fraction]"])
    assert config.directions == ["minimize", "minimize"]
    assert dataclasses.is_dataclass(MLPSpec)


@pytest.mark.slow
def test_a_search_ends_with_a_report_per_pareto_member(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, ["study.trials=2", "tracking.report=true", f"tracking.report_dir={tmp_path}/rep"]
    )
    study = codenas.workflows.search(config)  # codenas search: the trials, then the reports
    front = sorted(t.number for t in study.best_trials)
    assert front
    written = sorted(
        int(p.parent.name.removeprefix("trial-"))
        for p in (tmp_path / "rep").glob("trial-*/report.html")
    )
    assert written == front
    client, _, children = child_runs(config)
    by_trial = {int(r.data.tags["codenas.trial_number"]): r for r in children}
    logged = {a.path for a in client.list_artifacts(by_trial[front[0]].info.run_id, "report")}
    assert "report/report.html" in logged
