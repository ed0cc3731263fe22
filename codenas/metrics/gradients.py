"""Scores of an untrained network read through its gradients rather than its activations.

Most zero-cost scores (:mod:`~codenas.metrics.codes`, :mod:`~codenas.metrics.capacity`) read
the hidden activations of a batch of rows. These two take the network itself and one backward
pass per batch: :func:`synflow` on a constant input (it needs no data), :func:`zico` on a few
batches of training rows and their targets. The zero-cost rung of a search
(``search.screen.score``) takes them by name (:data:`MODEL_SCORES`) beside the activation
metrics of the registry.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
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


def zico(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """ZiCo, the inverse coefficient of variation of the gradients (Li et al., ICLR 2023).

    For each batch ``(x, y)`` the gradient of ``loss(model(x), y)`` (default: cross-entropy)
    with respect to every weight of the ``Linear`` and ``Conv2d`` layers is taken, on a copy of
    the network in training mode (as the paper: batch norm normalises by the batch). For layer
    ``l`` with per-weight mean absolute gradient ``m_j`` and standard deviation ``s_j`` across
    the batches (population s.d., over the weights whose ``s_j > 0``)::

        ZiCo = sum over layers l of log( sum_j m_j / s_j )

    (a layer whose sum is 0 contributes nothing). Higher is better: large, consistent gradients.
    Each batch's gradient is its own (zeroed between batches, as the paper defines it; the
    authors' released code lets them accumulate). Needs at least two batches. ``model`` itself
    is left untouched.

    With one weight matrix and gradients ``g_1 = (1, 0)``, ``g_2 = (3, 2)`` over two batches,
    ``m = (2, 1)``, ``s = (1, 1)`` and the score is ``log 3``.
    """
    import numpy as np
    import torch.nn.functional as F
    from torch import nn

    loss_fn = loss if loss is not None else F.cross_entropy
    net = copy.deepcopy(model).train()
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    grads: list[list[np.ndarray]] = [[] for _ in layers]
    n_batches = 0
    for x, y in batches:
        n_batches += 1
        net.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        for store, layer in zip(grads, layers, strict=True):
            g = layer.weight.grad  # None where no loss path reaches the layer
            flat = np.zeros(layer.weight.numel()) if g is None else g.double().reshape(-1)
            store.append(np.asarray(flat))
    if n_batches < 2:
        raise ValueError("zico needs at least two batches (its statistic is a spread across them)")
    total = 0.0
    for store in grads:
        g = np.stack(store)  # (batches, weights)
        std = g.std(axis=0)
        kept = std > 0
        ratio = float((np.abs(g).mean(axis=0)[kept] / std[kept]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total


def _synflow_score(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return synflow(model, tuple(x.shape[1:]))


def _zico_score(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    import torch.nn.functional as F

    half = len(x) // 2  # two batches, as the paper's default
    loss = F.mse_loss if y.is_floating_point() else F.cross_entropy
    return zico(model, [(x[:half], y[:half]), (x[half:], y[half:])], loss)


MODEL_SCORES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "synflow": _synflow_score,
    "zico": _zico_score,
}
"""Scores of an untrained network (higher better), by name: ``score(model, x, y)`` on a batch of
training rows ``x`` and targets ``y`` (``synflow`` reads only their shape; ``zico`` splits the
batch in two and uses cross-entropy, or the mean squared error for float targets)."""
