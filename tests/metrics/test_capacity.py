"""Capacity metrics: analytic anchors and independent reference computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from codenas import metrics


def _orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


def test_dead_fraction_counts_units_that_never_fire() -> None:
    acts = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0]])
    assert metrics.dead_fraction(acts) == 0.5
    assert metrics.dead_fraction(acts, tol=1.5) == 0.75


@pytest.mark.parametrize("k", [1, 3, 7])
def test_effective_rank_of_k_equal_singular_values_is_k(k: int) -> None:
    rng = np.random.default_rng(k)
    n, d = 200, 20
    # Left singular vectors orthogonal to the all-ones vector, so centring leaves them alone.
    u = _orthonormal(rng, n, k + 1)
    ones = np.ones((n, 1)) / np.sqrt(n)
    u = u - ones @ (ones.T @ u)
    u, _ = np.linalg.qr(u[:, :k])
    v = _orthonormal(rng, d, k)
    acts = 3.0 * u @ v.T
    assert metrics.effective_rank(acts) == pytest.approx(k, rel=1e-9)


def test_effective_rank_of_a_random_rank_k_matrix_is_at_most_k() -> None:
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((500, 5)) @ rng.standard_normal((5, 64))
    value = metrics.effective_rank(acts)
    assert 3.0 < value <= 5.0 + 1e-9


def test_effective_rank_matches_a_full_svd() -> None:
    rng = np.random.default_rng(1)
    acts = rng.standard_normal((80, 30)) * np.linspace(0.1, 3.0, 30)
    s = np.linalg.svd(acts - acts.mean(axis=0), compute_uv=False)
    p = s / s.sum()
    expected = np.exp(-np.sum(p * np.log(p)))
    assert metrics.effective_rank(acts) == pytest.approx(expected, rel=1e-9)
    # a layer wider than the batch takes the other Gram side: same value as an SVD
    wide = rng.standard_normal((20, 50))
    s = np.linalg.svd(wide - wide.mean(axis=0), compute_uv=False)
    s = s[s > 1e-9 * s[0]]
    p = s / s.sum()
    assert metrics.effective_rank(wide) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)


def test_effective_rank_of_a_constant_layer_is_one() -> None:
    assert metrics.effective_rank(np.ones((10, 4))) == 1.0


def test_participation_ratio_of_k_identical_units_is_one() -> None:
    rng = np.random.default_rng(0)
    unit = rng.standard_normal((300, 1))
    assert metrics.participation_ratio(np.tile(unit, (1, 6))) == pytest.approx(1.0, abs=1e-12)


def test_participation_ratio_of_isotropic_noise_is_near_width() -> None:
    rng = np.random.default_rng(0)
    assert metrics.participation_ratio(rng.standard_normal((20_000, 10))) == pytest.approx(
        10.0, rel=0.02
    )


@pytest.mark.parametrize("shape", [(300, 12), (15, 40)])
def test_participation_ratio_matches_covariance_eigenvalues(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    acts = rng.standard_normal(shape) * rng.uniform(0.1, 2.0, shape[1])
    lam = np.linalg.eigvalsh(np.cov(acts, rowvar=False))
    expected = lam.sum() ** 2 / np.sum(lam**2)
    assert metrics.participation_ratio(acts) == pytest.approx(expected, rel=1e-9)


def test_participation_ratio_of_a_constant_layer_is_one() -> None:
    assert metrics.participation_ratio(np.full((5, 3), 2.0)) == 1.0


def test_hoyer_sparsity_extremes() -> None:
    one_hot = np.eye(8)
    assert metrics.hoyer_sparsity(one_hot) == pytest.approx(1.0)
    assert metrics.hoyer_sparsity(np.ones((4, 8))) == pytest.approx(0.0, abs=1e-12)
    # rows with no activity are left out, not counted as sparse or dense
    assert metrics.hoyer_sparsity(np.vstack([one_hot, np.zeros((8, 8))])) == pytest.approx(1.0)
    assert metrics.hoyer_sparsity(np.zeros((3, 5))) == 1.0


def test_hoyer_sparsity_matches_the_formula_row_by_row() -> None:
    rng = np.random.default_rng(3)
    acts = np.maximum(0.0, rng.standard_normal((50, 16)))
    d = acts.shape[1]
    expected = np.mean(
        [
            (np.sqrt(d) - np.abs(row).sum() / np.linalg.norm(row)) / (np.sqrt(d) - 1)
            for row in acts
            if np.linalg.norm(row) > 0
        ]
    )
    assert metrics.hoyer_sparsity(acts) == pytest.approx(expected, rel=1e-12)


def _twonn_reference(acts: np.ndarray, discard: float = 0.1) -> float:
    """Facco et al. (2017), written from the paper with a dense distance matrix."""
    dist = cdist(acts, acts)
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, :2]
    keep = nearest[:, 0] > 0
    mu = np.sort(nearest[keep, 1] / nearest[keep, 0])
    n = len(mu)
    m = int(np.floor(n * (1 - discard)))
    x = np.log(mu[:m])
    y = -np.log(1 - np.arange(1, m + 1) / n)
    return float(np.sum(x * y) / np.sum(x * x))


def test_twonn_matches_a_dense_reference() -> None:
    rng = np.random.default_rng(4)
    acts = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 20))
    assert metrics.twonn_dimension(acts) == pytest.approx(_twonn_reference(acts), rel=1e-9)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_twonn_finds_the_dimension_of_a_linear_manifold(d: int) -> None:
    rng = np.random.default_rng(d)
    points = rng.uniform(size=(2000, d)) @ _orthonormal(rng, 30, d).T
    assert metrics.twonn_dimension(points) == pytest.approx(d, rel=0.12)


def test_twonn_finds_the_dimension_of_a_curved_manifold() -> None:
    rng = np.random.default_rng(0)
    t = rng.uniform(1.5 * np.pi, 4.5 * np.pi, 2000)
    height = rng.uniform(0.0, 20.0, 2000)
    swiss_roll = np.c_[t * np.cos(t), height, t * np.sin(t)]
    assert metrics.twonn_dimension(swiss_roll) == pytest.approx(2.0, rel=0.1)


def test_twonn_leaves_out_duplicates_and_caps_queries_reproducibly() -> None:
    rng = np.random.default_rng(5)
    points = rng.uniform(size=(600, 3))
    with_copies = np.vstack([points, points[:50]])
    # the duplicated points have r1 = 0 and are left out; the others see the same neighbours
    assert np.isfinite(metrics.twonn_dimension(with_copies))
    assert metrics.twonn_dimension(np.ones((10, 3))) == 0.0
    capped = metrics.twonn_dimension(points, max_queries=200)
    assert capped == metrics.twonn_dimension(points[::-1], max_queries=200)
    assert capped == pytest.approx(3.0, rel=0.25)
    assert metrics.twonn_dimension(points, max_queries=None) == metrics.twonn_dimension(points)


def test_twonn_rejects_a_bad_discard_fraction() -> None:
    with pytest.raises(ValueError, match="discard_fraction"):
        metrics.twonn_dimension(np.random.default_rng(0).normal(size=(10, 2)), discard_fraction=1)


def test_capacity_usage_is_mean_effective_rank_over_width() -> None:
    rng = np.random.default_rng(6)
    layers = [rng.standard_normal((100, 8)), rng.standard_normal((100, 3)) @ np.ones((3, 6))]
    expected = np.mean([metrics.effective_rank(a) / a.shape[1] for a in layers])
    assert metrics.capacity_usage(layers) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 1 layer"):
        metrics.capacity_usage([])


def test_compute_metrics_shares_spectra_without_changing_values() -> None:
    from codenas import metrics

    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(300, 40)), rng.normal(size=(300, 5)) @ rng.normal(size=(5, 20))]
    out = metrics.compute_metrics(["effective_rank", "capacity_usage"], layers)
    assert out["effective_rank/layer_1"] == pytest.approx(metrics.effective_rank(layers[1]))
    assert out["capacity_usage"] == pytest.approx(metrics.capacity_usage(layers))
    # Outside compute_metrics nothing is cached: a changed array gives its own value.
    before = metrics.effective_rank(layers[1])
    layers[1][:, 5:] = rng.normal(size=(300, 15))
    assert metrics.effective_rank(layers[1]) > before + 5
