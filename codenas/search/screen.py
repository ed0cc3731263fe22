"""A zero-cost rung: candidates screened by their code at initialisation, within a size band.

``search.screen: {score: effective_rank, candidates: 8, band: 1.5}`` wraps the study's sampler.
For each trial, the base sampler proposes ``candidates`` parameter sets (repeated draws of its
per-parameter sample: for TPE, draws from its model of good trials; the code sampler's moves
are one fixed proposal), each is built at
initialisation (seed 0) and scored on one batch of training rows by the registered metric
``score`` (milliseconds for an MLP, no training, no Optuna trial), or through its gradients
(``synflow``: one backward pass on a constant input; ``zico``: one per half of the batch, with
its targets). Among the candidates whose
parameter count is within a factor ``band`` of the base sampler's own first proposal, the
best-scored one is trained: the base sampler keeps choosing *how large* a network to try, and
the code chooses *which one of that size*. Size bands, because every score measured grows with
width: a screen across sizes would only pick the widest network (docs/zero-cost.md).

The score was chosen on development tasks only (digits and factors MLPs): ``effective_rank``
at initialisation, mean within-band Kendall tau +0.32 against full-training accuracy, where
NASWOT and SWAP carry nothing beyond size. On the one held-out CNN task it did not carry over
(tau -0.20, 20 networks): docs/zero-cost.md. What the screen did is recorded on the trial
(user attribute ``screen``: candidates, how many were in the band, the chosen one's score).

The first trial (no parameter known yet) is the base sampler's, unscreened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.samplers import BaseSampler

from codenas.search._optuna_private import set_trial_user_attrs
from codenas.search.samplers.modelled import DelegatingSampler

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial

    from codenas.config import Config
    from codenas.config.models import ScreenConfig
    from codenas.data import Dataset
    from codenas.spaces import Space

SCREEN_ATTR = "screen"

Scorer = Callable[[Mapping[str, Any]], tuple[float, float]]
"""``scorer(params) -> (score, params_count)``: a candidate's zero-cost score (higher better)
and its size."""


def choose(scores: Sequence[float], sizes: Sequence[float], band: float) -> tuple[int, int]:
    """The best-scored candidate within a factor ``band`` of candidate 0's size.

    Returns:
        ``(index chosen, candidates in the band)``; candidate 0 when none scores finitely.
    """
    anchor = sizes[0]
    best, best_score, in_band = 0, -math.inf, 0
    for i, (score, size) in enumerate(zip(scores, sizes, strict=True)):
        if not (anchor / band <= size <= anchor * band):
            continue
        in_band += 1
        if math.isfinite(score) and score > best_score:
            best, best_score = i, score
    return best, in_band


def zero_cost_scorer(
    config: Config, data: Dataset, space: Space, metric: str, *, batch_size: int = 128
) -> Scorer:
    """A :data:`Scorer` for ``config``'s space and data: the registered ``metric`` of a
    candidate at initialisation (seed 0), on a seeded batch of training rows, or a score read
    through its gradients on the same rows (``codenas.metrics.MODEL_SCORES``: ``synflow``,
    which reads only their shape, or ``zico``, which needs their targets too)."""
    import torch

    from codenas.metrics import (
        MODEL_SCORES,
        capture_layers,
        compute_metrics,
        get_metric,
        reads_codes,
    )
    from codenas.spaces import build_model

    def model(params: Mapping[str, Any]) -> tuple[torch.nn.Module, float]:
        import optuna

        spec = space.sample(optuna.trial.FixedTrial(dict(params)), data.input_shape, data.n_outputs)
        torch.manual_seed(0)
        net = build_model(spec)
        return net, float(sum(p.numel() for p in net.parameters() if p.requires_grad))

    rng = np.random.default_rng(config.data.seed)
    rows = rng.permutation(len(data.train))[: min(batch_size, len(data.train))]
    x = data.train.x[torch.as_tensor(rows)].cpu()
    if metric in MODEL_SCORES:  # through the network's gradients (synflow, zico)
        read = MODEL_SCORES[metric]
        y = data.train.y[torch.as_tensor(rows)].cpu()

        def from_gradients(params: Mapping[str, Any]) -> tuple[float, float]:
            net, size = model(params)
            return float(read(net, x, y)), size

        return from_gradients

    codes = reads_codes([metric])
    sign = -1.0 if get_metric(metric).direction == "minimize" else 1.0

    def score(params: Mapping[str, Any]) -> tuple[float, float]:
        model_, size = model(params)
        captured = capture_layers(model_, x, codes=codes)
        value = compute_metrics([metric], captured.units, codes=captured.codes)[metric]
        return sign * float(value), size

    return score


class ScreenedSampler(DelegatingSampler):
    """``base`` with a zero-cost screen of its relative proposals (module docstring).

    Args:
        base: the sampler whose proposals are screened (TPE, the code sampler, ...).
        scorer: scores a full parameter set (:func:`zero_cost_scorer`).
        candidates: proposals drawn per trial, >= 1.
        band: size band around the base's own proposal, > 1.
    """

    def __init__(
        self, base: BaseSampler, scorer: Scorer, candidates: int = 8, band: float = 1.5
    ) -> None:
        from optuna.search_space import IntersectionSearchSpace

        super().__init__(base)
        self.scorer = scorer
        self.candidates, self.band = int(candidates), float(band)
        self._space = IntersectionSearchSpace()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        # Every parameter all finished trials share: a candidate is a full architecture.
        return self._space.calculate(study)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or self.candidates <= 1:
            return {}
        draws = [
            {
                name: self.base.sample_independent(study, trial, name, dist)
                for name, dist in search_space.items()
            }
            for _ in range(self.candidates)
        ]
        scores, sizes = [], []
        for params in draws:
            try:
                score, size = self.scorer(params)
            except Exception:  # a candidate the scorer cannot build (a conditional space)
                return {}
            scores.append(score)
            sizes.append(size)
        pick, in_band = choose(scores, sizes, self.band)
        set_trial_user_attrs(
            study,
            trial,
            {
                SCREEN_ATTR: {
                    "candidates": len(draws),
                    "in_band": in_band,
                    "chosen": pick,
                    "scores": [round(v, 6) for v in scores],
                    "sizes": sizes,
                }
            },
        )
        return draws[pick]


def screened(
    sampler: optuna.samplers.BaseSampler,
    screen: ScreenConfig | None,
    config: Config,
    data: Dataset | None,
    space: Space | None,
) -> optuna.samplers.BaseSampler:
    """``sampler`` behind the screen ``search.screen``, or as it is (no screen, or no data)."""
    if screen is None or data is None or space is None:
        return sampler
    scorer = zero_cost_scorer(config, data, space, screen.score)
    return ScreenedSampler(sampler, scorer, candidates=screen.candidates, band=screen.band)
