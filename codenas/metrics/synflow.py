"""Scores of an untrained network read from its weights rather than from its activations.

Most zero-cost scores (:mod:`~codenas.metrics.codes`, :mod:`~codenas.metrics.capacity`) read
the hidden activations of a batch of rows. :func:`synflow` reads the weights instead, through
one backward pass on a constant input, and needs no data. The zero-cost rung of a search
(``search.screen.score``) takes these by name (:data:`MODEL_SCORES`) beside the activation
metrics of the registry.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """The log of the synflow score of ``model`` (Tanaka et al. 2020; Abdelfattah et al. 2021).

    As in Abdelfattah et al.'s ``zero-cost-nas``: a float64 copy of the network in eval mode
    (batch norm then uses its initial running statistics, the identity at initialisation),
    every parameter and buffer replaced by its absolute value, one all-ones input of shape
    ``input_shape``; with ``R`` the sum of the outputs, the score is ``sum |w * dR/dw|`` over
    the weights of the ``Linear`` and ``Conv2d`` layers. Returned as its natural log (the score
    overflows float32 on deep networks; the ranking is the same); ``-inf`` when it is 0.
    ``model`` itself is left untouched.

    For a bias-free chain of ``L`` linear layers every layer contributes ``R`` (the sum of
    ``|w_ij| dR/dw_ij`` over one layer's weights is the path sum ``R``), so the score is
    ``log(L * R)``; higher is better (more signal flow).
    """
    import torch
    from torch import nn

    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    x = torch.ones((1, *input_shape), dtype=torch.float64)
    net(x).sum().backward()
    total = 0.0
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)) and module.weight.grad is not None:
            total += float((module.weight.detach() * module.weight.grad).abs().sum())
    return math.log(total) if total > 0 else -math.inf


MODEL_SCORES: dict[str, Callable[[nn.Module, Sequence[int]], float]] = {"synflow": synflow}
"""Scores of an untrained network from its weights and input shape (higher better), by name."""
