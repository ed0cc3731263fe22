"""Hypervolume of a set of objective vectors: moocore's, behind one small function.

Optuna has no public hypervolume (``optuna._hypervolume`` is private), so codenas uses moocore
(López-Ibáñez et al.'s reference implementation, the one pymoo and DESDEO also wrap).
"""

from __future__ import annotations

import moocore
import numpy as np
from numpy.typing import ArrayLike


def hypervolume(losses: ArrayLike, reference: ArrayLike) -> float:
    """Volume dominated by ``losses`` (every objective minimised) and bounded by ``reference``.

    Args:
        losses: shape ``(n_points, n_objectives)``, lower is better in every column.
        reference: shape ``(n_objectives,)``, a point worse than every point of interest;
            points that do not strictly dominate it add nothing.

    Returns:
        A float >= 0, in the units of the objectives' product; 0 for no points. Higher is
        better: it grows with every point that extends the front.

    Raises:
        ValueError: if the shapes disagree or a value is NaN.
    """
    points = np.asarray(losses, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 1 or points.ndim != 2 or points.shape[1] != ref.shape[0]:
        raise ValueError(
            "losses must have shape (n_points, n_objectives) and reference (n_objectives,), "
            f"got {points.shape} and {ref.shape}"
        )
    if np.isnan(points).any() or np.isnan(ref).any():
        raise ValueError("losses and reference must not contain NaN")
    if len(points) == 0:
        return 0.0
    return float(moocore.hypervolume(points, ref=ref))
