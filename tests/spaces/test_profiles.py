from __future__ import annotations

import pytest

from codenas.spaces import SHAPES, width_profile


@pytest.mark.parametrize(
    ("shape", "depth", "expected"),
    [
        ("constant", 4, [64, 64, 64, 64]),
        ("funnel", 4, [64, 32, 16, 8]),
        ("expand", 4, [8, 16, 32, 64]),
        ("diamond", 4, [32, 64, 64, 32]),
        ("diamond", 5, [16, 32, 64, 32, 16]),
        ("hourglass", 4, [64, 32, 32, 64]),
        ("hourglass", 5, [64, 32, 16, 32, 64]),
        ("diamond", 2, [64, 64]),
        ("hourglass", 3, [64, 32, 64]),
    ],
)
def test_profiles(shape: str, depth: int, expected: list[int]) -> None:
    assert width_profile(shape, depth, 64) == expected


@pytest.mark.parametrize("shape", SHAPES)
def test_depth_one_is_the_width(shape: str) -> None:
    assert width_profile(shape, 1, 48) == [48]


@pytest.mark.parametrize("shape", SHAPES)
def test_widest_layer_is_the_width_and_floor_holds(shape: str) -> None:
    widths = width_profile(shape, 6, 20, min_width=3)
    assert max(widths) == 20
    assert min(widths) >= 3
    assert len(widths) == 6


def test_ratio_changes_the_step() -> None:
    assert width_profile("funnel", 3, 81, ratio=3) == [81, 27, 9]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown shape 'round'"):
        width_profile("round", 2, 8)
    with pytest.raises(ValueError, match="depth"):
        width_profile("funnel", 0, 8)
