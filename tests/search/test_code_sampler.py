"""The code-guided sampler: each rule on networks whose code is known by construction, the
delegation to its base sampler, the lineage it records, the plain-Optuna contract, and real
searches through codenas's driver on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from codenas import neuralcode as rules
from codenas.errors import ConfigError
from codenas.metrics import capture_activations, layer_code
from codenas.neuralcode import select_spread
from codenas.search.samplers import (
    LAYERS_ATTR,
    PARENT_ATTR,
    REASON_ATTR,
    RULE_ATTR,
    CodeSampler,
    check_options,
    lineage,
    proposed_widths,
    report_layers,
    usage_from_attr,
)
from codenas.search.samplers.code import WARM_START_ATTR, set_trial_user_attrs
from codenas.spaces import build_model
from codenas.spaces.mlp import MLPSpec
from tests.conftest import tiny_overrides

optuna.logging.set_verbosity(optuna.logging.ERROR)


def code_of(spec: MLPSpec, setup, n: int = 400, seed: int = 0):
    """The per-layer code of an MLP whose weights ``setup`` fixes, on Gaussian inputs."""
    torch.manual_seed(seed)
    model = build_model(spec)
    with torch.no_grad():
        setup(model.hidden_layers)
    x = torch.randn(n, *spec.input_shape)
    usage = usage_from_attr(layer_code(capture_activations(model, x)))
    assert usage is not None
    return usage


def linear(block: torch.nn.Module) -> torch.nn.Linear:
    return block[0]


# ----------------------------------------------------------------------------- the rules


def test_a_layer_made_rank_3_is_shrunk_to_3_to_5_units() -> None:
    spec = MLPSpec(input_shape=(10,), n_outputs=3, widths=(32, 16), activation="relu")

    def setup(layers) -> None:
        g = torch.Generator().manual_seed(1)
        a, b = torch.randn(32, 3, generator=g), torch.randn(3, 10, generator=g)
        linear(layers[0]).weight.copy_(a @ b)  # every unit reads the same 3 directions
        linear(layers[0]).bias.fill_(100.0)  # ... in ReLU's linear region: exactly rank 3

    usage = code_of(spec, setup)
    assert usage[0].effective_rank <= 3.0 + 1e-6
    move = rules.shrink(usage, margin=1.5)
    assert move is not None and move.rule == "shrink"
    assert 3 <= move.widths[0] <= 5
    assert move.widths[1] <= 16
    assert "layer 0: 32 -> " in move.reason
    assert move.values["effective_rank/layer_0"] == pytest.approx(usage[0].effective_rank, 1e-3)


def test_a_copied_layer_is_dropped() -> None:
    spec = MLPSpec(input_shape=(12,), n_outputs=3, widths=(16, 16, 8), activation="relu")

    def setup(layers) -> None:
        linear(layers[1]).weight.copy_(torch.eye(16))  # relu(relu(h)) = relu(h): a copy
        linear(layers[1]).bias.zero_()

    usage = code_of(spec, setup)
    assert usage[1].cka_previous == pytest.approx(1.0, abs=1e-6)
    assert usage[2].cka_previous < 0.95
    move = rules.drop(usage, cka_threshold=0.95)
    assert move is not None and move.widths == (16, 8)
    assert "layer 1 removed" in move.reason
    assert rules.drop(usage, cka_threshold=0.95, min_depth=3) is None


def test_a_full_rank_saturated_layer_is_widened_and_deepened() -> None:
    spec = MLPSpec(input_shape=(64,), n_outputs=3, widths=(8,), activation="relu")

    def setup(layers) -> None:
        q, _ = torch.linalg.qr(torch.randn(64, 8, generator=torch.Generator().manual_seed(2)))
        linear(layers[0]).weight.copy_(q.T)  # 8 orthonormal directions of isotropic inputs
        linear(layers[0]).bias.fill_(50.0)

    usage = code_of(spec, setup, n=2000)
    assert usage[0].saturation >= 0.9
    widened = rules.widen(usage, saturation=0.9, grow_factor=2.0, max_width=256)
    assert widened is not None and widened.widths == (16,)
    assert rules.widen(usage, max_width=8) is None  # already at the space's widest
    deeper = rules.deepen(usage, saturation=0.9, max_depth=4)
    assert deeper is not None and deeper.widths == (8, 8)
    assert rules.deepen(usage, max_depth=1) is None
    # A rank-3 layer is far from saturated: nothing grows.
    low = [rules.LayerUsage(width=32, effective_rank=3.0, dead_fraction=0.0)]
    assert rules.widen(low) is None and rules.deepen(low) is None


def test_one_unit_steps_are_not_worth_a_trial() -> None:
    sampler = CodeSampler(min_change=0.1)
    usage = [rules.LayerUsage(width=40, effective_rank=25.0, dead_fraction=0.0)]
    assert not sampler._big_enough(usage, rules.Move("shrink", (38,), "", {}))
    assert sampler._big_enough(usage, rules.Move("shrink", (36,), "", {}))
    assert sampler._big_enough(usage, rules.Move("deepen", (40, 40), "", {}))


def test_malformed_layer_code_is_no_signal() -> None:
    assert usage_from_attr(None) is None
    assert usage_from_attr([]) is None
    nan = {"width": 4, "effective_rank": float("nan"), "dead_fraction": 0}
    assert usage_from_attr([nan]) is None
    assert usage_from_attr([{"width": 4}]) is None


def test_warm_start_selection_spreads_along_the_front() -> None:
    # (score, -size): the front is every point here; 3 picks take both ends and the middle.
    scores = [[float(i), -float(i)] for i in range(9)]
    assert sorted(select_spread(scores, 3)) == [0, 4, 8]
    assert select_spread([[1.0], [3.0], [2.0]], 2) == [1, 2]


def test_options_are_checked_with_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"study.sampler_options.margin: margin >= 1"):
        check_options({"margin": 0.5})
    with pytest.raises(ConfigError, match=r"Did you mean 'margin'"):
        check_options({"margn": 2.0})
    with pytest.raises(ConfigError, match=r"study.sampler_options.moves"):
        check_options({"moves": ["shrink", "teleport"]})
    with pytest.raises(ConfigError, match=r"saturation"):
        CodeSampler(saturation=1.5)


# ----------------------------------------------------------------------------- plain Optuna


def plain(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_int("y", 0, 10)
    c = trial.suggest_categorical("c", ["a", "b"])
    return (x - 1.0) ** 2 + y, abs(x) + (c == "a")


def test_without_code_it_is_its_base_sampler_draw_for_draw(tmp_path: Path) -> None:
    def params(sampler: optuna.samplers.BaseSampler, name: str) -> list[dict]:
        study = optuna.create_study(
            study_name=name,
            storage=f"sqlite:///{tmp_path / 'd.db'}",
            directions=["minimize", "minimize"],
            sampler=sampler,
        )
        study.optimize(plain, n_trials=14)
        return [t.params for t in study.trials]

    base = params(optuna.samplers.TPESampler(seed=7), "tpe")
    coded = params(
        CodeSampler(optuna.samplers.TPESampler(seed=7), seed=1, move_probability=1.0), "code"
    )
    assert coded == base
    assert len({json.dumps(p, sort_keys=True) for p in base}) == 14


def contract_objective(trial: optuna.Trial) -> tuple[float, float]:
    """A user's own objective: reads the proposed widths, reports a code known by construction."""
    depth = trial.suggest_int("depth", 1, 3)
    width = trial.suggest_int("width", 4, 64, log=True)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    widths = proposed_widths(trial) or [width] * depth
    trial.set_user_attr("built", widths)
    trial.set_user_attr("rule_seen", trial.user_attrs.get(RULE_ATTR))
    rng = np.random.default_rng(trial.number)
    z = rng.normal(size=(300, 3))  # every layer carries the same 3 directions
    layers = [z @ rng.normal(size=(3, w)) for w in widths]
    report_layers(trial, layers)
    size = float(sum(widths))
    return min(size, 40.0) / 40.0 + 0.1 * (act == "relu"), size


