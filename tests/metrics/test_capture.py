"""Activation capture: channel-mean units and NASWOT's per-position codes of a tiny CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from torch import nn

from codenas import metrics
from codenas.metrics import capture_layers, compute_metrics


def _hand_logdet(codes: np.ndarray, ridge: float = 1.0) -> float:
    """log|K + ridge I| with Mellor et al.'s kernel K_ij = N_units - Hamming(c_i, c_j)."""
    n_units = codes.shape[1]
    hamming = cdist(codes, codes, metric="hamming") * n_units  # scipy gives the fraction
    sign, logdet = np.linalg.slogdet(n_units - hamming + ridge * np.eye(len(codes)))
    assert sign > 0
    return float(logdet)


@pytest.fixture(scope="module")
def cnn() -> tuple[nn.Module, list[nn.Module], torch.Tensor, list[np.ndarray]]:
    """A two-block ReLU CNN, its hooked layers, 48 inputs and the feature maps by hand."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
    )
    layers = [model[1], model[3]]
    x = torch.randn(48, 1, 6, 6)
    with torch.no_grad():
        first = model[1](model[0](x))
        second = model[3](model[2](first))
    return model, layers, x, [first.numpy(), second.numpy()]


def test_codes_are_every_channel_at_every_position(cnn) -> None:
    model, layers, x, maps = cnn
    captured = capture_layers(model, x, layers, batch_size=20)  # streamed in 3 batches
    for k, fmap in enumerate(maps):
        assert captured.units[k].shape == (48, fmap.shape[1])  # one unit per channel
        np.testing.assert_allclose(captured.units[k], fmap.mean(axis=(2, 3)), rtol=1e-6)
        assert captured.codes[k].dtype == np.bool_
        np.testing.assert_array_equal(captured.codes[k], fmap.reshape(48, -1) > 0)
        assert captured.positions[k] is None
    # The channel-mean code is not the per-position one: a ReLU channel's mean is positive
    # whenever it fires anywhere, so nearly every mean is "on".
    mean_code = captured.units[0] > 0
    assert mean_code.mean() > 0.9 > captured.codes[0].mean()
    assert len(np.unique(mean_code, axis=0)) < len(np.unique(captured.codes[0], axis=0))


def test_naswot_is_the_gram_logdet_of_the_per_position_codes(cnn) -> None:
    model, layers, x, maps = cnn
    by_hand = np.concatenate([m.reshape(48, -1) > 0 for m in maps], axis=1)  # N_A = 7 * 36
    means = np.concatenate([m.mean(axis=(2, 3)) > 0 for m in maps], axis=1)
    captured = capture_layers(model, x, layers)
    names = ["naswot", "naswot_channel_mean", "activation_code_logdet"]
    values = compute_metrics(names, captured.units, codes=captured.codes)
    assert values["naswot"] == pytest.approx(_hand_logdet(by_hand), rel=1e-12)
    assert values["naswot_channel_mean"] == pytest.approx(_hand_logdet(means), rel=1e-12)
    assert values["naswot"] != pytest.approx(values["naswot_channel_mean"], rel=1e-3)
    for k, fmap in enumerate(maps):
        layer = values[f"activation_code_logdet/layer_{k}"]
        assert layer == pytest.approx(_hand_logdet(fmap.reshape(48, -1) > 0), rel=1e-12)
    # Boolean codes and the activations they came from give the same score.
    assert metrics.activation_code_logdet(maps[1].reshape(48, -1)) == pytest.approx(
        metrics.activation_code_logdet(captured.codes[1]), rel=1e-12
    )


def test_codes_are_bounded_in_rows_and_positions(cnn) -> None:
    model, layers, x, maps = cnn
    small = capture_layers(model, x, layers, code_rows=10, max_code_units=40, seed=3)
    again = capture_layers(model, x, layers, code_rows=10, max_code_units=40, seed=3)
    for k, fmap in enumerate(maps):
        channels = fmap.shape[1]
        keep = small.positions[k]
        assert keep is not None and len(keep) == 40 // channels  # every channel kept
        np.testing.assert_array_equal(keep, again.positions[k])  # seeded
        expected = fmap.reshape(48, channels, 36)[:10, :, keep].reshape(10, -1) > 0
        np.testing.assert_array_equal(small.codes[k], expected)
        assert small.units[k].shape == (48, channels)  # the units are not bounded
    other = capture_layers(model, x, layers, code_rows=10, max_code_units=40, seed=4)
    assert any(
        not np.array_equal(a, b) for a, b in zip(other.positions, small.positions, strict=True)
    )
    with pytest.raises(ValueError, match="code_rows >= 1"):
        capture_layers(model, x, layers, code_rows=0)


def test_dense_layers_keep_every_row_as_their_codes() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.Tanh())
    x = torch.randn(600, 5)
    captured = capture_layers(model, x, [model[1], model[3]], code_rows=128)
    for units, codes in zip(captured.units, captured.codes, strict=True):
        np.testing.assert_array_equal(codes, units > 0)  # all 600 rows: MLP scores unchanged
