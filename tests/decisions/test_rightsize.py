"""Right-sizing: the rule on hand-made activation statistics, the enqueue round trip, and a
proposal run on a real study."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from codenas.cli import main
from codenas.config import Config
from codenas.decisions.rightsize import (
    LayerUsage,
    Proposal,
    enqueue,
    enqueue_params,
    plan_layers,
    propose,
    queued_or_done,
    usage_from_code,
    usage_from_metrics,
)
from codenas.errors import ConfigError
from codenas.evaluation.neural_code import NeuralCode
from codenas.spaces import CNNSpace, CNNSpec, MLPSpace, MLPSpec
from tests.conftest import make_config
from tests.decisions._picking import searched_study

# ----------------------------------------------------------------------------- the rule


def test_widths_are_cut_to_margin_times_effective_rank_capped_by_live_units() -> None:
    usage = [
        LayerUsage(width=64, effective_rank=10.2, dead_fraction=0.0),  # ceil(15.3) = 16
        LayerUsage(width=64, effective_rank=20.0, dead_fraction=0.75),  # 30 wanted, 16 alive
        LayerUsage(width=8, effective_rank=7.9, dead_fraction=0.0),  # 12 wanted, width 8
        LayerUsage(width=32, effective_rank=1.0, dead_fraction=0.0),  # 2 -> min_width 4
    ]
    plan = plan_layers(usage, None, margin=1.5, min_width=4)
    assert [p.new_width for p in plan] == [16, 16, 8, 4]
    assert "ceil(1.5 x erank 10.20) = 16" in plan[0].reason
    assert "capped at the 16 alive" in plan[1].reason
    assert "raised to min_width 4" in plan[3].reason
    assert [p.new_width for p in plan_layers(usage, None, margin=1.0, min_width=1)] == [
        11,
        16,
        8,
        1,
    ]


def test_a_layer_nearly_identical_to_the_last_kept_one_is_removed() -> None:
    usage = [LayerUsage(width=32, effective_rank=8.0, dead_fraction=0.0)] * 4
    # Layers 0-1-2 form a block (each >= 0.95 with layer 0), layer 3 differs from layer 0.
    cka = np.array(
        [
            [1.0, 0.97, 0.96, 0.50],
            [0.97, 1.0, 0.99, 0.60],
            [0.96, 0.99, 1.0, 0.97],
            [0.50, 0.60, 0.97, 1.0],
        ]
    )
    plan = plan_layers(usage, cka, cka_threshold=0.95)
    assert [p.new_width for p in plan] == [12, None, None, 12]
    # Layer 3 is compared with layer 0 (the last kept), not with the removed layer 2.
    assert plan[3].cka_previous == 0.50
    assert plan[2].reason == "removed: CKA with layer 0 = 0.960 >= 0.95"
    assert [p.new_width for p in plan_layers(usage, cka, cka_threshold=None)] == [12] * 4
    assert [p.new_width for p in plan_layers(usage, cka, cka_threshold=0.98)] == [12, 12, None, 12]


def test_rule_arguments_are_checked() -> None:
    usage = [LayerUsage(width=8, effective_rank=2.0, dead_fraction=0.0)]
    with pytest.raises(ConfigError, match="margin >= 1"):
        plan_layers(usage, margin=0.5)
    with pytest.raises(ConfigError, match="0 < threshold <= 1"):
        plan_layers(usage, cka_threshold=1.5)


def test_usage_measured_on_hand_made_activations() -> None:
    rng = np.random.default_rng(0)
    n = 500
    # Layer 0: 12 units spanning exactly 3 equal directions, plus 4 dead units.
    basis = rng.normal(size=(n, 3))
    basis = (basis - basis.mean(0)) / basis.std(0)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    layer0 = np.hstack([basis @ q[:3] * 5.0, np.zeros((n, 4))])
    # Layer 1: a rotation and scaling of layer 0 (CKA 1); layer 2: unrelated noise.
    rot, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    layer1 = 3.0 * layer0 @ rot
    layer2 = rng.normal(size=(n, 16))
    code = NeuralCode(
        spec=MLPSpec(input_shape=(4,), n_outputs=2, widths=(16, 16, 16)),
        layers=[layer0, layer1, layer2],
        labels=None,
        factors=None,
        factor_names=(),
        metrics={},
        title="hand-made",
    )
    usage, cka = usage_from_code(code)
    assert usage[0].dead_fraction == pytest.approx(0.25)
    assert usage[0].alive == 12
    assert 2.5 < usage[0].effective_rank <= 3.0 + 1e-9
    assert cka[0, 1] == pytest.approx(1.0)
    assert cka[0, 2] < 0.3
    plan = plan_layers(usage, cka, margin=1.5)
    assert plan[0].new_width == math.ceil(1.5 * usage[0].effective_rank) <= 5
    assert plan[1].new_width is None  # a rotated copy of layer 0
    assert plan[2].new_width == min(16, math.ceil(1.5 * usage[2].effective_rank))


def test_usage_from_recorded_metrics() -> None:
    metrics = {
        "effective_rank/layer_0": 5.0,
        "dead_fraction/layer_0": 0.5,
        "effective_rank/layer_1": 2.0,
        "dead_fraction/layer_1": 0.0,
        "participation_ratio/layer_1": 1.5,
    }
    usage = usage_from_metrics(metrics, [16, 8])
    assert usage == [LayerUsage(16, 5.0, 0.5, None), LayerUsage(8, 2.0, 0.0, 1.5)]
    assert usage_from_metrics(metrics, [16, 8, 4]) is None


# ----------------------------------------------------------------------------- enqueue round trip


def _proposal(
    study: optuna.Study,
    config: Config,
    spec: MLPSpec | CNNSpec,
    params: dict,
    field: str,
    widths: list[int],
) -> Proposal:
    new_params, _ = enqueue_params(params, widths, config)
    return Proposal(
        study=study.study_name,
        trial=0,
        spec=spec,
        new_spec=spec.__class__(**{**spec.__dict__, field: tuple(widths)}),
        plan=[],
        params=new_params,
        user_attrs={field: widths, "codenas.rightsized_from": 0},
        source="hand-made",
        notes=[],
        recomputed={},
        params_before=0,
        params_after=0,
        margin=1.5,
        cka_threshold=0.95,
    )


def test_enqueued_params_reproduce_the_proposed_mlp_exactly(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, ["space.width={min: 16, max: 64}", "space.depth={min: 1, max: 4}"]
    )
    space = MLPSpace(config.space)
    study = optuna.create_study(directions=config.directions)
    original = space.sample(
        optuna.trial.FixedTrial(
            {"depth": 3, "width": 64, "shape": "funnel", "activation": "relu", "dropout": 0.1}
        ),
        (1, 8, 8),
        10,
    )
    params = {"depth": 3, "width": 64, "shape": "funnel", "activation": "relu", "dropout": 0.1}
    # 37-11 is no profile of any shape; 11 is below space.width.min (param width clipped).
    proposal = _proposal(study, config, original, params, "widths", [37, 11])
    assert proposal.params["depth"] == 2 and proposal.params["width"] == 37
    number, queued = enqueue(study, proposal)
    assert queued and number == 0
    assert enqueue(study, proposal) == (0, False)  # the same proposal is not queued twice
    trial = study.ask()  # pops the queued trial, as study.optimize does
    spec = space.sample(trial, (1, 8, 8), 10)
    assert spec == proposal.new_spec
    assert trial.params == proposal.params
    assert trial.user_attrs["codenas.rightsized_from"] == 0
    # On new data the same params give the same widths with the new input and outputs.
    assert space.sample(trial, (13,), 3).widths == (37, 11)


def test_enqueued_params_reproduce_the_proposed_cnn_exactly(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["space.width={min: 8, max: 32}"], path="shapes-cnn")
    space = CNNSpace(config.space)
    params = {"depth": 3, "width": 32, "shape": "constant", "kernel_size": 3, "activation": "relu"}
    original = space.sample(optuna.trial.FixedTrial(params), (1, 16, 16), 4)
    study = optuna.create_study(directions=config.directions)
    proposal = _proposal(study, config, original, params, "channels", [5, 19, 7])
    assert proposal.params["width"] == 19
    enqueue(study, proposal)
    spec = space.sample(study.ask(), (1, 16, 16), 4)
    assert spec == proposal.new_spec
    assert spec.channels == (5, 19, 7)


def test_a_widths_attribute_that_does_not_match_depth_is_refused(tmp_path: Path) -> None:
    space = MLPSpace(make_config(tmp_path).space)
    trial = optuna.trial.FixedTrial(
        {"depth": 2, "width": 16, "shape": "constant", "activation": "relu", "dropout": 0.0}
    )
    trial.set_user_attr("widths", [4, 5, 6])
    with pytest.raises(ValueError, match=r"'widths' must be 2 positive integers"):
        space.sample(trial, (4,), 2)


def test_depth_out_of_range_is_noted(tmp_path: Path) -> None:
    config = make_config(
        tmp_path, ["space.depth={min: 2, max: 3}", "space.width={min: 8, max: 16}"]
    )
    params, notes = enqueue_params({"depth": 2, "width": 16}, [30], config)
    assert params == {"depth": 1, "width": 16}
    assert any("outside space.depth [2, 3]" in n for n in notes)
    assert any("clipped into space.width [8, 16]" in n for n in notes)


# ----------------------------------------------------------------------------- on a real study


@pytest.mark.slow
def test_propose_recomputes_queues_and_runs_on_a_real_study(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    searched = searched_study(tmp_path_factory.getbasetemp())
    study = searched.study()
    number = max(
        (t for t in study.trials if t.state.name == "COMPLETE" and "spec" in t.user_attrs),
        key=lambda t: len(t.user_attrs["spec"]["widths"]),
    ).number
    # Without CKA, the recorded per-layer metrics suffice; with it, the trial is re-trained.
    assert propose(study, number, config=searched.config, cka_threshold=None).source == (
        "the trial's recorded metrics"
    )
    proposal = propose(study, number, config=searched.config)
    trial = study.trials[number]
    # The re-trained network reproduces the trial (same config, same seed, same device).
    assert proposal.notes == [] or all("outside" in n or "clipped" in n for n in proposal.notes)
    assert "re-training the spec" in proposal.source
    recorded = trial.user_attrs["metrics"]
    for k, p in enumerate(proposal.plan):
        assert p.usage.effective_rank == pytest.approx(recorded[f"effective_rank/layer_{k}"])
        assert p.new_width is None or p.new_width <= p.usage.width
    assert "cka_previous/layer_1" in proposal.recomputed
    assert "participation_ratio/layer_0" in proposal.recomputed

    # The CLI: queue and run it; the new trial's spec is exactly the proposal.
    code = main(
        [
            "rightsize",
            "--storage",
            searched.storage,
            "--tracking-uri",
            searched.tracking,
            "--trial",
            str(number),
            "--margin",
            "1.0",
            "--run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "layer usage from re-training the spec" in out
    assert "recorded the recomputed values on the trial's MLflow run" in out
    again = propose(searched.study(), number, config=searched.config, margin=1.0)
    if not again.changed:
        assert "nothing to cut" in out
        return
    assert "on the Pareto front:" in out
    fresh = searched.study()
    done = queued_or_done(fresh, again)
    assert done is not None
    ran = fresh.trials[done]
    assert ran.state.name == "COMPLETE"
    assert ran.user_attrs["spec"] == again.new_spec.to_dict()
    client = MlflowClient(searched.tracking)
    assert client.get_run(ran.user_attrs["mlflow_run_id"]).data.tags[
        "codenas.rightsized_from"
    ] == str(number)
    metrics = client.get_run(trial.user_attrs["mlflow_run_id"]).data.metrics
    assert "cka_previous/layer_1" in metrics


def test_rightsize_refuses_a_trial_that_is_not_complete(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize"])
    study.enqueue_trial({"x": 1})
    with pytest.raises(ConfigError, match=r"trial 0 of study .* is WAITING"):
        propose(study, 0, config=make_config(tmp_path))
    with pytest.raises(ConfigError, match=r"--trial 5: study .* has trials 0..0"):
        propose(study, 5, config=make_config(tmp_path))


@pytest.mark.slow
def test_run_says_which_queued_trials_run_before_the_proposal(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    searched = searched_study(tmp_path_factory.getbasetemp())
    study = searched.study()
    done = [t for t in study.trials if t.state.name == "COMPLETE" and "spec" in t.user_attrs]
    widest = max(done, key=lambda t: sum(t.user_attrs["spec"]["widths"]))
    # A trial a user queued earlier: Optuna runs waiting trials oldest first.
    study.enqueue_trial(dict(done[0].params))
    earlier = max(t.number for t in searched.study().trials)
    args = ["rightsize", "--storage", searched.storage, "--tracking-uri", searched.tracking]
    args += ["--trial", str(widest.number), "--keep-depth", "--margin", "1.0", "--run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # After 1 epoch the widest trial uses less than its width.
    assert "nothing to cut" not in out, out
    assert (
        f"running the trials queued before it first (Optuna runs the oldest first): {earlier}\n"
        in out
    )
    fresh = searched.study()
    assert fresh.trials[earlier].state.name == "COMPLETE"
    assert fresh.trials[earlier + 1].state.name == "COMPLETE"
    assert f"trial {earlier + 1} (COMPLETE)" in out
