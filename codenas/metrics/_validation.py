"""Input checks shared by the metric functions: shape, finiteness, enough samples.

Every public metric calls these before any work, so a bad input fails at once with a message
that says which argument, the rule, and the value that broke it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


def _prefix(metric: str | None) -> str:
    return f"{metric}: " if metric else ""


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return x


def as_activations(
    acts: Any,
    *,
    name: str = "activations",
    min_samples: int = 2,
    metric: str | None = None,
    columns: str = "n_units",
    keep_float: bool = False,
) -> NDArray[np.float64]:
    """Return ``acts`` as a finite float64 array of shape ``(n_samples, n_units)``.

    Args:
        acts: array-like or torch tensor, shape ``(n_samples, n_units)``.
        name: what the argument is called, for messages.
        min_samples: the fewest rows the caller can work with.
        metric: the calling metric's name, prefixed to messages.
        columns: what the columns are, for messages.
        keep_float: return float32 (or other floating) and boolean input as it is, without a
            float64 copy, for callers that only compare values (binary codes).

    Raises:
        ValueError: if it is not 2-D, has fewer than ``min_samples`` rows or no columns, or
            holds NaN or infinite values.
    """
    where = _prefix(metric)
    try:
        arr = np.asarray(_to_numpy(acts))
        if not (keep_float and arr.dtype.kind in "fb"):
            arr = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{where}{name} must be a numeric array, got {type(acts).__name__}: {err}"
        ) from None
    if arr.ndim != 2:
        hint = " (for one column pass x.reshape(-1, 1))" if arr.ndim == 1 else ""
        raise ValueError(
            f"{where}{name} must have shape (n_samples, {columns}), got shape {arr.shape}{hint}"
        )
    n, d = arr.shape
    if n < min_samples:
        raise ValueError(f"{where}{name} needs at least {min_samples} samples (rows), got {n}")
    if d < 1:
        raise ValueError(f"{where}{name} needs at least one column, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{where}{name} contains {bad} NaN or infinite values")
    return arr


def as_centred(acts: Any, **kwargs: Any) -> NDArray[np.float64]:
    """:func:`as_activations`, then each column minus its mean, never modifying ``acts``.

    When the float64 conversion already made a copy (float32 input, the common case), the
    centring happens in place on it: one pass and one n x d buffer fewer.
    """
    arr = as_activations(acts, **kwargs)
    mean = arr.mean(axis=0)
    source = _to_numpy(acts)
    if isinstance(source, np.ndarray) and np.may_share_memory(arr, source):
        return arr - mean
    arr -= mean
    return arr


def as_layers(
    layers: Any,
    *,
    min_samples: int = 2,
    min_layers: int = 1,
    metric: str | None = None,
    centred: bool = False,
    keep_float: bool = False,
) -> list[NDArray[np.float64]]:
    """Return a list of validated ``(n_samples, n_units)`` arrays that share ``n_samples``
    (column-centred when ``centred``).

    Raises:
        ValueError: if there are fewer than ``min_layers`` arrays, one of them is invalid (see
            :func:`as_activations`), or their row counts differ.
    """
    where = _prefix(metric)
    if isinstance(layers, np.ndarray) or hasattr(layers, "detach"):
        raise ValueError(
            f"{where}expected a list of (n_samples, n_units) arrays, one per layer, got a single "
            f"array of shape {tuple(layers.shape)}; wrap one layer as [acts]"
        )
    if not isinstance(layers, Sequence):
        raise ValueError(f"{where}expected a list of arrays, got {type(layers).__name__}")
    if len(layers) < min_layers:
        raise ValueError(f"{where}needs at least {min_layers} layer(s), got {len(layers)}")
    check = as_centred if centred else as_activations
    extra = {"keep_float": True} if keep_float else {}
    out = [
        check(a, name=f"layer {k}", min_samples=min_samples, metric=metric, **extra)
        for k, a in enumerate(layers)
    ]
    rows = [a.shape[0] for a in out]
    if len(set(rows)) > 1:
        raise ValueError(f"{where}every layer must have the same n_samples, got rows {rows}")
    return out


def _as_discrete(values: Any, *, name: str, where: str) -> NDArray[np.int64]:
    """Encode integer-valued ``values`` (any shape) as 0..K-1 codes per column, in sorted order."""
    try:
        arr = np.asarray(_to_numpy(values))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}{name} must be an integer array: {err}") from None
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{where}{name} must hold integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{where}{name} contains {bad} NaN or infinite values")
        if not np.all(arr == np.round(arr)):
            raise ValueError(
                f"{where}{name} must hold discrete integer values (class or factor indices), "
                "got non-integer floats; discretise continuous factors first"
            )
    return arr


def as_factors(
    factors: Any, n_samples: int, *, name: str = "factors", metric: str | None = None
) -> NDArray[np.int64]:
    """Return ``factors`` as an int64 array of shape ``(n_samples, n_factors)``, each column
    re-encoded as 0..K-1 in sorted order of its values.

    Raises:
        ValueError: if it is not 2-D, its row count differs from ``n_samples``, it holds
            NaN/inf or non-integer values, or a factor takes a single value.
    """
    where = _prefix(metric)
    arr = _as_discrete(factors, name=name, where=where)
    if arr.ndim != 2:
        hint = " (for one factor pass factors.reshape(-1, 1))" if arr.ndim == 1 else ""
        raise ValueError(
            f"{where}{name} must have shape (n_samples, n_factors), got shape {arr.shape}{hint}"
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{where}{name} must have one row per sample: codes have {n_samples} rows, "
            f"{name} have {arr.shape[0]}"
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{where}{name} needs at least one factor, got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=np.int64)
    for j in range(arr.shape[1]):
        levels, out[:, j] = np.unique(arr[:, j], return_inverse=True)
        if len(levels) < 2:
            raise ValueError(
                f"{where}{name} column {j} takes a single value ({levels[0]}) on these samples; "
                "a constant factor has zero entropy and cannot be scored"
            )
    return out


def as_labels(
    labels: Any, n_samples: int, *, name: str = "labels", metric: str | None = None
) -> NDArray[np.int64]:
    """Return class ``labels`` as an int64 array of shape ``(n_samples,)`` coded 0..K-1.

    Raises:
        ValueError: if it is not 1-D (an ``(n, 1)`` column is accepted), its length differs
            from ``n_samples``, it holds NaN/inf or non-integers, or it has a single class.
    """
    where = _prefix(metric)
    arr = _as_discrete(labels, name=name, where=where)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{where}{name} must have shape (n_samples,), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{where}{name} must have one entry per sample: activations have {n_samples} rows, "
            f"{name} have {arr.shape[0]}"
        )
    levels, coded = np.unique(arr, return_inverse=True)
    if len(levels) < 2:
        raise ValueError(f"{where}{name} hold a single class ({levels[0]}); need at least two")
    return coded.astype(np.int64)


def n_train_rows(n_samples: int) -> int:
    """Rows used for fitting on fixed data: the first ``ceil(0.9 * n_samples)``."""
    return int(np.ceil(0.9 * n_samples))


def check_split(targets: NDArray[np.int64], *, name: str, metric: str | None = None) -> int:
    """Check that every target column has two or more values in the training rows.

    Args:
        targets: ``(n_samples, n_targets)`` or ``(n_samples,)`` coded targets.

    Returns:
        The number of training rows, ``ceil(0.9 * n_samples)``.
    """
    where = _prefix(metric)
    n = targets.shape[0]
    n_train = n_train_rows(n)
    train = targets[:n_train].reshape(n_train, -1)
    for j in range(train.shape[1]):
        if np.unique(train[:, j]).size < 2:
            col = f" column {j}" if targets.ndim == 2 else ""
            raise ValueError(
                f"{where}{name}{col} takes a single value in the training rows (the first "
                f"{n_train} of {n}); shuffle the rows or pass more samples"
            )
    return n_train
