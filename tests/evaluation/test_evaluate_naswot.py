"""The Evaluator hands NASWOT every channel at every position of a CNN's feature maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import codenas
from codenas.data import load_dataset
from codenas.evaluation.evaluate import Evaluator
from codenas.spaces import build_model
from codenas.spaces.cnn import CNNSpec


def _hand_logdet(codes: np.ndarray) -> float:
    n_units = codes.shape[1]
    hamming = cdist(codes, codes, metric="hamming") * n_units
    return float(np.linalg.slogdet(n_units - hamming + np.eye(len(codes)))[1])


def test_evaluator_naswot_reads_every_position() -> None:
    config = codenas.load_config(
        "shapes-cnn", ["data.n_samples=200", "metrics.samples=40", "train.accelerator=cpu"]
    )
    data = load_dataset(config.data)
    evaluator = Evaluator(config, data)
    torch.manual_seed(0)
    spec = CNNSpec(input_shape=data.input_shape, n_outputs=data.n_outputs, channels=(4, 6))
    model = build_model(spec)
    values, layers = evaluator.measure(model, ["naswot", "naswot_channel_mean"], {})
    maps = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: maps.append(o)) for m in model.hidden_layers]
    with torch.no_grad():
        model.eval()
        model(evaluator.sample_x)
    for hook in hooks:
        hook.remove()
    n = len(evaluator.sample_x)
    per_position = np.concatenate([m.reshape(n, -1).numpy() > 0 for m in maps], axis=1)
    assert per_position.shape[1] == (4 + 6) * 32 * 32
    assert values["naswot"] == pytest.approx(_hand_logdet(per_position), rel=1e-12)
    means = np.concatenate([a > 0 for a in layers], axis=1)
    assert values["naswot_channel_mean"] == pytest.approx(_hand_logdet(means), rel=1e-12)