def test_plain_optuna_contract_moves_are_built_and_their_lineage_recorded(
    tmp_path: Path,
) -> None:
    storage = f"sqlite:///{tmp_path / 'plain.db'}"

    def score(trial: optuna.Trial) -> float:  # a user's zero-cost score: prefers width 16
        return -abs(trial.suggest_int("width", 4, 64, log=True) - 16) - trial.suggest_int(
            "depth", 1, 3
        )

    sampler = CodeSampler(
        seed=3,
        moves=("shrink",),
        move_probability=1.0,
        warm_start=score,
        warm_start_candidates=20,
        warm_start_trials=2,
    )
    study = optuna.create_study(
        study_name="plain",
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=sampler,
    )
    study.optimize(contract_objective, n_trials=8)

    again = optuna.load_study(study_name="plain", storage=storage)  # what another worker sees
    trials = again.trials
    ranking = again.user_attrs[WARM_START_ATTR]
    for k in (0, 1):  # the warm start: the best-scored candidates, in rank order
        assert trials[k].user_attrs[RULE_ATTR] == "warm_start"
        assert trials[k].user_attrs["rule_seen"] == "warm_start"  # seen inside the objective
        assert {n: trials[k].params[n] for n in ("width", "depth")} == ranking[k]["params"]
    assert ranking[0]["score"][0] >= ranking[1]["score"][0]
    moved = [t for t in trials[2:] if t.user_attrs.get(RULE_ATTR) == "shrink"]
    assert moved, [t.user_attrs.get(RULE_ATTR) for t in trials]
    for t in moved:
        parent = trials[t.user_attrs[PARENT_ATTR]]
        assert parent.state.name == "COMPLETE" and parent.number < t.number
        assert t.user_attrs["built"] == t.user_attrs["widths"]  # the objective built the move
        assert t.params["depth"] == len(t.user_attrs["widths"])
        assert max(t.user_attrs["widths"]) <= 5  # 3 directions used -> ceil(1.5 x erank)
        assert t.params["act"] == parent.params["act"]
        assert "erank" in t.user_attrs[REASON_ATTR]
        assert lineage(t.user_attrs) == f"shrink<-#{parent.number}"
    built = [(*t.user_attrs["built"], t.params["act"]) for t in trials]
    for t in moved:  # a move never repeats an architecture tried before it
        assert built[t.number] not in built[: t.number]
    assert all(len(t.user_attrs[LAYERS_ATTR]) == len(t.user_attrs["built"]) for t in trials)


