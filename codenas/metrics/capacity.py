"""Capacity usage: how much of a layer's width its units actually use.

Every function takes one hidden layer's activations, an array of shape ``(n_samples, n_units)``
(``capacity_usage`` takes a list of them, one per hidden layer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from codenas.metrics._common import row_subset
from codenas.metrics._validation import as_activations, as_centred, as_layers
from codenas.metrics.registry import register_metric


@register_metric("dead_fraction", direction="minimize", aggregate="weighted")
def dead_fraction(acts: ArrayLike, tol: float = 0.0) -> float:
    """Share of units never active (|a| <= tol) on any sample; lower is better.

    ``dead = mean_u [ max_i |a_iu| <= tol ]``. For ReLU that is a unit whose pre-activation is
    never positive, for any activation a unit that outputs ~0 everywhere. Aggregated over layers
    weighted by width, i.e. the share of all hidden units that are dead.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.
        tol: activity threshold (0.0: exactly zero everywhere).

    Returns:
        A float in [0, 1]; 0 means every unit fires on some sample.
    """
    a = as_activations(acts, metric="dead_fraction", keep_float=True)  # exact in float32
    return float(np.mean(np.max(np.abs(a), axis=0) <= tol))


def _gram(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x.T @ x`` or ``x @ x.T``, whichever is smaller: both have the same non-zero spectrum.

    numpy runs ``x.T @ x`` as one BLAS ``syrk`` call (half the work of a general product).
    """
    n, d = x.shape
    return x.T @ x if d <= n else x @ x.T


