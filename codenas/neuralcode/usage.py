"""How much of each hidden layer a trained network uses: :class:`LayerUsage`, read from the
per-layer code a trial records (user attribute ``code.layers``) or measured directly."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class LayerUsage:
    """How much of one hidden layer is used.

    Attributes:
        width: units (MLP) or channels (CNN).
        effective_rank: Roy & Vetterli's effective rank, in [1, width].
        dead_fraction: share of units that never fire, in [0, 1].
        participation_ratio: participation ratio of the covariance spectrum, if known.
        cka_previous: linear CKA with the layer before, in [0, 1] (``None`` for layer 0 or
            when unknown).
    """

    width: int
    effective_rank: float
    dead_fraction: float
    participation_ratio: float | None = None
    cka_previous: float | None = None

    @property
    def alive(self) -> int:
        """Units that fire on some sample: ``round((1 - dead_fraction) * width)``."""
        return round((1.0 - self.dead_fraction) * self.width)

    @property
    def saturation(self) -> float:
        """``effective_rank / alive``, in [0, ~1]: 1 when every live unit carries a direction."""
        return self.effective_rank / self.alive if self.alive > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "dead_fraction": self.dead_fraction,
            "effective_rank": self.effective_rank,
            "cka_previous": self.cka_previous,
        }


def usage_from_attr(value: Any) -> list[LayerUsage] | None:
    """The per-layer code a trial recorded (user attribute ``code.layers``), or ``None``.

    ``value`` is a list with one mapping per hidden layer, first to last, with keys ``width``
    (int >= 1), ``dead_fraction`` (in [0, 1]), ``effective_rank`` (> 0) and optionally
    ``cka_previous`` (in [0, 1] or ``None``). Anything else (missing, malformed, non-finite)
    gives ``None``: the trial simply has no code signal.
    """
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return None
    out = []
    try:
        for layer in value:
            if not isinstance(layer, Mapping):
                return None
            width = int(layer["width"])
            erank = float(layer["effective_rank"])
            dead = float(layer["dead_fraction"])
            cka = layer.get("cka_previous")
            cka = None if cka is None else float(cka)
            if width < 1 or not (math.isfinite(erank) and erank > 0) or not 0.0 <= dead <= 1.0:
                return None
            if cka is not None and not math.isfinite(cka):
                cka = None
            out.append(LayerUsage(width, erank, dead, cka_previous=cka))
    except (KeyError, TypeError, ValueError):
        return None
    return out
