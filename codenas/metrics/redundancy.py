"""Redundancy between layers: how similar the representations of different layers are.

Activations are arrays of shape ``(n_samples, n_units)``; the layers compared must share their
rows (the same inputs, in the same order) but may differ in width. :func:`linear_cka` and
:func:`cka_matrix` are plain functions (two arrays in, or a matrix out); the registered,
network-scope measure built on them is :func:`layer_redundancy`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from codenas.metrics._validation import as_centred, as_layers
from codenas.metrics.registry import register_metric


def _self_similarity(x: NDArray[np.float64]) -> float:
    """``||X^T X||_F`` of centred ``x``, from the smaller Gram (same Frobenius norm)."""
    n, d = x.shape
    g = x.T @ x if d <= n else x @ x.T
    return float(np.sqrt(np.sum(g * g)))


def _cross_similarity(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """``||X^T Y||_F^2 = <X X^T, Y Y^T>_F`` of centred ``x`` and ``y``, by the cheaper form.

    The feature-space form costs O(n dx dy) and O(dx dy) memory; the sample-space form
    O(n^2 (dx + dy)) and O(n^2) memory. It takes the sample form only when the layers are
    wider than there are samples.
    """
    n = x.shape[0]
    dx, dy = x.shape[1], y.shape[1]
    if dx * dy <= n * (dx + dy):
        c = x.T @ y
        return float(np.sum(c * c))
    return float(np.sum((x @ x.T) * (y @ y.T)))


def _cka(x: NDArray[np.float64], y: NDArray[np.float64], sx: float, sy: float) -> float:
    if sx <= 0.0 or sy <= 0.0:
        return 0.0
    return float(np.clip(_cross_similarity(x, y) / (sx * sy), 0.0, 1.0))


def linear_cka(a: ArrayLike, b: ArrayLike) -> float:
    """Linear centred kernel alignment of two representations (Kornblith et al. 2019).

    With ``X``, ``Y`` the column-centred activations,
    ``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, the feature-space form of
    ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` for linear kernels ``K = X X^T``,
    ``L = Y Y^T``. Cost O(n (dx + dy)^2) time and O((dx + dy)^2) memory, never O(n^2) unless
    a layer is wider than there are samples (then the equal sample-space form is cheaper and
    is used). Invariant to orthogonal transforms and isotropic scaling of either side, not to
    general invertible linear maps.

    Args:
        a: shape ``(n_samples, n_units_a)``, one layer's activations.
        b: shape ``(n_samples, n_units_b)``, another layer's activations on the same inputs.

    Returns:
        A float in [0, 1]: 1 when ``b`` is a rotation and scaling of ``a``, near 0 for unrelated
        representations (about ``d / n`` for independent noise). 0.0 when either layer is
        constant (no variance to compare). Neither direction is better in itself; see
        :func:`layer_redundancy`.
    """
    x = as_centred(a, name="a", metric="linear_cka")
    y = as_centred(b, name="b", metric="linear_cka")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"linear_cka: a and b must have the same n_samples (rows), got {x.shape[0]} and "
            f"{y.shape[0]}"
        )
    return _cka(x, y, _self_similarity(x), _self_similarity(y))


def cka_matrix(layers: Sequence[ArrayLike]) -> NDArray[np.float64]:
    """Linear CKA between every pair of layers (the "block structure" plot of Nguyen et al.).

    Each layer is centred and its self-similarity computed once; each pair then costs one
    cross product (see :func:`linear_cka`).

    Args:
        layers: one array of shape ``(n_samples, n_units_l)`` per layer, same rows.

    Returns:
        A symmetric array of shape ``(n_layers, n_layers)`` with values in [0, 1]; the diagonal
        is 1 (0 for a constant layer).
    """
    xs = as_layers(layers, metric="cka_matrix", centred=True)
    norms = [_self_similarity(x) for x in xs]
    m = np.eye(len(xs))
    for i in range(len(xs)):
        if norms[i] <= 0.0:
            m[i, i] = 0.0
        for j in range(i + 1, len(xs)):
            m[i, j] = m[j, i] = _cka(xs[i], xs[j], norms[i], norms[j])
    return m


@register_metric("layer_redundancy", direction="minimize", scope="network")
def layer_redundancy(layers: Sequence[ArrayLike]) -> float:
    """Mean linear CKA of consecutive hidden layers; lower is better.

    ``redundancy = mean_{l=1..L-1} CKA(A_l, A_{l+1})``. Nguyen, Raghu & Kornblith (2021) find
    that networks with depth or width to spare show a "block structure": runs of consecutive
    layers with near-identical representations (CKA near 1). A network with a single hidden
    layer has no pair to compare and scores 0.0 (no measurable redundancy). A constant (dead)
    layer has CKA 0 with its neighbours, so read this next to ``dead_fraction``.

    Args:
        layers: one array of shape ``(n_samples, n_units_l)`` per hidden layer, first to last.

    Returns:
        A float in [0, 1]; high values mean consecutive layers largely repeat each other.
    """
    xs = as_layers(layers, metric="layer_redundancy", centred=True)
    if len(xs) < 2:
        return 0.0
    norms = [_self_similarity(x) for x in xs]
    return float(
        np.mean([_cka(xs[k], xs[k + 1], norms[k], norms[k + 1]) for k in range(len(xs) - 1)])
    )
