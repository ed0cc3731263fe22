"""Hypervolume (moocore) against volumes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codenas.search.hypervolume import hypervolume


def test_two_points_in_2d() -> None:
    # (1, 2) and (2, 1) against (3, 3): two 2x1 boxes overlapping in a 1x1 square -> 3.
    assert hypervolume([[1.0, 2.0], [2.0, 1.0]], [3.0, 3.0]) == pytest.approx(3.0)
    assert hypervolume([[1.0, 2.0]], [3.0, 3.0]) == pytest.approx(2.0)


def test_dominated_and_out_of_range_points_add_nothing() -> None:
    front = [[1.0, 2.0], [2.0, 1.0]]
    assert hypervolume([*front, [2.5, 2.5]], [3.0, 3.0]) == pytest.approx(3.0)  # dominated
    assert hypervolume([*front, [0.5, 3.5]], [3.0, 3.0]) == pytest.approx(3.0)  # beyond ref
    assert hypervolume(np.empty((0, 2)), [3.0, 3.0]) == 0.0


def test_three_objectives() -> None:
    # One box 1 x 2 x 3, and a second point adding 0.5 x 0.5 x 1 beyond it in the first axis.
    ref = [1.0, 1.0, 1.0]
    assert hypervolume([[0.0, -1.0, -2.0]], ref) == pytest.approx(6.0)
    assert hypervolume([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]], ref) == pytest.approx(
        0.5 * 0.5 * 1.0 + 1.0 * 0.5 * 0.5 - 0.5 * 0.5 * 0.5
    )


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="n_objectives"):
        hypervolume([[1.0, 2.0]], [3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        hypervolume([[np.nan, 2.0]], [3.0, 3.0])
