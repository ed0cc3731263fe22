"""Shared numerical pieces: disentanglement_lib's histogram discretiser, discrete mutual
information in nats, and z-scoring that drops constant units.

Arrays are ``(n_samples, n_units)`` here as everywhere in codenas (disentanglement_lib stores
them transposed).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

N_BINS = 20
"""Equal-width bins per code dimension, as disentanglement_lib's ``histogram_discretizer``."""

# Bound the temporary (n_samples x chunk) index arrays in mutual_information to ~32 MiB.
_MAX_CHUNK_ELEMENTS = 1 << 22


def histogram_discretize(x: NDArray[np.float64], n_bins: int = N_BINS) -> NDArray[np.int64]:
    """Bin each column into ``n_bins`` equal-width bins over its own min..max.

    Reproduces ``np.digitize(x_u, np.histogram(x_u, n_bins)[1][:-1])`` column by column
    (bins from 1; the column maximum falls in the last bin; a constant column, for which
    ``np.histogram`` widens the range by 0.5 either side, lands in one bin), but vectorised:
    a floor division gives the bin up to rounding, and one comparison with the exact
    ``np.linspace`` edges fixes values that sit on an edge.

    Args:
        x: shape ``(n_samples, n_units)``.
        n_bins: number of bins per column.

    Returns:
        Integer bin indices in ``1..n_bins``, shape ``(n_samples, n_units)``.
    """
    lo = x.min(axis=0)
    hi = x.max(axis=0)
    flat = lo == hi
    lo = np.where(flat, lo - 0.5, lo)
    hi = np.where(flat, hi + 0.5, hi)
    # The same arithmetic as np.histogram's np.linspace(first_edge, last_edge, n_bins + 1).
    edges = np.linspace(lo, hi, n_bins + 1, axis=1)  # (n_units, n_bins + 1)
    step = (hi - lo) / n_bins
    b = np.floor((x - lo) / step).astype(np.int64)
    np.clip(b, 0, n_bins - 1, out=b)
    cols = np.arange(x.shape[1])
    lower = edges[cols, b]  # edge at the left of the guessed bin
    b -= x < lower
    upper = edges[cols, np.minimum(b + 1, n_bins - 1)]
    b += (x >= upper) & (b + 1 <= n_bins - 1)
    return b + 1


def discrete_entropy(values: ArrayLike) -> Any:
    """Shannon entropy in nats of discrete variables, from their empirical frequencies.

    ``H = -sum_k p_k ln p_k`` over the values each variable takes (``scipy.stats.entropy`` of
    the counts), the normaliser of MIG and of the label information.

    Args:
        values: shape ``(n_samples,)`` for one variable, or ``(n_samples, n_variables)``
            (labels, generative factors); any integer (or otherwise comparable) codes.

    Returns:
        A float for 1-D input, else an ``(n_variables,)`` float64 array; each in
        ``[0, ln K]`` for K distinct values, 0 for a constant variable.
    """
    import scipy.stats  # here, not at import: scipy.stats costs ~0.5 s in front of every command

    arr = np.asarray(values)
    if arr.ndim == 1:
        return float(scipy.stats.entropy(np.unique(arr, return_counts=True)[1]))
    if arr.ndim != 2:
        raise ValueError(
            f"values must have shape (n_samples,) or (n_samples, n_variables), got {arr.shape}"
        )
    return np.array([discrete_entropy(arr[:, j]) for j in range(arr.shape[1])])


def mutual_information(binned: NDArray[np.int64], y: NDArray[np.int64]) -> NDArray[np.float64]:
    """Mutual information in nats between each column of ``binned`` and ``y``.

    The plug-in estimate ``I = sum_{b,k} p(b,k) log(p(b,k) / (p(b) p(k)))`` over the empirical
    joint distribution, as ``sklearn.metrics.mutual_info_score`` computes it for one pair
    (and clipped at 0 as it is), for all columns at once.

    Args:
        binned: shape ``(n_samples, n_units)``, non-negative integer codes (bins).
        y: shape ``(n_samples,)``, integer codes ``0..K-1``.

    Returns:
        Shape ``(n_units,)``.
    """
    n, d = binned.shape
    n_k = int(y.max()) + 1
    n_b = int(binned.max()) + 1
    p_k = np.bincount(y, minlength=n_k) / n
    out = np.empty(d, dtype=np.float64)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, d, chunk):
        block = binned[:, start : start + chunk]
        w = block.shape[1]
        # One bincount over (column, bin, class) triples gives every joint table of the chunk.
        idx = (np.arange(w) * n_b + block) * n_k + y[:, None]
        joint = np.bincount(idx.ravel(), minlength=w * n_b * n_k).reshape(w, n_b, n_k) / n
        p_b = joint.sum(axis=2, keepdims=True)
        outer = p_b * p_k[None, None, :]
        nz = joint > 0
        terms = np.zeros_like(joint)
        terms[nz] = joint[nz] * np.log(joint[nz] / outer[nz])
        out[start : start + w] = terms.sum(axis=(1, 2))
    return np.clip(out, 0.0, None)


def mutual_information_matrix(
    binned: NDArray[np.int64], factors: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Mutual information (nats) of every code column with every factor column.

    Returns:
        Shape ``(n_units, n_factors)`` (disentanglement_lib's ``[num_codes, num_factors]``).
    """
    return np.stack(
        [mutual_information(binned, factors[:, j]) for j in range(factors.shape[1])], axis=1
    )


def zscore_train_test(
    x: NDArray[np.float64], n_train: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Standardise with the training rows' mean and std, dropping units constant on them.

    A constant (e.g. dead) unit has std 0 and would turn into NaN; it carries no information
    for a classifier, so it is removed.

    Returns:
        ``(train, test, kept)``: the z-scored training and test rows of the kept units, and a
        boolean mask over the units telling which were kept.
    """
    train = x[:n_train]
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    kept = std > 0
    train_z = (train[:, kept] - mean[kept]) / std[kept]
    test_z = (x[n_train:, kept] - mean[kept]) / std[kept]
    return train_z, test_z, kept


def row_subset(x: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Indices of a fixed pseudo-random subset of ``k`` rows that does not depend on row order.

    Each row is keyed by a hash of its bytes and the ``k`` smallest keys are kept, so the same
    set of rows is chosen however the rows are permuted (identical rows share a key, and which
    of them is taken does not change any result). All rows when ``k >= n_samples``.

    Returns:
        Sorted row indices, shape ``(min(k, n_samples),)``.
    """
    n = x.shape[0]
    if k >= n:
        return np.arange(n)
    rows = np.ascontiguousarray(x, dtype=np.float64)
    keys = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(rows[i].tobytes(), digest_size=8).digest(), "little")
            for i in range(n)
        ),
        dtype=np.uint64,
        count=n,
    )
    return np.sort(np.argsort(keys, kind="stable")[:k])


@contextlib.contextmanager
def factors_are_classes() -> Iterator[None]:
    """Silence scikit-learn's "more unique classes than 50% of the samples" warning.

    It guesses that ``y`` may be a regression target; factor levels and labels are classes by
    definition (a 40-level factor on a few hundred rows is normal), so the guess is noise.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="The number of unique classes is greater than 50%",
            category=UserWarning,
        )
        yield
