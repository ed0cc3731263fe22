"""Input checks shared by the metric functions: shape, finiteness, enough samples."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def as_activations(acts: Any, *, name: str = "activations", min_samples: int = 2) -> NDArray[np.float64]:
    """Return ``acts`` as a finite float64 array of shape ``(n_samples, n_units)``.

    Raises:
        ValueError: if it is not 2-D, has fewer than ``min_samples`` rows or no columns, or
            holds NaN or infinite values.
    """
    if hasattr(acts, "detach"):  # a torch tensor
        acts = acts.detach().cpu().numpy()
    arr = np.asarray(acts, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_units), got shape {arr.shape}")
    n, d = arr.shape
    if n < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {n}")
    if d < 1:
        raise ValueError(f"{name} needs at least one unit, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite values")
    return arr