def test_a_failing_score_never_stops_the_search() -> None:
    def score(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        if x < 0:
            raise RuntimeError("cannot build")
        return -x

    def broken(trial: optuna.Trial) -> float:
        raise RuntimeError("always")

    for fn, warm in ((score, True), (broken, False)):
        sampler = CodeSampler(seed=0, warm_start=fn, warm_start_candidates=10, warm_start_trials=1)
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        study.optimize(plain, n_trials=3)
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
        assert (study.trials[0].user_attrs.get(RULE_ATTR) == "warm_start") is warm
        if warm:
            assert study.trials[0].params["x"] >= 0


def test_the_one_private_optuna_access_still_works(tmp_path: Path) -> None:
    """Fails loudly when a new Optuna changes what set_trial_user_attrs relies on."""
    seen = {}

    class Marking(optuna.samplers.RandomSampler):
        def before_trial(self, study, trial) -> None:
            set_trial_user_attrs(study, trial, {"code.rule": "marked"})

    storage = f"sqlite:///{tmp_path / 'p.db'}"
    study = optuna.create_study(study_name="p", storage=storage, sampler=Marking(seed=0))

    def objective(trial: optuna.Trial) -> float:
        seen["attrs"] = trial.user_attrs
        return trial.suggest_float("x", 0, 1)

    study.optimize(objective, n_trials=1)
    assert seen["attrs"] == {"code.rule": "marked"}  # the live trial's cache
    stored = optuna.load_study(study_name="p", storage=storage).trials[0].user_attrs
    assert stored == {"code.rule": "marked"}  # the storage


# ----------------------------------------------------------------------------- codenas driver


def cli_args(tmp_path: Path, trials: int) -> list[str]:
    overrides = [
        *tiny_overrides(tmp_path, study="code"),
        "study.sampler=code",
        "study.sampler_options={move_probability: 1.0, warm_start_trials: 2}",
        "tracking.enabled=false",
    ]
    return ["search", "--no-progress", "--trials", str(trials)] + [
        a for o in overrides for a in ("--set", o)
    ]


def check_code_study(tmp_path: Path, n: int) -> optuna.Study:
    study = optuna.load_study(study_name="code", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * n
    for t in trials:
        widths = t.user_attrs["spec"]["widths"]
        assert [layer["width"] for layer in t.user_attrs[LAYERS_ATTR]] == widths
    ranking = study.user_attrs[WARM_START_ATTR]
    for k in (0, 1):
        assert trials[k].user_attrs[RULE_ATTR] == "warm_start"
        assert trials[k].params == ranking[k]["params"]
    moved = [t for t in trials[2:] if t.user_attrs.get(RULE_ATTR) in rules.RULES]
    assert moved
    for t in moved:
        assert t.user_attrs["spec"]["widths"] == t.user_attrs["widths"]
        assert trials[t.user_attrs[PARENT_ATTR]].state.name == "COMPLETE"
    return study


def test_codenas_search_with_the_code_sampler_end_to_end(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codenas.cli import main

    assert main(cli_args(workdir, 5)) == 0
    study = check_code_study(workdir, 5)
    capsys.readouterr()
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    assert main(["front", "--study", "code", "--storage", storage, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_trial = {t.number: t for t in study.trials}
    assert rows and all(r["lineage"] == lineage(by_trial[r["trial"]].user_attrs) for r in rows)
    assert main(["front", "--study", "code", "--storage", storage]) == 0
    table = capsys.readouterr().out
    assert "lineage" in table.splitlines()[1]
    assert all(r["lineage"] in table for r in rows)


def test_bad_sampler_option_is_one_line_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codenas.cli import main

    args = cli_args(workdir, 1)
    args[args.index("study.sampler_options={move_probability: 1.0, warm_start_trials: 2}")] = (
        "study.sampler_options={margin: 0.5}"
    )
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "study.sampler_options.margin" in err[0]
    # refused before any study was created in the storage
    db = workdir / "optuna.db"
    assert any(a == f"study.storage=sqlite:///{db}" for a in args)
    assert not db.exists() or optuna.get_all_study_names(f"sqlite:///{db}") == []


@pytest.mark.slow
def test_two_workers_share_the_warm_start_and_the_moves(tmp_path: Path) -> None:
    # Trials of about half a second: the command's own process (worker 0) starts first and
    # would run a handful of one-epoch trials alone before the other worker has forked.
    args = [*cli_args(tmp_path, 6), "--set", "train.epochs=40", "--workers", "2"]
    proc = subprocess.run(
        [sys.executable, "-m", "codenas.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        # this checkout's codenas, whichever one is installed
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.returncode == 0, proc.stderr
    study = check_code_study(tmp_path, 6)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


# ----------------------------------------------------------------------------- inheritance


def net(widths: tuple[int, ...], seed: int = 0, n_in: int = 6) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(MLPSpec(input_shape=(n_in,), n_outputs=3, widths=widths))


def moved(parent: torch.nn.Module, widths: tuple[int, ...], rule: str, **kw) -> torch.nn.Module:
    from codenas.search.samplers import inherit

    spec = MLPSpec(
        input_shape=(6,), n_outputs=3, widths=tuple(b[0].out_features for b in parent.hidden_layers)
    )
    child = net(widths, seed=1)
    child.load_state_dict(inherit.transform(parent, spec, rule, widths, **kw)[1].state_dict())
    return child


@torch.no_grad()
def test_inherited_weights_preserve_the_parent_function_where_the_move_allows() -> None:
    x = torch.randn(200, 6)
    parent = net((8, 8))
    # Net2WiderNet and Net2DeeperNet (ReLU) are exact.
    wide = moved(parent, (16, 12), "widen", rng=np.random.default_rng(0), noise=0.0)
    torch.testing.assert_close(wide(x), parent(x))
    torch.testing.assert_close(moved(parent, (8, 8, 8), "deepen")(x), parent(x))
    # Cutting dead units changes nothing; the live ones are the ones kept.
    with_dead = net((10, 8))
    with_dead.hidden_layers[0][0].bias[6:] = -100.0  # units 6..9 never fire
    acts = capture_activations(with_dead, x)
    small = moved(with_dead, (6, 8), "shrink", acts=acts)
    torch.testing.assert_close(small(x), with_dead(x))
    # Folding a layer that stays in its linear region into the next is exact too.
    linear_mid = net((8, 8, 8))
    linear_mid.hidden_layers[1][0].bias.fill_(100.0)
    folded = moved(linear_mid, (8, 8), "drop", values={"cka_previous/layer_1": 0.99})
    torch.testing.assert_close(folded(x), linear_mid(x), rtol=1e-4, atol=1e-3)


def test_codenas_search_can_inherit_weights(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codenas.cli import main

    args = cli_args(workdir, 4)
    options = "study.sampler_options={move_probability: 1.0, warm_start_trials: 2}"
    args[args.index(options)] = (
        "study.sampler_options={move_probability: 1.0, warm_start_trials: 2, inherit: true, "
        f"inherit_store: {workdir / 'weights'}}}"
    )
    assert main(args) == 0
    trials = check_code_study(workdir, 4).trials
    assert all("code.weights" in t.user_attrs for t in trials)
    for t in trials[2:]:
        assert t.user_attrs["code.inherited"] is True, t.user_attrs.get("code.inherit_reason")
    assert len(list((workdir / "weights").iterdir())) == 4


@pytest.mark.slow
def test_proposals_and_their_lineage_are_tagged_in_mlflow(workdir: Path) -> None:
    from mlflow import MlflowClient

    from codenas.cli import main

    args = cli_args(workdir, 5)
    args[args.index("tracking.enabled=false")] = f"tracking.uri=sqlite:///{workdir / 'mlflow.db'}"
    args += ["--set", "tracking.report=false"]
    assert main(args) == 0
    study = optuna.load_study(study_name="code", storage=f"sqlite:///{workdir / 'optuna.db'}")
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = {
        r.data.tags.get("codenas.trial_number"): r
        for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
    }
    moved = [t for t in study.trials if t.user_attrs.get("code.parent") is not None]
    assert moved, "move_probability=1 after the warm start: some trial was a move"
    for trial in moved:
        tags = runs[str(trial.number)].data.tags
        parent = trial.user_attrs["code.parent"]
        assert tags["codenas.rule"] == trial.user_attrs["code.rule"]
        assert tags["codenas.lineage"] == f"{trial.user_attrs['code.rule']}<-#{parent}"
        assert tags["codenas.parent_trial"] == str(parent)
        assert tags["codenas.parent_run"] == study.trials[parent].user_attrs["mlflow_run_id"]
        assert tags["codenas.reason"] == trial.user_attrs["code.reason"]
    warm = [t for t in study.trials if t.user_attrs.get("code.rule") == "warm_start"]
    assert warm and runs[str(warm[0].number)].data.tags["codenas.rule"] == "warm_start"


def test_the_warm_start_scores_a_cnn_with_per_position_codes_as_trials_do() -> None:
    from codenas import load_config
    from codenas.data import load_dataset
    from codenas.metrics import capture_layers, compute_metrics, naswot_channel_mean
    from codenas.search.samplers.warmstart import naswot_score
    from codenas.spaces import get_space

    config = load_config(
        "shapes-cnn", ["data.n_samples=300", "objectives=[{metric: val_accuracy}]"]
    )
    data = load_dataset(config.data)
    space = get_space(config.space.name)(config.space)
    params = {"depth": 3, "width": 16, "shape": "constant", "kernel_size": 3}
    params["activation"] = config.space.activation[0]
    score = naswot_score(config, data, space, batch_size=64)(optuna.trial.FixedTrial(params))
    spec = space.sample(optuna.trial.FixedTrial(params), data.input_shape, data.n_outputs)
    torch.manual_seed(0)
    model = build_model(spec)
    rng = np.random.default_rng(config.data.seed)
    x = data.train.x[torch.as_tensor(rng.permutation(len(data.train))[:64])]
    captured = capture_layers(model, x)  # what a trial's metrics read
    assert score == pytest.approx(
        compute_metrics(["naswot"], captured.units, codes=captured.codes)["naswot"]
    )
    assert score != pytest.approx(naswot_channel_mean(captured.units))


def test_the_base_sampler_models_no_move_child(tmp_path: Path) -> None:
    """A move's child records its parent's depth/width/shape but is built with other widths:
    TPE inside the code sampler must not model it as if those parameters had been trained."""
    from codenas.search._optuna_private import StudyView
    from codenas.search.samplers.code import CodeSampler

    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'o.db'}", directions=["maximize", "minimize"]
    )
    for rule in (None, "warm_start", "shrink", "widen", None):
        trial = study.ask()
        trial.suggest_int("depth", 1, 3)
        if rule is not None:
            trial.set_user_attr("code.rule", rule)
        study.tell(trial, [0.5, 10.0])
    view = CodeSampler._modelled(study)
    assert isinstance(view, StudyView)
    assert [t.number for t in view.get_trials(deepcopy=False)] == [0, 1, 4]
    assert [t.number for t in view._get_trials(deepcopy=False, use_cache=True)] == [0, 1, 4]
    assert view.directions == study.directions and len(study.trials) == 5
    # and the base sampler samples from that view without complaint
    sampler = CodeSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=1), seed=0)
    study.sampler = sampler
    study.optimize(lambda t: (t.suggest_int("depth", 1, 3) / 3, 1.0), n_trials=2)
    assert len(study.trials) == 7
