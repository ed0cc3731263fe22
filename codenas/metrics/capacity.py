"""Capacity usage: how much of a layer's width its units actually use.

Every function takes one hidden layer's activations, an array of shape ``(n_samples, n_units)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from codenas.metrics._validation import as_activations
from codenas.metrics.registry import register_metric


@register_metric("dead_fraction", direction="minimize", aggregate="weighted")
def dead_fraction(acts: ArrayLike, tol: float = 0.0) -> float:
    """Share of units never active (|a| <= tol) on any sample; lower is better.

    A unit is dead when ``max_i |a_iu| <= tol`` over the samples: for ReLU that is a unit whose
    pre-activation is never positive, for any activation a unit that outputs ~0 everywhere.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.
        tol: activity threshold (0.0: exactly zero everywhere).

    Returns:
        A float in [0, 1]; 0 means every unit fires on some sample.
    """
    a = as_activations(acts, min_samples=1)
    return float(np.mean(np.max(np.abs(a), axis=0) <= tol))


def _singular_values(acts: ArrayLike) -> np.ndarray:
    a = as_activations(acts)
    a = a - a.mean(axis=0, keepdims=True)
    # The Gram matrix of the smaller side has the same non-zero spectrum, at a fraction of the
    # cost of a full SVD when n_samples >> n_units (the common case).
    n, d = a.shape
    gram = a.T @ a if d <= n else a @ a.T
    eig = np.linalg.eigvalsh(gram)
    return np.sqrt(np.clip(eig, 0.0, None))[::-1]


@register_metric("effective_rank", direction="maximize", aggregate="mean")
def effective_rank(acts: ArrayLike) -> float:
    """Effective rank: exp of the entropy of the normalised singular values (Roy & Vetterli 2007).

    ``erank = exp(-sum_k p_k log p_k)`` with ``p_k = s_k / sum_j s_j`` the singular values of the
    column-centred activation matrix. It equals k for a matrix with k equal non-zero singular
    values and grows continuously in between.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.

    Returns:
        A float in [1, min(n_samples - 1, n_units)] (1.0 for a constant layer); higher means the
        layer's variance is spread over more directions.
    """
    s = _singular_values(acts)
    total = s.sum()
    if total <= np.finfo(float).tiny:
        return 1.0
    p = s / total
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


@register_metric("capacity_usage", direction="maximize", scope="network")
def capacity_usage(layers: Sequence[ArrayLike]) -> float:
    """Mean over hidden layers of effective rank / width; higher is better.

    Args:
        layers: one array of shape ``(n_samples, n_units)`` per hidden layer.

    Returns:
        A float in (0, 1]: 1 means every layer spreads its variance over all its units, a small
        value means most of the width is unused.
    """
    if len(layers) == 0:
        raise ValueError("capacity_usage needs at least one layer")
    ratios = []
    for acts in layers:
        a = as_activations(acts)
        ratios.append(effective_rank(a) / a.shape[1])
    return float(np.mean(ratios))
