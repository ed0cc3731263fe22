"""One network's neural code: spec -> module -> brief training -> activations -> metric values.

``Evaluator(config, data).evaluate(spec, seed=0) -> Evaluation``; ``rank_early(specs, data,
budget)``; :mod:`codenas.evaluation.neural_code` re-trains a trial and returns its activations.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Evaluator": "codenas.evaluation.evaluate",
    "Evaluation": "codenas.evaluation.evaluate",
    "rank_early": "codenas.evaluation.early_score",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'codenas.evaluation' has no attribute {name!r}")
