"""Capture the hidden activations of a network with forward hooks.

Memory stays bounded: the inputs are streamed in batches and only the hooked outputs are kept,
reduced to ``(n_samples, n_units)`` on the fly. For convolutional outputs ``(N, C, H, W)`` the
units are the channels and each is summarised by its spatial mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def _to_units(out: torch.Tensor) -> torch.Tensor:
    if out.dim() == 2:
        return out
    if out.dim() > 2:  # (N, C, *spatial): one unit per channel, its spatial mean
        return out.flatten(2).mean(dim=2)
    return out.reshape(out.shape[0], -1)


@torch.no_grad()
def capture_activations(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: Sequence[nn.Module] | None = None,
    *,
    batch_size: int = 1024,
) -> list[np.ndarray]:
    """Outputs of ``layers`` on ``inputs``, one ``(n_samples, n_units)`` float32 array per layer.

    Args:
        model: the network; run in eval mode (its mode is restored afterwards).
        inputs: a tensor of shape ``(n_samples, *input_shape)`` on the model's device.
        layers: the modules whose outputs to record; default ``model.hidden_layers``.
        batch_size: rows per forward pass.

    Returns:
        A list with one array per layer, in the order given.
    """
    if layers is None:
        layers = list(model.hidden_layers)
    chunks: list[list[torch.Tensor]] = [[] for _ in layers]
    handles = []
    for k, layer in enumerate(layers):

        def hook(_module: nn.Module, _inp: object, out: torch.Tensor, k: int = k) -> None:
            chunks[k].append(_to_units(out).detach().float().cpu())

        handles.append(layer.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(inputs), batch_size):
            model(inputs[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [torch.cat(c).numpy() for c in chunks]
