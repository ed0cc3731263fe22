"""Pareto ranking and dominance on arrays, for every reader of the code (sampler, schedule,
rightsize, reports).

Points are rows of a ``(n_points, n_objectives)`` array, every coordinate *lower-better*
(flip the sign of a maximised objective first, or pass ``maximise``). Non-dominated sorting is
moocore's (:func:`moocore.pareto_rank`, Deb et al. 2002's fronts; equal points share a rank).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` Pareto-dominates ``b``: no worse on every coordinate, better on one
    (both lower-better)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(x <= y) and np.any(x < y))


def pareto_ranks(points: ArrayLike, *, maximise: bool | Sequence[bool] = False) -> NDArray[np.int_]:
    """Non-domination rank of each point (0 = the front)."""
    import moocore

    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.zeros(0, dtype=int)
    pts = pts.reshape(len(pts), -1)
    return np.asarray(moocore.pareto_rank(pts, maximise=maximise), dtype=int)


def domination_counts(points: ArrayLike) -> NDArray[np.int_]:
    """How many points dominate each point (0 for every member of the front)."""
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.zeros(0, dtype=int)
    pts = pts.reshape(len(pts), -1)
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)  # [i, j]: i no worse than j
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    return np.sum(le & lt, axis=0).astype(int)


def select_spread(scores: Sequence[Sequence[float]], k: int) -> list[int]:
    """Indices of ``k`` points: best Pareto ranks first, spread evenly along each front.

    ``scores`` are higher-better. Within a front that has more members than places left, the
    members are sorted by their first score and taken at evenly spaced positions, so a front
    of (zero-cost score, -size) yields small and large candidates, not only the largest.
    """
    if not len(scores):
        return []
    ranks = pareto_ranks(scores, maximise=True)
    chosen: list[int] = []
    for rank in range(int(ranks.max()) + 1):
        front = sorted((i for i, r in enumerate(ranks) if r == rank), key=lambda i: -scores[i][0])
        need = k - len(chosen)
        if need <= 0:
            break
        if len(front) <= need:
            chosen.extend(front)
        else:
            picks = np.unique(np.round(np.linspace(0, len(front) - 1, need)).astype(int))
            chosen.extend(front[int(p)] for p in picks)
    return chosen[:k]


def crowding_distance(points: ArrayLike) -> NDArray[np.float64]:
    """NSGA-II's crowding distance of each row of ``points`` (one front), ``(n, m)`` -> ``(n,)``.

    Per objective the rows are sorted (ties by row order); the two ends get infinity, each
    other row the gap between its neighbours divided by the objective's range, summed over the
    objectives. An objective with no range adds nothing.
    """
    pts = np.asarray(points, dtype=float)
    n, m = pts.shape
    out = np.zeros(n)
    if n <= 2:
        out[:] = math.inf
        return out
    for j in range(m):
        order = np.argsort(pts[:, j], kind="stable")
        col = pts[order, j]
        span = col[-1] - col[0]
        out[order[0]] = out[order[-1]] = math.inf
        if span > 0:
            out[order[1:-1]] += (col[2:] - col[:-2]) / span
    return out


def pareto_order(points: ArrayLike, *, maximise: bool | Sequence[bool] = False) -> list[int]:
    """Row indices best first: by Pareto rank, then crowding distance within the rank (larger
    first: a front's ends and isolated points), then row position."""
    pts = np.asarray(points, dtype=float)
    ranks = pareto_ranks(pts, maximise=maximise)
    crowding = np.zeros(len(pts))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowding[members] = crowding_distance(pts[members])
    return sorted(range(len(pts)), key=lambda i: (ranks[i], -crowding[i], i))
