"""Linear CKA and layer redundancy: invariances and the sample-space reference form."""

from __future__ import annotations

import numpy as np
import pytest

from codenas import metrics


def _hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. (2019), eq. 1-3: HSIC of centred linear kernels, sample-space form."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k = h @ (x @ x.T) @ h
    m = h @ (y @ y.T) @ h
    return float(np.sum(k * m) / np.sqrt(np.sum(k * k) * np.sum(m * m)))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_cka_is_one_under_orthogonal_transforms_and_scaling(rng: np.random.Generator) -> None:
    x = rng.standard_normal((200, 12))
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    assert metrics.linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)
    assert metrics.linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-10)
    y = rng.standard_normal((200, 5))
    assert metrics.linear_cka(x, 3.0 * y) == pytest.approx(metrics.linear_cka(x, y), abs=1e-12)
    assert metrics.linear_cka(x + 4.0, y) == pytest.approx(metrics.linear_cka(x, y), abs=1e-12)


def test_cka_matches_the_sample_space_form(rng: np.random.Generator) -> None:
    x = rng.standard_normal((60, 7))
    y = np.tanh(x @ rng.standard_normal((7, 4))) + 0.3 * rng.standard_normal((60, 4))
    assert metrics.linear_cka(x, y) == pytest.approx(_hsic_cka(x, y), rel=1e-10)
    assert metrics.linear_cka(y, x) == pytest.approx(metrics.linear_cka(x, y), rel=1e-12)
    # wider than the batch: the function switches to the sample-space form internally
    wide_x, wide_y = rng.standard_normal((30, 80)), rng.standard_normal((30, 90))
    assert metrics.linear_cka(wide_x, wide_y) == pytest.approx(_hsic_cka(wide_x, wide_y), rel=1e-10)


def test_cka_of_independent_noise_is_small(rng: np.random.Generator) -> None:
    assert metrics.linear_cka(rng.standard_normal((4000, 8)), rng.standard_normal((4000, 8))) < 0.02


def test_cka_of_a_constant_layer_is_zero(rng: np.random.Generator) -> None:
    assert metrics.linear_cka(rng.standard_normal((20, 3)), np.ones((20, 2))) == 0.0


def test_cka_rejects_mismatched_rows(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="same n_samples"):
        metrics.linear_cka(rng.standard_normal((20, 3)), rng.standard_normal((21, 3)))


def test_cka_matrix_is_symmetric_with_unit_diagonal(rng: np.random.Generator) -> None:
    x = rng.standard_normal((100, 6))
    layers = [x, np.maximum(0.0, x @ rng.standard_normal((6, 10))), rng.standard_normal((100, 4))]
    m = metrics.cka_matrix(layers)
    assert m.shape == (3, 3)
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(np.diag(m), 1.0)
    for i in range(3):
        for j in range(3):
            assert m[i, j] == pytest.approx(metrics.linear_cka(layers[i], layers[j]), abs=1e-12)


def test_layer_redundancy_is_mean_cka_of_consecutive_layers(rng: np.random.Generator) -> None:
    x = rng.standard_normal((150, 8))
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    assert metrics.layer_redundancy([x, x @ q, 2.0 * x]) == pytest.approx(1.0, abs=1e-10)
    layers = [x, np.maximum(0.0, x), rng.standard_normal((150, 5))]
    expected = np.mean(
        [metrics.linear_cka(layers[0], layers[1]), metrics.linear_cka(layers[1], layers[2])]
    )
    assert metrics.layer_redundancy(layers) == pytest.approx(expected, abs=1e-12)


def test_layer_redundancy_of_a_single_layer_is_zero(rng: np.random.Generator) -> None:
    assert metrics.layer_redundancy([rng.standard_normal((10, 3))]) == 0.0


def test_network_metrics_refuse_a_bare_array(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="list of"):
        metrics.layer_redundancy(rng.standard_normal((10, 3)))  # type: ignore[arg-type]
