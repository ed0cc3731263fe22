"""The early score: registered with its direction, anchored on hand-made values, computed in a
search, and ``rank_early`` on a dataset other than the one the specs came from."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

import codenas
from codenas.errors import ConfigError
from codenas.evaluation.early_score import early_score
from codenas.metrics import get_metric
from codenas.spaces import CNNSpec, MLPSpec
from tests.conftest import make_config


def values(val_loss: float, eranks: list[float], dead: list[float] | None = None) -> dict:
    out = {"val_loss": val_loss}
    for k, e in enumerate(eranks):
        out[f"effective_rank/layer_{k}"] = e
        out[f"dead_fraction/layer_{k}"] = (dead or [0.0] * len(eranks))[k]
    return out


def test_early_score_is_a_registered_run_metric_to_maximise() -> None:
    info = get_metric("early_score")
    assert info.direction == "maximize"
    assert info.scope == "run"


def test_lower_validation_loss_scores_higher() -> None:
    ctx = {"n_outputs": 10}
    assert early_score(values(0.1, [20.0]), ctx) > early_score(values(0.2, [20.0]), ctx)


def test_the_shipped_score_is_minus_log_val_loss_whatever_the_dead_units() -> None:
    ctx = {"n_outputs": 10}
    alive = values(0.2, [30.0, 12.0])
    last_dead = values(0.2, [30.0, 12.0], dead=[0.0, 0.25])
    assert early_score(alive, ctx) == pytest.approx(-math.log(0.2))
    assert early_score(last_dead, ctx) == pytest.approx(-math.log(0.2))
    assert early_score({"val_loss": 0.2}, ctx) == pytest.approx(-math.log(0.2))  # no layers needed


def test_the_retired_dead_term_of_the_family_costs_its_weight_times_the_last_share() -> None:
    ctx = {"n_outputs": 10}
    last_dead = values(0.2, [30.0, 12.0], dead=[0.0, 0.25])
    first_dead = values(0.2, [30.0, 12.0], dead=[0.5, 0.0])
    assert early_score(last_dead, ctx, dead_weight=4.0) == pytest.approx(-math.log(0.2) - 1.0)
    assert early_score(first_dead, ctx, dead_weight=4.0) == pytest.approx(-math.log(0.2))


def test_the_rank_term_of_the_family_penalises_a_bottleneck_below_the_outputs() -> None:
    ctx = {"n_outputs": 10}
    wide, wider = values(0.2, [30.0, 12.0]), values(0.2, [30.0, 50.0])
    narrow = values(0.2, [30.0, 3.0])

    def score(v: dict, capped: bool = True) -> float:
        return early_score(v, ctx, rank_weight=1.0, dead_weight=0.0, capped=capped)

    assert score(narrow) == pytest.approx(-math.log(0.2) + math.log(0.3))
    assert score(wide) == pytest.approx(score(wider))  # capped at the number of outputs
    assert score(wide, capped=False) < score(wider, capped=False)


@pytest.mark.slow
def test_early_score_is_computed_and_logged_in_a_search(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        ["study.trials=2", "objectives=[early_score, params]", "tracking.enabled=false"],
    )
    study = codenas.search.run(config)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        metrics = trial.user_attrs["metrics"]
        assert trial.values[0] == pytest.approx(metrics["early_score"])
        assert metrics["early_score"] == pytest.approx(early_score(metrics, {"n_outputs": 10}))


DIGITS_SPECS = [
    MLPSpec((1, 8, 8), 10, (4,), "relu", 0.0),
    MLPSpec((1, 8, 8), 10, (32, 16), "relu", 0.0),
    MLPSpec((1, 8, 8), 10, (2, 2), "tanh", 0.2),
]


def test_rank_early_gives_one_score_per_spec_on_another_dataset() -> None:
    # Specs from a digits search, ranked on wine (13 features, 3 classes): adapted, trained, scored.
    scores = codenas.search.rank_early(DIGITS_SPECS, "wine", budget=2)
    assert len(scores) == len(DIGITS_SPECS)
    assert all(math.isfinite(s) for s in scores)
    same = codenas.search.rank_early(
        [s.to_dict() for s in DIGITS_SPECS], {"name": "wine"}, budget=2
    )
    assert same == pytest.approx(scores)  # dict specs, a mapping, the same seed: same scores


def test_rank_early_refuses_bad_input_before_training() -> None:
    with pytest.raises(ConfigError, match="unknown dataset"):
        codenas.search.rank_early(DIGITS_SPECS, "wyne")
    with pytest.raises(ConfigError, match="budget >= 1"):
        codenas.search.rank_early(DIGITS_SPECS, "wine", budget=0)
    cnn = CNNSpec((1, 8, 8), 10, (4,), 3, "relu", 2, "max", True)
    with pytest.raises(ConfigError, match="image inputs"):
        codenas.search.rank_early([cnn], "wine", budget=1)


def test_rank_early_takes_specs_as_users_write_them() -> None:
    # No input_shape, n_outputs or dropout: the dataset gives the sizes, the spec its defaults.
    written = [{"space": "mlp", "widths": [16], "activation": "relu"}]
    scores = codenas.search.rank_early(written, "iris", budget=1)
    full = [MLPSpec((4,), 3, (16,), "relu", 0.0)]
    assert scores == pytest.approx(codenas.search.rank_early(full, "iris", budget=1))
    with pytest.raises(ConfigError, match="unknown keys widht"):
        codenas.search.rank_early([{"space": "mlp", "widht": [16]}], "iris", budget=1)
