"""Capture the hidden activations of a network with forward hooks.

Memory stays bounded: the inputs are streamed in batches and only the hooked outputs are kept,
reduced to ``(n_samples, n_units)`` on the fly. Two views of each layer come out of one pass:

*units*
    float32 ``(n_samples, n_units)``. For convolutional outputs ``(N, C, H, W)`` the units are
    the channels and each is summarised by its spatial mean; what most coding metrics read.
*codes*
    boolean ``(n_code_rows, n_code_units)``, ``[activation > threshold]`` for every unit a
    binary-code metric reads. For a convolutional layer that is every channel at every spatial
    position, as NASWOT's published definition has it (Mellor et al. 2021 binarise each
    rectified unit of the feature map); for a dense layer it is its units. Two bounds keep it
    small, both documented in ``docs/metrics.md``:

    - rows: when any hooked layer is convolutional, codes are kept for the first
      :data:`CODE_ROWS` rows only (four NASWOT batches of 128); for dense-only networks every
      row is kept, so their codes are exactly the thresholded units;
    - positions: a layer with ``C * H * W > MAX_CODE_UNITS`` keeps every channel at a seeded
      sample of ``MAX_CODE_UNITS // C`` positions, the same positions for every row. With the
      default bound (65,536) the shapes-32 CNNs of the packaged configs (up to 64 channels at
      32x32) are never sampled.

    So the codes of one layer take at most ``CODE_ROWS * MAX_CODE_UNITS`` bytes (32 MiB).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

CODE_ROWS = 512
"""Rows of the per-position codes of a convolutional network: four NASWOT batches of 128."""
MAX_CODE_UNITS = 2**16
"""Most code units per layer; a larger feature map keeps a seeded sample of its positions."""


@dataclasses.dataclass(frozen=True)
class Captured:
    """Both views of the hooked layers, one array per layer, in the order the layers were given.

    Attributes:
        units: float32 ``(n_samples, n_units)`` arrays; channel means for conv layers.
        codes: boolean ``(n_code_rows, n_code_units)`` arrays, every channel at every (sampled)
            position for conv layers; empty when codes were not asked for.
        positions: per layer, the flat spatial positions (row-major over ``H x W``) kept in its
            codes, or ``None`` when every position (or a dense layer's every unit) is kept.
    """

    units: list[np.ndarray]
    codes: list[np.ndarray]
    positions: list[np.ndarray | None]


def _to_units(out: torch.Tensor) -> torch.Tensor:
    if out.dim() == 2:
        return out
    if out.dim() > 2:  # (N, C, *spatial): one unit per channel, its spatial mean
        return out.flatten(2).mean(dim=2)
    return out.reshape(out.shape[0], -1)


def _sample_positions(
    channels: int, n_positions: int, max_units: int, seed: int, layer: int
) -> np.ndarray | None:
    """Sorted flat positions to keep, or ``None`` when all ``channels * n_positions`` fit."""
    if channels * n_positions <= max_units:
        return None
    keep = max(1, max_units // channels)
    rng = np.random.default_rng([seed, layer])  # the same positions on every call
    return np.sort(rng.choice(n_positions, size=keep, replace=False))


@torch.no_grad()
def capture_layers(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: Sequence[nn.Module] | None = None,
    *,
    batch_size: int = 1024,
    codes: bool = True,
    threshold: float = 0.0,
    code_rows: int = CODE_ROWS,
    max_code_units: int = MAX_CODE_UNITS,
    seed: int = 0,
) -> Captured:
    """Channel-mean units and per-position binary codes of ``layers`` on ``inputs``, one pass.

    Args:
        model: the network; run in eval mode (its mode is restored afterwards).
        inputs: a tensor of shape ``(n_samples, *input_shape)`` on the model's device.
        layers: the modules whose outputs to record; default ``model.hidden_layers``.
        batch_size: rows per forward pass.
        codes: also keep the binary codes (see the module docstring for the bounds).
        threshold: a unit is on where its activation is greater than this (0.0: the linear
            region of ReLU and its relatives, the sign for tanh).
        code_rows: rows of codes kept when any layer is convolutional, >= 1.
        max_code_units: most code units per layer before positions are sampled, >= 1.
        seed: seeds the sample of positions (with the layer's index).

    Returns:
        A :class:`Captured`; every ``codes`` array has the same number of rows.
    """
    if code_rows < 1 or max_code_units < 1:
        raise ValueError(
            f"`code_rows >= 1` and `max_code_units >= 1` must hold, got {code_rows=}, "
            f"{max_code_units=}"
        )
    if layers is None:
        layers = list(model.hidden_layers)
    chunks: list[list[torch.Tensor]] = [[] for _ in layers]
    raw: list[list[torch.Tensor]] = [[] for _ in layers]  # per-position outputs, first rows
    kept = [0] * len(layers)
    positions: list[np.ndarray | None] = [None] * len(layers)
    handles = []
    for k, layer in enumerate(layers):

        def hook(_module: nn.Module, _inp: object, out: torch.Tensor, k: int = k) -> None:
            chunks[k].append(_to_units(out).detach().float().cpu())
            if not codes or out.dim() <= 2 or kept[k] >= code_rows:
                return
            flat = out.detach().flatten(2)  # (N, C, P)
            if not raw[k]:
                positions[k] = _sample_positions(
                    flat.shape[1], flat.shape[2], max_code_units, seed, k
                )
            if positions[k] is not None:
                flat = flat[:, :, torch.as_tensor(positions[k], device=flat.device)]
            take = min(code_rows - kept[k], flat.shape[0])
            # Thresholded at once: one byte per unit instead of four.
            raw[k].append((flat[:take] > threshold).flatten(1).cpu())
            kept[k] += take

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
    units = [torch.cat(c).numpy() for c in chunks]
    if not codes:
        return Captured(units=units, codes=[], positions=positions)
    # Every code array has the same rows, so a network score can join them.
    rows = min(code_rows, len(inputs)) if any(raw) else len(inputs)
    out_codes = [
        torch.cat(r).numpy() if r else units[k][:rows] > threshold for k, r in enumerate(raw)
    ]
    return Captured(units=units, codes=out_codes, positions=positions)


def capture_activations(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: Sequence[nn.Module] | None = None,
    *,
    batch_size: int = 1024,
) -> list[np.ndarray]:
    """Outputs of ``layers`` on ``inputs``, one ``(n_samples, n_units)`` float32 array per layer.

    The ``units`` of :func:`capture_layers` (channel means for convolutional layers).

    Args:
        model: the network; run in eval mode (its mode is restored afterwards).
        inputs: a tensor of shape ``(n_samples, *input_shape)`` on the model's device.
        layers: the modules whose outputs to record; default ``model.hidden_layers``.
        batch_size: rows per forward pass.

    Returns:
        A list with one array per layer, in the order given.
    """
    return capture_layers(model, inputs, layers, batch_size=batch_size, codes=False).units
