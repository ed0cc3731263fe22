"""Pareto ranking and dominance of the neural-code layer, on points whose ranks are known."""

from __future__ import annotations

import numpy as np

from codenas.neuralcode import dominates, domination_counts, pareto_ranks


def test_dominates_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates([1.0, 2.0], [1.0, 3.0])
    assert not dominates([1.0, 3.0], [1.0, 3.0])  # equal points do not dominate
    assert not dominates([0.0, 4.0], [1.0, 3.0])  # a trade-off


def test_pareto_ranks_peel_fronts_and_equal_points_share_a_rank() -> None:
    # lower-better: (1,4), (2,2), (4,1) form the front; (3,3) is behind (2,2); (4,4) behind all.
    points = [[1, 4], [2, 2], [4, 1], [3, 3], [4, 4], [2, 2]]
    assert pareto_ranks(points).tolist() == [0, 0, 0, 1, 2, 0]
    assert pareto_ranks(np.negative(points), maximise=True).tolist() == [0, 0, 0, 1, 2, 0]
    assert pareto_ranks(np.zeros((0, 2))).tolist() == []


def test_domination_counts_count_the_points_that_dominate_each_one() -> None:
    points = [[1, 4], [2, 2], [4, 1], [3, 3], [4, 4]]
    # (3,3) is dominated by (2,2) only; (4,4) by every other point (each is no worse on both).
    assert domination_counts(points).tolist() == [0, 0, 0, 1, 4]
    rng = np.random.default_rng(0)
    many = rng.integers(0, 5, size=(40, 3)).astype(float)
    assert domination_counts(many).tolist() == [sum(dominates(q, p) for q in many) for p in many]
