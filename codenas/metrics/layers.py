"""Per-layer code summary: the few values per hidden layer that a code-guided search acts on.

Each layer is one array of shape ``(n_samples, n_units)``; consecutive layers share their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from codenas.metrics._validation import as_layers
from codenas.metrics.capacity import dead_fraction, effective_rank, shared_spectra
from codenas.metrics.redundancy import _cka, _self_similarity


def layer_code(layers: Sequence[ArrayLike]) -> list[dict[str, Any]]:
    """Width, dead units, effective rank and CKA with the previous layer, per hidden layer.

    Cost: one spectrum per layer (shared with ``effective_rank`` and ``capacity_usage`` inside
    a :func:`~codenas.metrics.capacity.shared_spectra` block) and one linear CKA per pair of
    consecutive layers, O(n d^2) each; no O(n^2) step unless a layer is wider than ``n``.

    Args:
        layers: one ``(n_samples, n_units_l)`` array per hidden layer, first to last.

    Returns:
        One dict per layer: ``width`` (int, units), ``dead_fraction`` (in [0, 1], share of units
        never active), ``effective_rank`` (in [1, width], Roy & Vetterli 2007) and
        ``cka_previous`` (linear CKA with the layer before, in [0, 1]; ``None`` for layer 0).
    """
    # Each layer is centred and its self-similarity computed once, as in ``cka_matrix``; each
    # consecutive pair then costs one cross product.
    centred = as_layers(layers, metric="layer_code", centred=True)
    norms = [_self_similarity(x) for x in centred]
    out: list[dict[str, Any]] = []
    with shared_spectra():
        for k, acts in enumerate(layers):
            cka = None
            if k > 0:
                cka = _cka(centred[k - 1], centred[k], norms[k - 1], norms[k])
            out.append(
                {
                    "width": int(np.shape(centred[k])[1]),
                    "dead_fraction": dead_fraction(acts),
                    "effective_rank": effective_rank(acts),
                    "cka_previous": cka,
                }
            )
    return out
