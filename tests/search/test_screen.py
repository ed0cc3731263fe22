"""The zero-cost screen: the best-scored candidate of the base sampler's size band is trained."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import codenas
from codenas.data import load_dataset
from codenas.search.screen import SCREEN_ATTR, ScreenedSampler, choose, zero_cost_scorer
from codenas.spaces import get_space


def test_choose_takes_the_best_score_inside_the_band_of_the_first_proposal() -> None:
    sizes = [1000.0, 1400.0, 600.0, 5000.0, 900.0]
    scores = [1.0, 2.0, 9.0, 50.0, math.nan]
    # 600 is outside 1000/1.5..1000*1.5, 5000 too: the widest never wins on its score alone.
    assert choose(scores, sizes, 1.5) == (1, 3)
    assert choose(scores, sizes, 2.0) == (2, 4)
    assert choose([math.nan, math.nan], [10.0, 10.0], 1.5) == (0, 2)


def test_the_scorer_gives_known_scores_for_known_networks(tmp_path: Path) -> None:
    config = codenas.load_config(None, ["space.min_width=1", "space.width={min: 1, max: 64}"])
    data = load_dataset(config.data)
    space = get_space(config.space.name)(config.space)
    score = zero_cost_scorer(config, data, space, "effective_rank")
    one = {"depth": 1, "width": 1, "shape": "constant", "activation": "tanh", "dropout": 0.0}
    value, size = score(one)
    assert value == pytest.approx(1.0)  # one unit spans one direction
    assert size == 64 * 1 + 1 + 1 * 10 + 10
    wide, _ = score({**one, "width": 32})
    assert 1.0 < wide <= 32.0


def test_a_screened_search_trains_the_in_band_best_of_tpes_draws(tmp_path: Path) -> None:
    config = codenas.load_config(
        None,
        [
            f"study.storage=sqlite:///{tmp_path / 'o.db'}",
            "study.trials=5",
            "train.epochs=1",
            "tracking.enabled=false",
            "study.sampler_options={n_startup_trials: 2}",
        ],
    )
    data = load_dataset(config.data)
    space = get_space(config.space.name)(config.space)
    scorer = zero_cost_scorer(config, data, space, "effective_rank")
    base = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    sampler = ScreenedSampler(base, scorer, candidates=6, band=1.5)
    study = optuna.create_study(
        storage=config.study.storage, directions=["maximize", "minimize"], sampler=sampler
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        space.sample(trial, data.input_shape, data.n_outputs)
        value, size = scorer(trial.params)
        return value, size  # a stand-in for training: the screen is what is tested here

    study.optimize(objective, n_trials=5)
    screened = [t for t in study.trials if SCREEN_ATTR in t.user_attrs]
    assert [t.number for t in screened] == [1, 2, 3, 4]  # once the space is known
    for t in screened:
        record = t.user_attrs[SCREEN_ATTR]
        assert record["candidates"] == 6 and 1 <= record["in_band"] <= 6
        assert (record["chosen"], record["in_band"]) == choose(
            record["scores"], record["sizes"], 1.5
        )
        value, size = scorer(t.params)  # what was trained is the chosen candidate
        assert value == pytest.approx(record["scores"][record["chosen"]], rel=1e-5)
        assert size == record["sizes"][record["chosen"]]


def test_a_weights_score_screens_without_rows(tmp_path: Path) -> None:
    """``synflow`` reads the candidate's weights (one backward pass), not activations."""
    from codenas.metrics import synflow
    from codenas.spaces import build_model

    config = codenas.load_config(None, [])
    data = load_dataset(config.data)
    space = get_space(config.space.name)(config.space)
    score = zero_cost_scorer(config, data, space, "synflow")
    params = {"depth": 2, "width": 16, "shape": "constant", "activation": "relu", "dropout": 0.0}
    value, size = score(params)
    spec = space.sample(optuna.trial.FixedTrial(params), data.input_shape, data.n_outputs)
    torch.manual_seed(0)  # as the scorer builds it
    assert value == synflow(build_model(spec), data.input_shape)
    assert size == 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert score({**params, "width": 32})[0] > value


def test_zico_screens_on_the_rows_and_their_labels() -> None:
    """``zico`` reads the gradients of the training loss on the scorer's seeded rows."""
    import torch.nn.functional as F

    from codenas.metrics import zico
    from codenas.spaces import build_model

    config = codenas.load_config(None, [])
    data = load_dataset(config.data)
    space = get_space(config.space.name)(config.space)
    score = zero_cost_scorer(config, data, space, "zico", batch_size=64)
    params = {"depth": 2, "width": 16, "shape": "constant", "activation": "relu", "dropout": 0.0}
    value, _ = score(params)
    rows = torch.as_tensor(np.random.default_rng(config.data.seed).permutation(len(data.train)))
    x, y = data.train.x[rows[:64]], data.train.y[rows[:64]]
    spec = space.sample(optuna.trial.FixedTrial(params), data.input_shape, data.n_outputs)
    torch.manual_seed(0)  # as the scorer builds it
    expected = zico(build_model(spec), [(x[:32], y[:32]), (x[32:], y[32:])], F.cross_entropy)
    assert np.isfinite(value) and value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("score", ["effective_rank", "synflow", "zico"])
def test_search_screen_in_a_config_screens_the_search_s_trials(tmp_path: Path, score: str) -> None:
    config = codenas.load_config(
        None,
        [
            f"study.storage=sqlite:///{tmp_path / 'o.db'}",
            "study.trials=3",
            "train.epochs=1",
            "tracking.enabled=false",
            f"search.screen={{score: {score}, candidates: 4}}",
        ],
    )
    study = codenas.search.run(config)
    assert isinstance(study.sampler, ScreenedSampler)
    records = [t.user_attrs.get(SCREEN_ATTR) for t in study.trials]
    assert records[0] is None  # nothing to screen before a parameter is known
    assert all(r is not None and r["candidates"] == 4 for r in records[1:])
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("nope", r"search\.screen\.score: unknown metric 'nope'"),
        ("val_accuracy", r"search\.screen\.score: 'val_accuracy' cannot score an untrained"),
    ],
)
def test_a_bad_screen_score_names_its_key(score: str, message: str) -> None:
    from codenas.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as info:
        codenas.load_config(None, [f"search.screen={{score: {score}}}"])
    assert "\n" not in str(info.value)
