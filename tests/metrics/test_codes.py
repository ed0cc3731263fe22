"""Binary activation codes: NASWOT's Hamming-kernel log-determinant and unique codes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from codenas import metrics


def _naswot_reference(acts: np.ndarray, ridge: float = 1.0, threshold: float = 0.0) -> float:
    """Mellor et al. (2021): K_H = N_A - Hamming distance of the binary codes, log|K_H + r I|."""
    codes = acts > threshold
    n_units = codes.shape[1]
    hamming = cdist(codes, codes, metric="hamming") * n_units  # scipy gives the fraction
    k = n_units - hamming + ridge * np.eye(len(codes))
    sign, logdet = np.linalg.slogdet(k)
    return float(logdet) if sign > 0 else -np.inf


@pytest.fixture
def acts() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((40, 64))


def test_logdet_matches_the_hamming_kernel_reference(acts: np.ndarray) -> None:
    assert metrics.activation_code_logdet(acts) == pytest.approx(_naswot_reference(acts), rel=1e-12)


def test_logdet_without_ridge_is_the_papers_score(acts: np.ndarray) -> None:
    # 40 distinct codes over 64 units: K_H is non-singular and the paper's score is finite
    value = metrics.activation_code_logdet(acts, ridge=0.0)
    assert np.isfinite(value)
    assert value == pytest.approx(_naswot_reference(acts, ridge=0.0), rel=1e-12)
    duplicated = np.vstack([acts[:10], acts[:10]])
    assert metrics.activation_code_logdet(duplicated, ridge=0.0) == -np.inf
    assert np.isfinite(metrics.activation_code_logdet(duplicated))


def test_logdet_averages_consecutive_full_batches() -> None:
    acts = np.random.default_rng(1).standard_normal((70, 16))
    expected = np.mean([_naswot_reference(acts[0:32]), _naswot_reference(acts[32:64])])
    assert metrics.activation_code_logdet(acts, batch_size=32) == pytest.approx(expected)


def test_logdet_rewards_distinct_codes(acts: np.ndarray) -> None:
    identical = np.tile(acts[:1], (40, 1))
    low = metrics.activation_code_logdet(identical)
    assert low == pytest.approx(np.log(1 + 40 * 64))  # rank one kernel N_A 1 1^T, plus I
    assert metrics.activation_code_logdet(acts) > low


def test_logdet_threshold_sets_what_on_means() -> None:
    rng = np.random.default_rng(2)
    sigmoid = 1.0 / (1.0 + np.exp(-rng.standard_normal((30, 20))))
    # everything is > 0 after a sigmoid: every code is all-on
    assert metrics.activation_code_logdet(sigmoid) == pytest.approx(np.log(1 + 30 * 20))
    assert metrics.activation_code_logdet(sigmoid, threshold=0.5) == pytest.approx(
        metrics.activation_code_logdet(sigmoid - 0.5)
    )


def test_naswot_scores_the_concatenated_layers(acts: np.ndarray) -> None:
    layers = [acts[:, :20], acts[:, 20:]]
    assert metrics.naswot(layers) == pytest.approx(metrics.activation_code_logdet(acts))


def test_logdet_rejects_bad_options(acts: np.ndarray) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        metrics.activation_code_logdet(acts, batch_size=1)
    with pytest.raises(ValueError, match="ridge"):
        metrics.activation_code_logdet(acts, ridge=-1.0)


def test_unique_codes_fraction() -> None:
    rng = np.random.default_rng(3)
    acts = rng.standard_normal((50, 40))
    assert metrics.unique_codes_fraction(acts) == 1.0
    assert metrics.unique_codes_fraction(np.vstack([acts, acts])) == 0.5
    assert metrics.unique_codes_fraction(np.zeros((8, 3))) == 1 / 8
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.unique_codes_fraction(np.zeros((1, 3)))
    # only the on/off pattern counts, not the values
    assert metrics.unique_codes_fraction(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])) == 2 / 3
