"""The protocol of benchmarks/fronts_per_cpu.py on inputs whose answer is known: paired
bootstrap intervals, fronts read at a CPU point, CPU to reach a target, the decision rule."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import fronts_per_cpu as fpc


def test_the_bootstrap_interval_holds_the_statistic_and_collapses_on_constant_values() -> None:
    assert fpc.bootstrap_ci([0.2] * 5) == pytest.approx((0.2, 0.2, 0.2))
    mean, low, high = fpc.bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5])
    assert mean == pytest.approx(0.3) and low < mean < high
    assert low >= 0.1 and high <= 0.5
    med, low, high = fpc.bootstrap_ci([1.0, 2.0, math.inf, 3.0, 0.5], np.median)
    assert med == 2.0 and high == math.inf  # a seed that never reaches it stays visible
    assert all(math.isnan(v) for v in fpc.bootstrap_ci([]))


def test_the_front_at_a_cpu_point_holds_only_the_trials_ended_by_then() -> None:
    times = {"0": {"cpu": 1.0, "end": 0}, "2": {"cpu": 0.5, "end": 2}, "1": {"cpu": 2.0, "end": 1}}
    ended = fpc.cumulative_cpu(times)
    assert ended == {0: 1.0, 1: 3.0, 2: 3.5}
    values = {0: (0.8, 100.0), 1: (0.9, 1000.0), 2: (0.95, 10.0)}
    params = {n: v[1] for n, v in values.items()}
    truth = {0: 0.8, 1: 0.9, 2: 0.95}.__getitem__
    ref = (0.5, 4.0)
    only_0 = fpc.hv_at(values, ended, 1.0, truth, params, ref)
    assert only_0 == pytest.approx((0.8 - 0.5) * (4.0 - 2.0) / ((1 - 0.5) * (4.0 - 1.0)))
    # by 3.5 s trial 2 dominates both others: the front is trial 2 alone
    assert fpc.front_of({n: values[n] for n in (0, 1, 2)}) == [2]
    assert fpc.hv_at(values, ended, 3.5, truth, params, ref) > only_0


def test_cpu_to_reach_is_the_first_grid_point_at_the_target() -> None:
    curve = {0.125: 0.2, 0.25: 0.35, 0.5: 0.34, 1.0: 0.4}
    assert fpc.cpu_to_reach(curve, 0.35) == 0.25
    assert fpc.cpu_to_reach(curve, 0.41) == math.inf


def test_the_summary_pools_the_cpu_of_trials_by_the_epoch_they_stopped_at() -> None:
    hv = {str(f): 0.3 for f in fpc.CPU_GRID}
    tpe = {"0": {"hv": hv, "cpu_by_stop_epoch": {"all": [4, 0.8]}}}
    asha = {
        "0": {"hv": hv, "cpu_by_stop_epoch": {"1": [6, 0.3], "5": [1, 0.2]}},
        "1": {"hv": hv, "cpu_by_stop_epoch": {"1": [2, 0.1]}},  # no TPE seed 1: not paired
    }
    table = fpc.summarise({"parity": {"tpe": tpe, "asha": asha}}, ["tpe", "asha"], [0, 1])
    got = table["table"]["parity"]["asha"]["cpu_per_trial_by_stop_epoch"]
    assert got == {
        "1": {"trials": 6, "cpu_per_trial": pytest.approx(0.05)},
        "5": {"trials": 1, "cpu_per_trial": pytest.approx(0.2)},
    }
    assert table["table"]["parity"]["tpe"]["cpu_per_trial_by_stop_epoch"]["all"]["trials"] == 4


def test_the_summary_gives_the_hv_change_from_30_to_60_trials_per_paired_seed() -> None:
    hv = {str(f): 0.3 for f in fpc.CPU_GRID}
    tpe = {
        str(s): {"hv": hv, "hv_by_trials": {"15": 0.1, "30": 0.2, "60": 0.2 + d}}
        for s, d in enumerate([0.01, 0.03, -0.02])
    }
    table = fpc.summarise({"parity": {"tpe": tpe}}, ["tpe"], [0, 1, 2])["table"]["parity"]["tpe"]
    assert table["hv_by_trials_mean"] == pytest.approx({"15": 0.1, "30": 0.2, "60": 0.2 + 0.02 / 3})
    mean, low, high = table["hv_30_to_60"]
    assert mean == pytest.approx(0.02 / 3) and -0.02 <= low < mean < high <= 0.03


def test_combining_adds_an_arm_to_a_task_and_a_task_run_with_fewer_arms(tmp_path: Path) -> None:
    def part(runs: dict, arms: list[str]) -> Path:
        path = tmp_path / f"part{len(list(tmp_path.iterdir()))}.json"
        costs = {task: {"search_cpu_seconds": 1.0} for task in runs}
        body = {"arms": {a: fpc.ARMS[a] for a in arms}, "seeds": [0], "runs": runs}
        path.write_text(json.dumps({**body, "costs": costs, "seconds": 1.0}))
        return path

    def seed(hv: float) -> dict:
        return {"0": {"hv": {str(f): hv for f in fpc.CPU_GRID}}}

    all_arms = part({"teacher": {"tpe": seed(0.3), "random": seed(0.2)}}, ["tpe", "random"])
    new_arm = part({"teacher": {"tpe": seed(0.3), "tpe-mv": seed(0.4)}}, ["tpe", "tpe-mv"])
    cnn = part({"bars": {"tpe": seed(0.5), "tpe-asha": seed(0.45)}}, ["tpe", "tpe-asha"])
    merged = fpc.combine([all_arms, new_arm, cnn], tmp_path / "out.json")
    assert list(merged["arms"]) == ["tpe", "random", "tpe-mv", "tpe-asha"]
    assert set(merged["runs"]["teacher"]) == {"tpe", "random", "tpe-mv"}
    assert set(merged["table"]["teacher"]) == {"tpe", "random", "tpe-mv"}
    assert set(merged["table"]["bars"]) == {"tpe", "tpe-asha"}  # no rows for arms not run
    diff = merged["table"]["teacher"]["tpe-mv"][str(fpc.DECISION_POINT)]["diff_vs_tpe"]
    assert diff[0] == pytest.approx(0.1)
    assert "nan" not in fpc.markdown(merged)


def test_the_decision_rule_needs_three_held_out_wins_and_no_loss() -> None:
    win, tie, loss = [0.05, 0.06, 0.04, 0.05, 0.07], [-0.02, 0.03, 0.0, 0.01, -0.01], [-0.05] * 5
    tasks = ("a", "b", "c", "d")
    assert fpc.verdict({"a": win, "b": win, "c": win, "d": tie}, tasks)["beats_tpe"]
    assert not fpc.verdict({"a": win, "b": win, "c": tie, "d": tie}, tasks)["beats_tpe"]
    lost = fpc.verdict({"a": win, "b": win, "c": win, "d": loss}, tasks)
    assert lost["losses"] == ["d"] and not lost["beats_tpe"]
    assert set(fpc.DEV_TASKS).isdisjoint(fpc.HELD_OUT_TASKS)


def test_the_cpu_budget_closes_once_its_seconds_are_spent() -> None:
    budget = fpc.CpuBudget(trials=100, cpu=0.05, spent=0.0)
    taken = 0
    while budget.take():
        taken += 1
        end = __import__("time").process_time() + 0.01
        while __import__("time").process_time() < end:
            pass
        budget.lap()
    assert 4 <= taken <= 7 and budget.spent >= 0.05
    assert not fpc.CpuBudget(trials=0, cpu=None, spent=0.0).take()


def test_the_cpu_budget_drives_a_real_search(tiny_config: object) -> None:
    """The benchmark hands its budget to codenas.search.run: it must keep to the protocol
    the search reads (take, give_back, left, expired), through the end-of-search passes."""
    import codenas

    budget = fpc.CpuBudget(trials=2, cpu=None, spent=0.0)
    study = codenas.search.run(tiny_config, budget=budget)
    assert len(study.trials) == 2 and budget.left == 0 and not budget.expired
    spent = fpc.CpuBudget(trials=5, cpu=1.0, spent=2.0)
    assert spent.expired and not spent.take()
