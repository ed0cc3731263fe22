"""Multi-objective early stopping: the dominance rule on hand-made checkpoint tables, the config,
and a pruned trial as Optuna and MLflow record it."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

import codenas
from codenas.errors import ConfigError
from codenas.search.early import Decision, checkpoint_directions, decide, dominates
from tests.conftest import make_config

DIRS = {"val_accuracy": "maximize", "capacity_usage": "maximize", "params": "minimize"}


def row(acc: float, usage: float, params: float) -> dict[str, float]:
    return {"val_accuracy": acc, "capacity_usage": usage, "params": params}


# ----------------------------------------------------------------------------- the rule


def test_dominates_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates([2, 2], [1, 2])
    assert not dominates([2, 2], [2, 2])  # equal is not dominating
    assert not dominates([3, 1], [2, 2])  # a trade-off


# Completed trials at epoch 2 of a hand-made study. The candidate (0.60, 0.50, 1000) is
# dominated by the first three (as good or better on all three, better on one), not by the
# fourth (more parameters) nor the fifth (lower accuracy).
TABLE = [
    row(0.90, 0.60, 1000),
    row(0.70, 0.50, 800),
    row(0.60, 0.55, 1000),
    row(0.95, 0.90, 5000),
    row(0.50, 0.90, 100),
]
CANDIDATE = row(0.60, 0.50, 1000)


@pytest.mark.parametrize(("share", "stop"), [(0.5, True), (0.6, True), (0.61, False), (1.0, False)])
def test_stops_when_the_dominating_share_is_reached(share: float, stop: bool) -> None:
    decision = decide(CANDIDATE, TABLE, DIRS, dominated_share=share, min_trials=5)
    assert (decision.dominated_by, decision.compared) == (3, 5)
    assert decision.stop is stop
    if stop:
        assert "dominated by 3 of 5 completed trials" in decision.reason
        assert "val_accuracy=0.6 (max)" in decision.reason


def test_too_few_completed_trials_never_stop() -> None:
    decision = decide(CANDIDATE, TABLE[:3], DIRS, dominated_share=0.1, min_trials=4)
    assert decision == Decision(False, 3, 3)


def test_a_non_dominated_trial_goes_on_however_low_the_share() -> None:
    best = row(0.99, 0.95, 50)
    assert not decide(best, TABLE, DIRS, dominated_share=0.01, min_trials=1).stop


def test_rows_missing_a_metric_or_nan_are_left_out() -> None:
    table = [*TABLE[:3], {"val_accuracy": 0.99, "params": 10}, row(math.nan, 0.9, 10)]
    decision = decide(CANDIDATE, table, DIRS, dominated_share=0.5, min_trials=1)
    assert (decision.dominated_by, decision.compared) == (3, 3)


def test_a_nan_in_the_candidate_counts_as_worst() -> None:
    decision = decide(row(math.nan, 0.5, 1000), TABLE, DIRS, dominated_share=0.5, min_trials=1)
    assert decision.dominated_by == 4  # now also dominated by the fifth (lower accuracy)


def test_directions_are_respected() -> None:
    # Minimising accuracy turns the table upside down: now the third row (same accuracy, more
    # usage) and the fifth (lower accuracy, more usage, fewer parameters) dominate.
    flipped = {**DIRS, "val_accuracy": "minimize"}
    decision = decide(CANDIDATE, TABLE, flipped, dominated_share=0.4, min_trials=1)
    assert decision.dominated_by == 2 and decision.stop


def test_bad_share_and_missing_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match="dominated_share"):
        decide(CANDIDATE, TABLE, DIRS, dominated_share=0.0, min_trials=1)
    with pytest.raises(ValueError, match="lacks capacity_usage"):
        decide({"val_accuracy": 1.0, "params": 1.0}, TABLE, DIRS, dominated_share=0.5, min_trials=1)


# ----------------------------------------------------------------------------- config


def test_default_checkpoint_metrics_are_the_cheap_objectives(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert not config.search.early_stopping.enabled
    assert checkpoint_directions(config) == DIRS
    factors = make_config(tmp_path, path="factors-mlp")
    # dci_forest is too slow to read after every epoch: it is left out of the comparison.
    assert checkpoint_directions(factors) == {"val_accuracy": "maximize", "params": "minimize"}


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"search\.early_stopping\.dominated_share"):
        make_config(tmp_path, ["search.early_stopping.dominated_share=1.5"])
    with pytest.raises(ConfigError, match="cannot be read after every epoch"):
        make_config(tmp_path, ["search.early_stopping.metrics=[dci_forest]"])
    with pytest.raises(ConfigError, match="unknown key 'patience'"):
        make_config(tmp_path, ["search.early_stopping.patience=3"])


def test_a_config_comparing_only_params_is_refused_before_training(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        ["search.early_stopping={enabled: true, metrics: [params]}"],
    )
    with pytest.raises(ConfigError, match="only params"):
        codenas.search.run(config)


# ----------------------------------------------------------------------------- end to end

WIDE = {"depth": 1, "width": 32, "shape": "constant", "activation": "relu", "dropout": 0.0}
TINY = {"depth": 3, "width": 4, "shape": "constant", "activation": "tanh", "dropout": 0.3}


@pytest.mark.slow
def test_a_dominated_trial_is_pruned_in_optuna_and_killed_in_mlflow(tmp_path: Path) -> None:
    from tests.search.test_study import child_runs

    # Compared on validation accuracy only, a 4-unit tanh net with dropout is behind a 32-unit
    # ReLU net after one epoch, so with one completed trial and any share it is stopped there.
    config = make_config(
        tmp_path,
        [
            "study.trials=2",
            "train.epochs=3",
            "search.early_stopping={enabled: true, warmup_epochs: 1, dominated_share: 0.5, "
            "min_trials: 1, metrics: [val_accuracy]}",
        ],
    )
    study = codenas.search.run(config, enqueue=[WIDE, TINY])
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE
    # Checkpoints are kept where trials can be compared: from the warmup to the last but one.
    assert set(first.user_attrs["checkpoints"]) == {"1", "2"}
    assert set(first.user_attrs["checkpoints"]["1"]) == {"val_accuracy"}
    assert first.user_attrs["metrics"]["time/checkpoints"] >= 0
    assert second.state == optuna.trial.TrialState.PRUNED
    reason = second.user_attrs["prune_reason"]
    assert reason.startswith("early stopping at epoch 1/3: dominated by 1 of 1 completed trials")
    assert second.user_attrs["metrics"]["epochs"] == 1.0
    assert set(second.user_attrs["checkpoints"]) == {"1"}

    _, _, children = child_runs(config)
    runs = {int(r.data.tags["codenas.trial_number"]): r for r in children}
    assert runs[0].info.status == "FINISHED"
    assert runs[1].info.status == "KILLED"
    assert runs[1].data.tags["codenas.state"] == "PRUNED"
    assert runs[1].data.tags["codenas.prune_reason"] == reason
    assert "val_accuracy" in runs[1].data.metrics  # its partial values reach MLflow