def _singular_values(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Singular values of the column-centred ``x``, largest first, numerical zeros set to 0."""
    eig = np.linalg.eigvalsh(_gram(x))[::-1]
    # The Gram's eigenvalues are exact only to ~eps * max: treat the noise floor as zero, as
    # np.linalg.matrix_rank does, so that an exactly rank-k matrix scores k, not k + noise.
    floor = eig[0] * max(x.shape) * np.finfo(np.float64).eps if eig.size else 0.0
    eig = np.where(eig > floor, eig, 0.0)
    return np.sqrt(eig)


# Within ``shared_spectra()``, each layer's spectrum is computed once, however many capacity
# metrics read it (``compute_metrics`` computes effective_rank and capacity_usage together).
_SPECTRA: ContextVar[dict[int, tuple[Any, NDArray[np.float64]]] | None] = ContextVar(
    "codenas_spectra", default=None
)


@contextlib.contextmanager
def shared_spectra() -> Iterator[None]:
    """Share each activation array's singular values between the metrics of this block.

    Nested blocks share the outermost block's cache, so a caller can wrap several metric
    computations over the same arrays (``compute_metrics`` and ``layer_code``) in one block.
    """
    outer = _SPECTRA.get()
    token = _SPECTRA.set({} if outer is None else outer)
    try:
        yield
    finally:
        _SPECTRA.reset(token)


def _spectrum(acts: ArrayLike, metric: str) -> NDArray[np.float64]:
    cache = _SPECTRA.get()
    hit = cache.get(id(acts)) if cache is not None else None
    if hit is not None and hit[0] is acts:  # the very same array object, still alive
        return hit[1]
    s = _singular_values(as_centred(acts, metric=metric))
    if cache is not None:
        cache[id(acts)] = (acts, s)
    return s


@register_metric("effective_rank", direction="maximize", aggregate="mean")
def effective_rank(acts: ArrayLike) -> float:
    """Effective rank: exp of the entropy of the normalised singular values (Roy & Vetterli 2007).

    ``erank = exp(-sum_k p_k log p_k)`` with ``p_k = s_k / sum_j s_j`` the singular values of the
    column-centred activation matrix. It equals k for a matrix with k equal non-zero singular
    values and grows continuously in between. Cost: one Gram matrix on the smaller side and its
    eigenvalues, O(n d min(n, d)).

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.

    Returns:
        A float in [1, min(n_samples - 1, n_units)] (1.0 for a constant layer); higher means the
        layer's variance is spread over more directions.
    """
    return _effective_rank(_spectrum(acts, "effective_rank"))


def _effective_rank(s: NDArray[np.float64]) -> float:
    total = s.sum()
    if total <= np.finfo(float).tiny:
        return 1.0
    p = s / total
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


@register_metric("participation_ratio", direction="maximize", aggregate="mean")
def participation_ratio(acts: ArrayLike) -> float:
    """Participation ratio of the covariance spectrum (Gao et al. 2017; Recanatesi et al. 2019).

    ``PR = (sum_k lambda_k)^2 / sum_k lambda_k^2`` with ``lambda_k`` the eigenvalues of the
    units' covariance matrix. Since ``sum lambda = tr C`` and ``sum lambda^2 = ||C||_F^2``, no
    eigendecomposition is needed: one Gram matrix (on the smaller side, which has the same
    non-zero spectrum) gives both, O(n d min(n, d)).

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.

    Returns:
        A float in [1, min(n_samples - 1, n_units)] (1.0 for a constant layer): 1 when all the
        variance lies along one direction (e.g. k identical units), n_units for isotropic
        activity. Higher is better: more dimensions carry variance.
    """
    g = _gram(as_centred(acts, metric="participation_ratio"))
    trace = float(np.trace(g))
    frob2 = float(np.sum(g * g))
    if trace <= 0.0 or frob2 <= 0.0:
        return 1.0
    return trace * trace / frob2


@register_metric("hoyer_sparsity", direction=None, aggregate="mean")
def hoyer_sparsity(acts: ArrayLike) -> float:
    """Population sparsity of each sample's activity vector (Hoyer 2004), averaged over samples.

    For a row ``x`` of d units: ``s(x) = (sqrt(d) - ||x||_1 / ||x||_2) / (sqrt(d) - 1)``, 1 when
    one unit carries all the activity and 0 when all are equally active. Rows with no activity
    (``||x||_2 = 0``) have no defined sparsity and are left out; a layer with none active, or of
    a single unit, returns 1.0.

    Registered with no better direction: sparse codes are cheap and can be robust, dense codes
    use more of the width; neither is known to give better networks, so an objective on it
    must state the direction it wants.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.

    Returns:
        A float in [0, 1]; higher means fewer units active per sample.
    """
    a = as_activations(acts, metric="hoyer_sparsity")
    d = a.shape[1]
    if d == 1:
        return 1.0
    l2 = np.sqrt(np.einsum("ij,ij->i", a, a))
    l1 = np.abs(a).sum(axis=1)
    active = l2 > 0
    if not np.any(active):
        return 1.0
    root = np.sqrt(d)
    s = (root - l1[active] / l2[active]) / (root - 1.0)
    return float(np.clip(np.mean(s), 0.0, 1.0))


# Row blocks for the nearest-neighbour search keep the float32 distance block near 64 MiB.
_BLOCK_ELEMENTS = 1 << 24
_CANDIDATES = 4


def _two_nearest(
    x: NDArray[np.float64], queries: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Distances from each query row of ``x`` to its first and second nearest other rows.

    Candidates come from a float32 ``|x|^2 + |y|^2 - 2 x.y`` pass in row blocks (memory
    O(block * n), never O(n^2)), taken by repeated argmin (much faster than a partial sort);
    the distances to the ``_CANDIDATES`` best are then recomputed exactly in float64, so float32
    rounding only matters for neighbours tied to float32 precision.
    """
    n = x.shape[0]
    x32 = x.astype(np.float32)
    sq = np.einsum("ij,ij->i", x32, x32)
    k = min(_CANDIDATES, n - 1)
    block = max(1, _BLOCK_ELEMENTS // n)
    r1 = np.empty(len(queries))
    r2 = np.empty(len(queries))
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        rows = np.arange(len(q))
        d2 = x32[q] @ x32.T
        d2 *= -2.0
        d2 += sq[q, None]
        d2 += sq[None, :]
        d2[rows, q] = np.inf  # a row is not its own neighbour
        cand = np.empty((len(q), k), dtype=np.int64)
        for j in range(k):
            cand[:, j] = np.argmin(d2, axis=1)
            d2[rows, cand[:, j]] = np.inf
        diff = x[q, None, :] - x[cand]
        exact = np.sort(np.sqrt(np.einsum("ijk,ijk->ij", diff, diff)), axis=1)
        r1[start : start + len(q)] = exact[:, 0]
        r2[start : start + len(q)] = exact[:, 1]
    return r1, r2


@register_metric("twonn_dimension", direction="maximize", aggregate="mean")
def twonn_dimension(
    acts: ArrayLike, discard_fraction: float = 0.1, max_queries: int | None = 2048
) -> float:
    """Intrinsic dimension by the TwoNN estimator (Facco, d'Errico, Rodriguez & Laio 2017).

    For a sample, ``mu = r2 / r1`` is the ratio of the Euclidean distances to its second and
    first nearest neighbours among all rows. On a d-dimensional manifold with locally uniform
    density ``mu`` is Pareto distributed, ``F(mu) = 1 - mu^-d``, so ``-log(1 - F(mu)) =
    d log(mu)``. As in the paper, the empirical ``F(mu_(i)) = i / N`` of the N sorted ratios is
    fitted by least squares through the origin after discarding the largest
    ``discard_fraction`` of them: ``d = sum x_i y_i / sum x_i^2`` with ``x = log mu`` and
    ``y = -log(1 - i/N)``. Samples with an exact duplicate (``r1 = 0``) are left out, as Facco
    et al. advise.

    Cost O(q n d) for q query samples: ratios are computed for at most ``max_queries`` samples
    (neighbours are still searched among all n rows, so the scale probed is that of the full
    set; only the number of ratios in the fit is capped). The queries are a fixed subset chosen
    by hashing each row's bytes, so the result does not depend on row order. Memory stays
    O(n) beyond a fixed-size block.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs; at least 3
            samples.
        discard_fraction: share of the largest ratios left out of the fit, in [0, 1).
        max_queries: most samples whose ratio enters the fit; ``None`` for all.

    Returns:
        A float >= 0 (0.0 when fewer than 3 samples without a duplicate remain), in practice
        below n_units; higher means the layer's activity spans a manifold of more dimensions.
        Like every neighbour-based estimate it underestimates large dimensions on few samples.
    """
    a = as_activations(acts, min_samples=3, metric="twonn_dimension")
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(
            f"twonn_dimension: `0 <= discard_fraction < 1` must hold, got {discard_fraction=}"
        )
    if max_queries is not None and max_queries < 3:
        raise ValueError(f"twonn_dimension: `max_queries >= 3` must hold, got {max_queries=}")
    x = a - a.mean(axis=0)
    # Keyed on the raw rows: the centred ones depend on summation order in the mean.
    queries = row_subset(a, max_queries) if max_queries is not None else np.arange(len(a))
    r1, r2 = _two_nearest(x, queries)
    keep = r1 > 0
    if np.count_nonzero(keep) < 3:
        return 0.0
    mu = np.sort(r2[keep] / r1[keep])
    n = mu.size
    m = int(np.floor(n * (1.0 - discard_fraction)))
    m = min(max(m, 1), n - 1)  # F = 1 at i = N would give log(0)
    x_fit = np.log(mu[:m])
    y_fit = -np.log1p(-np.arange(1, m + 1) / n)
    sxx = float(np.dot(x_fit, x_fit))
    if sxx <= 0.0:  # every ratio is 1 (a lattice): the estimator is undefined
        return 0.0
    return float(np.dot(x_fit, y_fit) / sxx)


@register_metric("capacity_usage", direction="maximize", scope="network")
def capacity_usage(layers: Sequence[ArrayLike]) -> float:
    """Mean over hidden layers of effective rank / width; higher is better.

    ``usage = mean_l erank(A_l) / n_units_l`` (see :func:`effective_rank`).

    Args:
        layers: one array of shape ``(n_samples, n_units)`` per hidden layer.

    Returns:
        A float in (0, 1]: 1 means every layer spreads its variance over all its units, a small
        value means most of the width is unused.
    """
    as_layers(layers, metric="capacity_usage", keep_float=True)  # checks shapes and values
    return float(
        np.mean([_effective_rank(_spectrum(a, "capacity_usage")) / np.shape(a)[1] for a in layers])
    )
