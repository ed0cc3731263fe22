"""Label coding: class selectivity, unit label information, linear probes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from codenas import metrics


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 4, 400)


def _morcos_reference(acts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Morcos et al. (2018) on non-negative activity, with Leavitt & Morcos' epsilon."""
    out = []
    for unit in acts.T:
        means = np.array([unit[labels == c].mean() for c in np.unique(labels)])
        top = means.max()
        rest = np.delete(means, means.argmax()).mean()
        out.append((top - rest) / (top + rest + 1e-7))
    return np.array(out)


def test_selectivity_matches_the_published_index(labels: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    acts = np.maximum(
        0.0, rng.standard_normal((400, 12)) + 0.8 * np.eye(4)[labels] @ rng.standard_normal((4, 12))
    )
    np.testing.assert_allclose(
        metrics.selectivity_index(acts, labels), _morcos_reference(acts, labels), rtol=1e-10
    )


def test_selectivity_extremes(labels: np.ndarray) -> None:
    one_class = (labels == 2).astype(float)[:, None]
    uniform = np.ones((400, 1))
    dead = np.zeros((400, 1))
    si = metrics.selectivity_index(np.hstack([one_class, uniform, dead]), labels)
    np.testing.assert_allclose(si, [1.0, 0.0, 0.0], atol=1e-6)


def test_selectivity_shifts_units_that_go_negative(labels: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    tanh_like = np.tanh(rng.standard_normal((400, 5)))
    shifted = tanh_like - tanh_like.min(axis=0)
    np.testing.assert_allclose(
        metrics.selectivity_index(tanh_like, labels),
        _morcos_reference(shifted, labels),
        rtol=1e-10,
    )
    assert np.all(metrics.selectivity_index(tanh_like, labels) >= 0)


def test_class_selectivity_summarises_the_distribution(labels: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    acts = np.maximum(0.0, rng.standard_normal((400, 20)))
    si = metrics.selectivity_index(acts, labels)
    out = metrics.class_selectivity(acts, labels)
    assert set(out) == {"mean", "median", "std", "max"}
    assert out["mean"] == pytest.approx(si.mean())
    assert out["median"] == pytest.approx(np.median(si))
    assert out["max"] == pytest.approx(si.max())
    assert metrics.get_metric("class_selectivity").direction is None


def test_unit_label_information(labels: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    acts = np.c_[labels.astype(float), rng.standard_normal((400, 3))]
    info = metrics.label_information_per_unit(acts, labels)
    assert info[0] == pytest.approx(1.0)
    assert np.all(info[1:] < 0.1)
    # the same plug-in estimate as scikit-learn's, on the 20-bin discretisation
    binned = np.digitize(acts[:, 1], np.histogram(acts[:, 1], 20)[1][:-1])
    expected = mutual_info_score(labels, binned) / mutual_info_score(labels, labels)
    assert info[1] == pytest.approx(expected, rel=1e-10)
    out = metrics.unit_label_information(acts, labels)
    assert out == {"mean": pytest.approx(info.mean()), "max": pytest.approx(1.0)}


def test_linear_probe_reads_separable_classes(labels: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    centres = 4.0 * rng.standard_normal((4, 8))
    acts = centres[labels] + 0.3 * rng.standard_normal((400, 8))
    assert metrics.linear_probe_accuracy(acts, labels) == 1.0
    noise = rng.standard_normal((400, 8))
    assert metrics.linear_probe_accuracy(noise, labels) < 0.45  # chance is about 0.25


def test_linear_probe_drops_dead_units(labels: np.ndarray) -> None:
    rng = np.random.default_rng(6)
    acts = np.c_[np.eye(4)[labels] + 0.1 * rng.standard_normal((400, 4)), np.zeros((400, 3))]
    assert metrics.linear_probe_accuracy(acts, labels) == 1.0
    # nothing left: the majority class of the training rows
    majority = np.bincount(labels[:360]).argmax()
    assert metrics.linear_probe_accuracy(np.zeros((400, 2)), labels) == pytest.approx(
        np.mean(labels[360:] == majority)
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((400, 2), dtype=int), r"shape \(n_samples,\)"),
        (np.zeros(399, dtype=int), "one entry per sample"),
        (np.zeros(400, dtype=int), "single class"),
        (np.full(400, 0.5), "integer"),
    ],
)
def test_bad_labels_are_rejected(bad: np.ndarray, message: str) -> None:
    acts = np.random.default_rng(0).standard_normal((400, 3))
    for fn in (
        metrics.class_selectivity,
        metrics.unit_label_information,
        metrics.linear_probe_accuracy,
    ):
        with pytest.raises(ValueError, match=message):
            fn(acts, bad)


def test_probe_needs_two_classes_in_the_training_rows() -> None:
    acts = np.random.default_rng(0).standard_normal((20, 3))
    labels = np.r_[np.zeros(18, dtype=int), np.ones(2, dtype=int)]
    with pytest.raises(ValueError, match="training rows"):
        metrics.linear_probe_accuracy(acts, labels)
    with pytest.raises(ValueError, match="C > 0"):
        metrics.linear_probe_accuracy(acts, np.arange(20) % 2, C=0.0)
