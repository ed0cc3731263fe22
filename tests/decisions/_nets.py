"""Networks whose code is known by construction, and a source that wraps them."""

from __future__ import annotations

import numpy as np
import torch

import codenas
from codenas.data import Dataset, Split
from codenas.decisions.source import Source
from codenas.spaces import MLPSpec, build_model

LEVELS = 4
OFFSET = 10.0  # keeps every ReLU unit in its linear range


def coordinate_data(n: int = 1000, seed: int = 0) -> Dataset:
    """Inputs ``(a, b, noise, noise)`` of two factors of 4 levels; the label is ``b``."""
    rng = np.random.default_rng(seed)

    def split(m: int) -> Split:
        f = rng.integers(0, LEVELS, size=(m, 2))
        x = np.column_stack([f[:, 0], f[:, 1], rng.normal(size=m), rng.normal(size=m)])
        x = x + 0.15 * rng.normal(size=x.shape)
        return Split(
            torch.as_tensor(x, dtype=torch.float32),
            torch.as_tensor(f[:, 1], dtype=torch.int64),
            torch.as_tensor(f, dtype=torch.int64),
        )

    return Dataset(
        name="coordinates",
        task="classification",
        input_shape=(4,),
        n_outputs=LEVELS,
        train=split(n),
        val=split(n // 2),
        test=split(n // 2),
        factor_names=("a", "b"),
    )


def coordinate_net() -> tuple[MLPSpec, torch.nn.Module]:
    """A ReLU MLP 4-4 whose hidden units are the inputs (+ an offset) and whose head reads
    ``b`` from unit 1 alone (nearest level: logit_k = k (u1 - OFFSET) - k^2 / 2)."""
    spec = MLPSpec(input_shape=(4,), n_outputs=LEVELS, widths=(4, 4), activation="relu")
    model = build_model(spec)
    with torch.no_grad():
        for block in model.hidden_layers:
            block[0].weight.copy_(torch.eye(4))
            block[0].bias.zero_()
        model.hidden_layers[0][0].bias.fill_(OFFSET)
        k = torch.arange(LEVELS, dtype=torch.float32)
        model.head.weight.zero_()
        model.head.weight[:, 1] = k
        model.head.bias.copy_(-k * OFFSET - k**2 / 2)
    return spec, model.eval()


def source_of(spec, model, data, config=None) -> Source:
    config = config or codenas.load_config(None, ["tracking.enabled=false", "metrics.samples=800"])
    return Source("files", "a built network", spec, config, data, {}, {}, None, "-", lambda: model)


def switch_data(n: int = 1000, seed: int = 0) -> Dataset:
    """Inputs ``(a, b, noise, noise)``: a binary factor ``a`` (read without noise) and the label
    ``b`` of 4 levels; with :func:`coordinate_net`, rows with ``a = 0`` differ from the others
    along a direction in which the others do not vary at all."""
    rng = np.random.default_rng(seed)

    def split(m: int) -> Split:
        a, b = rng.integers(0, 2, size=m), rng.integers(0, LEVELS, size=m)
        x = np.column_stack([a, b + 0.15 * rng.normal(size=m), rng.normal(size=(m, 2))])
        return Split(
            torch.as_tensor(x, dtype=torch.float32),
            torch.as_tensor(b, dtype=torch.int64),
            torch.as_tensor(np.column_stack([a, b]), dtype=torch.int64),
        )

    return Dataset(
        name="switch",
        task="classification",
        input_shape=(4,),
        n_outputs=LEVELS,
        train=split(n),
        val=split(n // 2),
        test=split(n // 2),
        factor_names=("a", "b"),
    )
