"""Picking from the Pareto front: each rule on hand-made fronts of real Optuna studies."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution

from codenas.cli import main
from codenas.decisions.picking import (
    NoFeasibleTrial,
    Requirement,
    knee_distances,
    pick,
)
from codenas.decisions.transfer import load_spec_file
from codenas.errors import ConfigError, UnknownNameError
from codenas.spaces import MLPSpec
from tests.decisions._picking import searched_study

ACC_PARAMS = ["maximize", "minimize"]


def front_study(
    points: Sequence[Sequence[float]],
    names: Sequence[str] = ("val_accuracy", "params"),
    directions: Sequence[str] = ACC_PARAMS,
    metrics: Sequence[Mapping[str, float]] | None = None,
    storage: str | None = None,
    name: str = "hand",
) -> optuna.Study:
    """A real study whose COMPLETE trials have the given objective values and codenas attrs."""
    study = optuna.create_study(directions=list(directions), storage=storage, study_name=name)
    study.set_user_attr("codenas.objectives", list(names))
    for i, values in enumerate(points):
        recorded = dict(zip(names, map(float, values), strict=True))
        recorded.update(metrics[i] if metrics else {})
        spec = MLPSpec(input_shape=(1, 8, 8), n_outputs=10, widths=(8 + i,))
        study.add_trial(
            optuna.trial.create_trial(
                values=list(values),
                params={"width": 8 + i},
                distributions={"width": IntDistribution(1, 100)},
                user_attrs={"spec": spec.to_dict(), "metrics": recorded, "mlflow_run_id": f"r{i}"},
            )
        )
    return study


# ----------------------------------------------------------------------------- knee


def test_knee_picks_the_bend_of_a_two_objective_front() -> None:
    # (accuracy up, params down): the middle point gives up 2 points of accuracy for 5x fewer
    # parameters; the extremes are each worst on one objective.
    study = front_study([(0.99, 10000), (0.97, 2000), (0.80, 500)])
    chosen = pick(study)
    assert chosen.rule == "knee"
    assert chosen.trial == 1
    # u_acc = 0.17/0.19, u_params = 1 - 1500/9500; distance = sqrt(mean((1 - u)^2)).
    expected = math.sqrt(((0.02 / 0.19) ** 2 + (1500 / 9500) ** 2) / 2)
    assert chosen.score == pytest.approx(expected)
    assert [r.trial for r, _ in chosen.ranking] == [1, 0, 2]
    assert "closest to the ideal point" in chosen.reason


def test_knee_scales_by_the_whole_front_not_the_candidates() -> None:
    # Three candidates within 0.01 of accuracy and one small, weak network. On the front's
    # scale trial 2 gives up 0.006 of accuracy (about 2% of the front's range) for 8x fewer
    # parameters than trial 0: it is the knee. Scaled over the candidates alone, that 0.006
    # would be the full range and trial 1 would win.
    study = front_study([(0.970, 62070), (0.9666, 28315), (0.9638, 7510), (0.6323, 815)])
    chosen = pick(study, require=["val_accuracy>=0.95"])
    assert chosen.trial == 2
    assert "scaled to [0, 1] over the Pareto front (4 members)" in chosen.reason
    candidates = [r for r, _ in chosen.ranking]
    assert (
        knee_distances(candidates, ["val_accuracy", "params"], ACC_PARAMS)[1]
        < (knee_distances(candidates, ["val_accuracy", "params"], ACC_PARAMS)[2])
    )


def test_knee_treats_mixed_directions_alike() -> None:
    # The same front with accuracy as a loss (both minimised), or with the size negated (both
    # maximised), gives the same pick and distance: each objective is scaled in its own better
    # direction.
    points = [(0.99, 10000), (0.97, 2000), (0.80, 500)]
    reference = pick(front_study(points))
    both_min = front_study(
        [(1 - a, p) for a, p in points],
        names=("val_loss", "params"),
        directions=["minimize", "minimize"],
    )
    both_max = front_study(
        [(a, -p) for a, p in points],
        names=("val_accuracy", "neg_params"),
        directions=["maximize", "maximize"],
    )
    for study in (both_min, both_max):
        chosen = pick(study)
        assert chosen.trial == reference.trial == 1
        assert chosen.score == pytest.approx(reference.score)
    d = knee_distances(reference.front, ["val_accuracy", "params"], ACC_PARAMS)
    assert d[0] == d[2] == pytest.approx(math.sqrt(0.5))


def test_knee_ties_go_to_the_lower_trial_number() -> None:
    # Two symmetric extremes: each is best on one objective and worst on the other.
    symmetric = front_study([(1.0, 1000), (0.5, 500)])
    chosen = pick(symmetric, knee=True)
    assert [s for _, s in chosen.ranking] == pytest.approx([math.sqrt(0.5)] * 2)
    assert chosen.trial == 0
    assert "equal distances go to the lower trial number" in chosen.reason
    assert "(the default" not in chosen.reason  # --knee was asked for


def test_knee_with_one_objective_is_the_best_value() -> None:
    study = front_study([(0.9,), (0.95,)], names=("val_accuracy",), directions=["maximize"])
    chosen = pick(study)
    assert chosen.trial == 1
    assert "single objective" in chosen.reason


def test_the_front_is_optunas_dominated_trials_never_picked() -> None:
    # Trial 1 is dominated by trial 0 (worse on both); it never enters the ranking.
    study = front_study([(0.95, 1000), (0.90, 2000), (0.80, 100)])
    chosen = pick(study)
    assert {r.trial for r in chosen.front} == {0, 2}
    assert 1 not in {r.trial for r, _ in chosen.ranking}


# ----------------------------------------------------------------------------- prefer


def test_prefer_an_objective_uses_its_direction() -> None:
    study = front_study([(0.99, 10000), (0.97, 2000), (0.80, 500)])
    assert pick(study, prefer="val_accuracy").trial == 0
    assert pick(study, prefer="params").trial == 2
    chosen = pick(study, prefer="params")
    assert chosen.direction == "minimize"
    assert "the study's objective direction" in chosen.reason


def test_prefer_ties_are_broken_by_the_other_objectives_then_trial_number() -> None:
    # Three objectives, all five trials on the front. Trials 0, 1, 2 tie on val_accuracy:
    # capacity (max) orders them. Trials 3 and 4 are exact copies: the trial number decides.
    names = ("val_accuracy", "capacity_usage", "params")
    points = [
        (0.9, 0.5, 100),
        (0.9, 0.7, 300),
        (0.9, 0.6, 200),
        (0.8, 0.9, 50),
        (0.8, 0.9, 50),
    ]
    study = front_study(points, names=names, directions=["maximize", "maximize", "minimize"])
    chosen = pick(study, prefer="val_accuracy")
    assert [r.trial for r, _ in chosen.ranking] == [1, 2, 0, 3, 4]
    assert "2 tie(s) on val_accuracy were broken so" in chosen.reason
    assert "broken by capacity_usage (higher is better), params (lower is better)" in (
        chosen.reason
    )
    assert pick(study, prefer="capacity_usage").trial == 3
    # A logged metric that ties: all objectives in order break it (val_accuracy first).
    flat = front_study(
        points,
        names=names,
        directions=["maximize", "maximize", "minimize"],
        metrics=[{"dead_fraction": 0.0}] * 5,
    )
    ranking = pick(flat, prefer="dead_fraction").ranking
    assert [r.trial for r, _ in ranking] == [1, 2, 0, 3, 4]


def test_prefer_a_logged_metric_uses_the_registry_direction() -> None:
    metrics = [{"dead_fraction": 0.3}, {"dead_fraction": 0.1}, {"dead_fraction": 0.2}]
    study = front_study([(0.99, 10000), (0.97, 2000), (0.80, 500)], metrics=metrics)
    chosen = pick(study, prefer="dead_fraction")
    assert chosen.trial == 1  # dead_fraction is registered "minimize"
    assert "registered direction" in chosen.reason
    assert pick(study, prefer="dead_fraction:max").trial == 0


def test_prefer_a_metric_without_direction_needs_one() -> None:
    metrics = [{"class_selectivity.mean": v} for v in (0.2, 0.5, 0.4)]
    study = front_study([(0.99, 10000), (0.97, 2000), (0.80, 500)], metrics=metrics)
    with pytest.raises(ConfigError, match=r"no better direction.*class_selectivity.mean:max"):
        pick(study, prefer="class_selectivity.mean")
    assert pick(study, prefer="class_selectivity.mean:min").trial == 0
    with pytest.raises(ConfigError, match="both"):
        pick(study, prefer="params", knee=True)


# ----------------------------------------------------------------------------- requirements


def test_requirements_filter_on_any_recorded_value() -> None:
    metrics = [{"dead_fraction/layer_1": v} for v in (0.4, 0.0, 0.05)]
    study = front_study([(0.99, 10000), (0.97, 2000), (0.80, 500)], metrics=metrics)
    chosen = pick(study, require=["dead_fraction/layer_1<=0.1", "val_accuracy>=0.9"])
    assert [r.trial for r, _ in chosen.ranking] == [1]
    chosen = pick(study, require=["params < 2000"], prefer="val_accuracy")
    assert chosen.trial == 2


def test_requirement_parsing() -> None:
    assert Requirement.parse("val_accuracy>=0.95") == Requirement("val_accuracy", ">=", 0.95)
    assert Requirement.parse(" params <= 50_000 ") == Requirement("params", "<=", 50000.0)
    req = Requirement.parse("params<100")
    assert not req.met(100.0) and req.met(99.0) and req.miss(120.0) == 20.0
    for bad in ("val_accuracy", "val_accuracy=>0.9", ">= 3", "acc >= x"):
        with pytest.raises(ConfigError, match=r"expected METRIC OP NUMBER|not a number"):
            Requirement.parse(bad)


def test_unknown_metric_says_did_you_mean() -> None:
    study = front_study([(0.99, 10000), (0.97, 2000)], metrics=[{"effective_rank/layer_0": 3}] * 2)
    with pytest.raises(
        UnknownNameError,
        match=r"^--require 'val_acc>=0.9': unknown metric 'val_acc'.*Did you mean 'val_accuracy'",
    ):
        pick(study, require=["val_acc>=0.9"])
    with pytest.raises(UnknownNameError, match=r"is a codenas metric, but this study did not"):
        pick(study, prefer="mig")
    with pytest.raises(UnknownNameError, match=r"^--prefer 'efective_rank': .*layer_K"):
        pick(study, prefer="efective_rank")


def test_no_feasible_trial_lists_the_closest_by_relative_shortfall() -> None:
    metrics = [{"dead_fraction": 0.0}, {"dead_fraction": 0.5}, {"dead_fraction": 0.0}]
    study = front_study([(0.99, 10000), (0.97, 2000), (0.80, 500)], metrics=metrics)
    with pytest.raises(NoFeasibleTrial) as info:
        pick(study, require=["val_accuracy>=0.98", "params<=1000"])
    err = info.value
    # Misses relative to the bound: trial 0 params 9000/1000 = 9; trial 1 0.01/0.98 + 1;
    # trial 2 0.18/0.98 ~ 0.18: closest first.
    assert [row.trial for row, _ in err.closest] == [2, 1, 0]
    text = str(err)
    assert "trial 2: val_accuracy = 0.8 (needs >= 0.98, misses by 0.18, 18.4%)" in text
    assert "params = 10000 (needs <= 1000, misses by 9000, 900.0%)" in text


def test_no_feasible_mentions_dominated_trials_that_meet_the_requirements() -> None:
    # Trial 1 is dominated on the objectives but is the only one with no dead units.
    metrics = [{"dead_fraction": 0.3}, {"dead_fraction": 0.0}, {"dead_fraction": 0.4}]
    study = front_study([(0.95, 1000), (0.90, 2000), (0.80, 100)], metrics=metrics)
    with pytest.raises(NoFeasibleTrial, match=r"1 trial\(s\) off the front do meet them \(1\)"):
        pick(study, require=["dead_fraction<=0.1"])


def test_an_empty_front_is_no_feasible_trial() -> None:
    study = optuna.create_study(directions=ACC_PARAMS)
    with pytest.raises(NoFeasibleTrial, match="no Pareto front yet"):
        pick(study)


# ----------------------------------------------------------------------------- CLI


def sqlite_study(tmp_path: Path, **kwargs: object) -> str:
    storage = f"sqlite:///{tmp_path / 'hand.db'}"
    front_study(storage=storage, **kwargs)  # type: ignore[arg-type]
    return storage


def test_cli_no_feasible_trial_exits_1_with_the_closest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = sqlite_study(tmp_path, points=[(0.99, 10000), (0.97, 2000), (0.80, 500)])
    code = main(["pick", "--storage", storage, "--require", "val_accuracy>=0.995", "--no-tag"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.startswith("codenas: no trial on the Pareto front of study 'hand' (3 trial(s))")
    assert "Closest, by total relative shortfall:\n  trial 0: val_accuracy = 0.99" in err


def test_cli_pick_prints_the_rule_and_writes_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = sqlite_study(tmp_path, points=[(0.99, 10000), (0.97, 2000), (0.80, 500)])
    out_file = tmp_path / "picked" / "spec.yaml"
    code = main(
        [
            "pick",
            "--storage",
            storage,
            "--prefer",
            "val_accuracy",
            "--out",
            str(out_file),
            "--no-tag",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert "rule prefer: the best val_accuracy (higher is better" in out
    assert "picked trial 0:" in out
    assert "val_accuracy=0.99  params=10000" in out
    assert "MLflow run: r0 (not tagged: --no-tag)" in out
    loaded = load_spec_file(out_file)
    assert loaded.spec == MLPSpec(input_shape=(1, 8, 8), n_outputs=10, widths=(8,))
    assert loaded.source["trial"] == 0
    assert loaded.sections == {}  # a study made outside codenas has no stored config


def test_cli_pick_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = sqlite_study(tmp_path, points=[(0.99, 10000)])
    assert main(["pick", "--storage", storage, "--prefer", "val_acc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean 'val_accuracy'" in err
    assert main(["pick", "--storage", storage, "--require", "val_accuracy>>1"]) == 2
    assert "expected METRIC OP NUMBER" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: the two rules exclude each other
        main(["pick", "--storage", storage, "--prefer", "params", "--knee"])


@pytest.mark.slow
def test_pick_tags_the_run_and_untags_the_previous_pick(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    searched = searched_study(tmp_path_factory.getbasetemp())
    out_file = searched.dir / "knee.yaml"
    base = ["pick", "--storage", searched.storage, "--tracking-uri", searched.tracking]
    assert main([*base, "--out", str(out_file)]) == 0
    first = pick(searched.study())
    assert main([*base, "--prefer", "params"]) == 0
    second = pick(searched.study(), prefer="params")
    capsys.readouterr()

    client = MlflowClient(searched.tracking)
    tags = {
        r: client.get_run(r).data.tags.get("codenas.picked")
        for r in {first.mlflow_run_id, second.mlflow_run_id}
    }
    assert tags[second.mlflow_run_id] == "true"
    if first.mlflow_run_id != second.mlflow_run_id:
        assert tags[first.mlflow_run_id] == "false"
    experiment = client.get_run(second.mlflow_run_id).info.experiment_id
    picked = client.search_runs([experiment], "tags.`codenas.picked` = 'true'")
    assert [r.info.run_id for r in picked] == [second.mlflow_run_id]
    parent = client.get_run(second.mlflow_run_id).data.tags["mlflow.parentRunId"]
    assert client.get_run(parent).data.tags["codenas.picked_trial"] == str(second.trial)
    # The spec file carries the study's data/train/metrics sections for `codenas train`.
    loaded = load_spec_file(out_file)
    assert loaded.spec.to_dict() == first.row.spec
    assert loaded.sections["data"]["name"] == "digits"
    assert loaded.sections["train"]["epochs"] == 1
