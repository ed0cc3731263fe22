"""One network's neural code: spec -> module -> brief training -> activations -> metric values.

``Evaluator(config, data).evaluate(spec, seed=0) -> Evaluation``; ``rank_early(specs, data,
budget)``; :mod:`codenas.evaluation.neural_code` re-trains a trial and returns its activations.
"""

from __future__ import annotations

from codenas.lazy import lazy_getattr

_EXPORTS = {
    "Evaluator": "codenas.evaluation.evaluate",
    "Evaluation": "codenas.evaluation.evaluate",
    "rank_early": "codenas.evaluation.early_score",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
