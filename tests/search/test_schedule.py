"""The multi-fidelity schedule (``search.schedule``): the rung rule on hand-made rung tables,
the config, agreement between processes reading one storage, and a search end to end."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.pruners._successive_halving import _is_trial_promotable_to_next_rung

import codenas
from codenas.cli import main
from codenas.errors import ConfigError
from codenas.search.schedule import (
    compared_metrics,
    crowding_distance,
    decide,
    keep_count,
    order_at_rung,
    rung_epochs,
    rung_front,
)
from tests.conftest import make_config

OBJECTIVES = {"val_accuracy": "maximize", "capacity_usage": "maximize", "params": "minimize"}

# ----------------------------------------------------------------------------- the rule


def test_rungs_grow_by_eta_up_to_the_epochs_of_a_full_trial() -> None:
    assert rung_epochs(1, 3, 10) == [1, 3, 9, 10]
    assert rung_epochs(2, 2, 10) == [2, 4, 8, 10]
    assert rung_epochs(1, 3, 3) == [1, 3]
    assert rung_epochs(1, 3, 1) == [1]


@pytest.mark.parametrize(("n", "keep"), [(1, 1), (2, 1), (3, 1), (5, 1), (6, 2), (9, 3), (10, 3)])
def test_the_top_floor_n_over_eta_go_on_at_least_one(n: int, keep: int) -> None:
    assert keep_count(n, 3) == keep


def test_crowding_distance_on_a_known_front() -> None:
    # A front of three: the two ends are infinitely far, the middle one's neighbours span
    # the whole range on both objectives, 4/4 + 4/4 = 2.
    d = crowding_distance(np.array([[0.0, 4.0], [1.0, 2.0], [4.0, 0.0]]))
    assert math.isinf(d[0]) and math.isinf(d[2]) and d[1] == pytest.approx(2.0)


# At rung 0 (values oriented higher-better: accuracy, -params). Trials 0, 1 and 2 form the
# first front (0 the most accurate, 1 the smallest, 2 in between); 3 is dominated by 0 (same
# size, less accurate), 4 and 5 by everyone. Six trials, eta 3: the top two go on.
RUNG = {
    0: (0.90, -1000.0),
    1: (0.80, -100.0),
    2: (0.85, -500.0),
    3: (0.70, -1000.0),
    4: (0.60, -2000.0),
    5: (0.50, -3000.0),
}


def test_a_dominated_trial_stops_at_rung_zero() -> None:
    for trial in (3, 4, 5):
        d = decide(trial, RUNG, eta=3, min_trials=1)
        assert not d.promote and d.position >= 3 and (d.keep, d.compared) == (2, 6)


def test_front_members_go_on_and_a_tie_follows_crowding_distance() -> None:
    assert order_at_rung(RUNG) == [0, 1, 2, 3, 4, 5]
    assert decide(0, RUNG, eta=3, min_trials=1).promote  # an end of the front
    assert decide(1, RUNG, eta=3, min_trials=1).promote  # the other end
    # A front member in the middle of it: the front has three places for two seats, and the
    # ends are farther from their neighbours (crowding distance) than it is.
    middle = decide(2, RUNG, eta=3, min_trials=1)
    assert not middle.promote and middle.position == 2


def test_equal_crowding_goes_to_the_lower_trial_number() -> None:
    # Two mutually non-dominated trials (both ends, infinite crowding) and a dominated one:
    # three trials, one seat; the earlier of the two goes on.
    rows = {7: (0.5, -1000.0), 4: (0.9, -900.0), 9: (0.95, -950.0)}
    assert order_at_rung(rows) == [4, 9, 7]
    assert decide(4, rows, eta=3, min_trials=1).promote
    assert not decide(9, rows, eta=3, min_trials=1).promote
    # The same values under other numbers: the seat follows the number, not the values.
    swapped = {7: (0.5, -1000.0), 9: (0.9, -900.0), 4: (0.95, -950.0)}
    assert order_at_rung(swapped) == [4, 9, 7]


def test_below_min_trials_every_trial_goes_on() -> None:
    rows = {0: (0.9, -10.0), 1: (0.1, -1000.0)}  # 1 is dominated
    assert decide(1, rows, eta=3, min_trials=3).promote
    assert not decide(1, rows, eta=3, min_trials=2).promote


def test_a_nan_ranks_last() -> None:
    rows = {0: (math.nan, -10.0), 1: (0.1, -1000.0), 2: (0.2, -2000.0)}
    assert order_at_rung(rows) == [1, 2, 0]
    assert not decide(0, rows, eta=2, min_trials=1).promote


def test_one_objective_follows_optunas_successive_halving() -> None:
    # With a single metric the rule is Optuna's SuccessiveHalvingPruner's, trial by trial.
    rng = np.random.default_rng(0)
    for eta in (2, 3, 4):
        values = rng.permutation(40).astype(float)
        for n in range(1, len(values) + 1):
            rows = {i: (values[i],) for i in range(n)}
            ours = decide(n - 1, rows, eta=eta, min_trials=1).promote
            theirs = _is_trial_promotable_to_next_rung(
                values[n - 1],
                list(values[:n]),
                eta,
                optuna.study.StudyDirection.MAXIMIZE,
            )
            assert ours == theirs, (eta, n)


# ----------------------------------------------------------------------------- config


def test_default_compared_metrics_are_the_objectives_readable_at_a_rung(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.search.schedule is None  # off by default
    assert compared_metrics(OBJECTIVES, None) == OBJECTIVES
    factors = make_config(tmp_path, path="factors-mlp")
    objectives = {o.metric: str(o.direction) for o in factors.objectives}
    # dci_forest is too slow to read after an epoch: it is left out of the comparison.
    assert compared_metrics(objectives, None) == {"val_accuracy": "maximize", "params": "minimize"}


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"search\.schedule\.eta: .*greater than or equal to 2"):
        make_config(tmp_path, ["search.schedule={eta: 1}"])
    with pytest.raises(ConfigError, match="cannot be read after every epoch"):
        make_config(tmp_path, ["search.schedule.metrics=[dci_forest]"])
    with pytest.raises(ConfigError, match="unknown key 'patience'"):
        make_config(tmp_path, ["search.schedule={patience: 3}"])


def test_early_stopping_is_retired_with_the_new_key_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"search: early_stopping was replaced by search\.schedule.*min_epochs: 2"
    ):
        make_config(tmp_path, ["search.early_stopping={enabled: true, warmup_epochs: 2}"])
    # A study stored before the schedule holds it switched off: that still reads, as no schedule.
    off = make_config(tmp_path, ["search.early_stopping={enabled: false, warmup_epochs: 1}"])
    assert off.search.schedule is None
    assert make_config(tmp_path, ["search.early_stopping=false"]).search.schedule is None
    # Anything but off (false, or a mapping without enabled: true, as 0.1 read it) is refused.
    for value in ("true", "banana", "1"):
        with pytest.raises(ConfigError, match=r"early_stopping was replaced by search\.schedule"):
            make_config(tmp_path, [f"search.early_stopping={value}"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["search.schedule={metrics: [params]}", "train.epochs=3"], "only params"),
        (["search.schedule={min_epochs: 1}", "train.epochs=1"], r"search\.schedule\.min_epochs"),
    ],
)
def test_a_schedule_with_nothing_to_decide_is_refused_before_training(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    config = make_config(tmp_path, extra)
    with pytest.raises(ConfigError, match=message):
        codenas.search.run(config)
    assert not (tmp_path / "optuna.db").exists()


# ----------------------------------------------------------------------------- the storage

AGREE = """
import json, sys, optuna
from codenas.search.schedule import decide_in_storage
study = optuna.load_study(study_name="hand", storage=sys.argv[1])
dirs = {"val_accuracy": "maximize", "params": "minimize"}
print(json.dumps([
    decide_in_storage(study, t, 1, dirs, eta=3, min_trials=1).promote for t in range(6)
]))
"""


def test_two_processes_reading_one_storage_agree(tmp_path: Path) -> None:
    """The decision is a pure function of what the storage holds: two separate processes
    reading one SQLite file decide alike, as the hand-made table says."""
    url = f"sqlite:///{tmp_path / 'hand.db'}"
    study = optuna.create_study(study_name="hand", storage=url, directions=["maximize", "minimize"])
    states = ["COMPLETE", "PRUNED", "RUNNING", "PRUNED", "FAIL", "PRUNED"]  # any state counts
    for (acc, neg_params), state in zip(RUNG.values(), states, strict=True):
        attrs = {"rungs": {"1": {"val_accuracy": acc, "params": -neg_params}}}
        values = [acc, -neg_params] if state == "COMPLETE" else None
        study.add_trial(
            optuna.trial.create_trial(
                state=getattr(optuna.trial.TrialState, state), values=values, user_attrs=attrs
            )
        )
    answers = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", AGREE, url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(2)
    ]
    assert answers[0] == answers[1] == [True, True, False, False, False, False]


# ----------------------------------------------------------------------------- end to end

WIDE = {"depth": 1, "width": 32, "shape": "constant", "activation": "relu", "dropout": 0.0}
TINY = {"depth": 3, "width": 4, "shape": "constant", "activation": "tanh", "dropout": 0.3}


@pytest.mark.slow
def test_a_dominated_trial_stops_at_rung_zero_and_the_front_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.search.test_study import child_runs

    # Compared on validation accuracy only, a 4-unit tanh net with dropout is behind a 32-unit
    # ReLU net after one epoch: two trials at rung 0, one seat (eta 2), and it loses it.
    config = make_config(
        tmp_path,
        [
            "study.trials=2",
            "train.epochs=3",
            "search.schedule={min_epochs: 1, eta: 2, min_trials: 1, metrics: [val_accuracy]}",
        ],
    )
    study = codenas.search.run(config, enqueue=[WIDE, TINY])
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE
    # Rungs at epochs 1 and 2, the top at 3: the first trial went through all of them.
    assert set(first.user_attrs["rungs"]) == {"1", "2", "3"}
    assert set(first.user_attrs["rungs"]["1"]) == {"val_accuracy"}
    assert first.user_attrs["rung"] == 2
    assert first.user_attrs["metrics"]["time/checkpoints"] >= 0
    assert second.state == optuna.trial.TrialState.PRUNED
    reason = second.user_attrs["prune_reason"]
    assert reason.startswith(
        "schedule: stopped at rung 0 (epoch 1 of 3): 2nd of 2 trials at that rung, the top 1 go on"
    )
    assert second.user_attrs["rung"] == 0
    assert set(second.user_attrs["rungs"]) == {"1"}
    assert second.user_attrs["metrics"]["epochs"] == 1.0  # its values at that rung are kept
    assert (
        second.user_attrs["rungs"]["1"]["val_accuracy"]
        < first.user_attrs["rungs"]["1"]["val_accuracy"]
    )

    _, _, children = child_runs(config)
    runs = {int(r.data.tags["codenas.trial_number"]): r for r in children}
    assert runs[0].info.status == "FINISHED" and runs[0].data.tags["codenas.rung"] == "2"
    assert runs[1].info.status == "KILLED" and runs[1].data.tags["codenas.rung"] == "0"
    assert runs[1].data.tags["codenas.prune_reason"] == reason
    assert "val_accuracy" in runs[1].data.metrics  # its partial values reach MLflow

    storage = config.study.storage
    assert main(["front", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["trial", "state", "rung"]
    assert out.splitlines()[3].split()[:3] == ["0", "COMPLETE", "2"]
    assert "compares trials that completed the top rung 2 (3 epochs)" in out
    assert "stopped lower: rung 0 (epoch 1): 1" in out
    # Within rung 0, both trials were measured at the same epoch: the wider one dominates.
    assert [r.trial for r in rung_front(study, 0)] == [0]
    assert main(["front", "--storage", storage, "--rung", "0", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["trial"], r["rung"]) for r in rows] == [(0, 0)]
    assert set(rows[0]["values"]) == {"val_accuracy"}
    assert main(["front", "--storage", storage, "--rung", "5"]) == 2
    assert "has rungs 0..2 (epochs 1, 2, 3), got 5" in capsys.readouterr().err


@pytest.mark.slow
def test_a_search_with_two_workers_stops_only_trials_beaten_at_their_rung(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--workers 2`` on one SQLite file: completed trials went through every rung, and every
    stopped trial was behind the seats at its rung, among trials stored there. (Whether the
    second worker gets trials depends on how fast it starts; that processes reading one
    storage decide alike is tested above, on a storage whose state is fixed.)"""
    from tests.conftest import tiny_overrides

    overrides = [
        *tiny_overrides(workdir),
        "study.trials=8",
        "train.epochs=3",
        "search.schedule={min_epochs: 1, eta: 2, min_trials: 2}",
    ]
    args = [a for o in overrides for a in ("--set", o)]
    assert main(["search", "--no-progress", "--workers", "2", *args]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{workdir / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 8
    for t in trials:
        if t.state.name == "COMPLETE":
            assert t.user_attrs["rung"] == 2 and set(t.user_attrs["rungs"]) == {"1", "2", "3"}
        else:
            assert t.state.name == "PRUNED", t.user_attrs.get("fail_reason")
            rung = t.user_attrs["rung"]
            epoch = [1, 2][rung]
            reason = t.user_attrs["prune_reason"]
            assert reason.startswith(f"schedule: stopped at rung {rung}")
            # Behind the seats at its rung, among trials stored there (the decision's own
            # moment is not replayable from the final state: later trials change the ranks).
            match = re.search(
                r": (\d+)\w\w of (\d+) trials at that rung, the top (\d+) go on", reason
            )
            assert match, reason
            position, compared, keep = map(int, match.groups())
            assert keep < position <= compared
            at_rung = [o for o in trials if str(epoch) in o.user_attrs.get("rungs", {})]
            assert compared <= len(at_rung)
            assert keep == max(1, compared // 2)
