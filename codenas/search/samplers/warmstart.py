"""The zero-cost score codenas's driver gives the code sampler's warm start.

A candidate is scored at initialisation, without training: the NASWOT score (Mellor et al.,
ICML 2021) of its binary activation codes on one batch of training inputs (for a conv layer
every channel at every position, as published and as the trials' ``naswot`` metric reads them:
:func:`codenas.metrics.capture_layers`), and, when the
search minimises ``params``, minus its parameter count as a second score, so the warm start
spreads over small and large networks instead of taking only the widest (NASWOT grows with
width). Abdelfattah et al. (ICLR 2021) warm up a search with the best of many candidates
scored this way; a few milliseconds each for the MLPs and CNNs codenas builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from codenas.metrics import capture_layers, naswot
from codenas.metrics.codes import NASWOT_BATCH
from codenas.spaces import build_model

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config
    from codenas.data import Dataset
    from codenas.search.samplers.code import ScoreFn
    from codenas.spaces import Space


def naswot_score(
    config: Config, data: Dataset, space: Space, *, batch_size: int = NASWOT_BATCH
) -> ScoreFn:
    """A :data:`~codenas.search.samplers.code.ScoreFn` for ``config``'s space and data.

    The batch is a seeded (``data.seed``) sample of ``batch_size`` training rows, the same in
    every worker; each candidate is initialised under seed 0.

    Returns:
        ``score(trial) -> naswot`` or ``(naswot, -params)`` (both higher-better) when ``params``
        is a minimised objective.
    """
    rng = np.random.default_rng(config.data.seed)
    rows = rng.permutation(len(data.train))[: min(batch_size, len(data.train))]
    x = data.train.x[torch.as_tensor(rows)].cpu()
    minimise_params = any(
        o.metric == "params" and o.direction == "minimize" for o in config.objectives
    )

    def score(trial: optuna.Trial) -> float | tuple[float, float]:
        spec = space.sample(trial, data.input_shape, data.n_outputs)
        torch.manual_seed(0)
        model = build_model(spec)
        value = naswot(capture_layers(model, x, codes=True).codes)
        if not minimise_params:
            return value
        size = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return value, -float(size)

    return score
