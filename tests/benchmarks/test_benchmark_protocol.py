"""The evidence protocol of the benchmarks: held-out choices, hypervolume, trials-to-reach.

The benchmarks' numbers are evidence only if what they choose is chosen without the task it is
reported on; these tests pin that logic on inputs whose answer is known.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import proxy_quality
import search_efficiency


def _table(taus: dict[str, float]) -> dict:
    return {"table": {"scores": {s: {"tau": t, "tau_std": 0.0} for s, t in taus.items()}}}


def test_the_single_score_is_chosen_on_the_other_datasets_only() -> None:
    # "a" is best on x and y, "b" only on z: held out, z must get "a", never its own best.
    results = {
        "x": _table({"a": 0.6, "b": 0.1, "early_score": 0.9}),
        "y": _table({"a": 0.5, "b": 0.2, "early_score": 0.9}),
        "z": _table({"a": 0.1, "b": 0.8, "early_score": 0.9}),
    }
    out = proxy_quality.single_score_lodo(results, {b: b for b in results}, ["x", "y", "z"])
    assert out["folds"]["z"]["chosen"] == "a" and out["folds"]["z"]["tau"] == 0.1
    assert out["folds"]["z"]["post_hoc"] == "early_score"  # the post-hoc maximum, reported apart
    # x held out: on y and z, a's mean tau is 0.3 and b's 0.5, so b, although worst on x
    assert out["folds"]["x"]["chosen"] == "b" and out["folds"]["x"]["tau"] == 0.1
    assert "early_score" not in out["candidates"]


def test_lodo_weighs_each_other_dataset_equally() -> None:
    # Two benchmarks of dataset x must not outvote dataset y.
    results = {
        "x1": _table({"a": 0.9, "b": 0.0}),
        "x2": _table({"a": 0.9, "b": 0.0}),
        "y": _table({"a": 0.0, "b": 1.0}),
        "z": _table({"a": 0.5, "b": 0.5}),
    }
    group = {"x1": "x", "x2": "x", "y": "y", "z": "z"}
    out = proxy_quality.single_score_lodo(results, group, ["x", "y", "z"])
    assert out["folds"]["z"]["chosen"] == "b"  # mean over x, y: a 0.45, b 0.5


def test_hypervolume_of_the_benchmark_is_the_normalised_dominated_area() -> None:
    ref = (0.0, 3.0)  # accuracy 0 and log10 params 3 bound the box (1, 1) .. ref
    assert search_efficiency.hypervolume([], ref) == 0.0
    # one point at accuracy 0.5, log10 params 2: 0.5 x 1 of the 1 x 2 box
    assert search_efficiency.hypervolume([(0.5, 2.0)], ref) == pytest.approx(0.25)
    # a dominated point adds nothing; a second non-dominated one adds its rectangle
    assert search_efficiency.hypervolume([(0.5, 2.0), (0.4, 2.5)], ref) == pytest.approx(0.25)
    assert search_efficiency.hypervolume([(0.5, 2.0), (0.8, 2.5)], ref) == pytest.approx(
        (0.5 * 1.0 + 0.3 * 0.5) / 2.0
    )


def test_trials_to_reach_is_the_first_prefix_whose_mean_reaches_the_target() -> None:
    per_run = {
        "t": {
            "tpe": {"0": {"60": {"hv": 0.5}}, "1": {"60": {"hv": 0.7}}},
            "code": {
                "0": {"15": {"hv": 0.3}, "30": {"hv": 0.6}, "60": {"hv": 0.7}},
                "1": {"15": {"hv": 0.4}, "30": {"hv": 0.5}, "60": {"hv": 0.6}},
            },
        }
    }
    out = search_efficiency.trials_to_reach(per_run, "code")
    assert out["t"]["target_hv"] == pytest.approx(0.6)
    assert out["t"]["trials"] == 60  # the 30-trial mean (0.55) falls short
    per_run["t"]["tpe"] = {"0": {"60": {"hv": 0.9}}}
    assert search_efficiency.trials_to_reach(per_run, "code")["t"]["trials"] is None


def test_the_dev_tasks_and_the_held_out_tasks_do_not_overlap() -> None:
    assert set(search_efficiency.DEV_TASKS) == {"parity"}
    assert set(search_efficiency.DEV_TASKS).isdisjoint({"teacher", "spiral", "bars"})
