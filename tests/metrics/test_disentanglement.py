"""MIG, DCI, SAP, modularity: agreement with disentanglement_lib, and analytic anchors.

Two independent checks of agreement with disentanglement_lib:

1. ``_Reference`` below re-derives each metric in disentanglement_lib's own terms (arrays
   transposed to ``(n_codes, n_points)``, ``np.histogram`` + ``np.digitize`` binning,
   ``sklearn.metrics.mutual_info_score``, ``scipy.stats.entropy``, its train/test split), written
   from the published definitions without importing codenas; codenas must match it to 1e-9,
   model-based metrics included, since both fit the same seeded scikit-learn estimators.
2. ``DLIB_VALUES`` are numbers printed by disentanglement_lib itself (commit 86a644d of
   google-research/disentanglement_lib, run once in a scratch directory outside this repository
   with its ``gin``/``absl`` imports stubbed, scikit-learn 1.9.1, numpy 2.4.6) on the arrays of
   ``_factor_data()``: ``compute_mig_on_fixed_data``, ``compute_sap_on_fixed_data`` (with
   ``train_percentage=0.9``), ``modularity`` + ``explicitness_per_factor`` on the 0.9 split, and
   ``compute_dci_on_fixed_data`` with its ``GradientBoostingClassifier()`` given
   ``random_state=0``. The deterministic ones must agree to 1e-6. For model-based values the
   tolerance allows other scikit-learn versions: explicitness 1e-3 (a converged convex fit),
   DCI 0.02. Unseeded, disentanglement_lib's own DCI moves by about 0.01 between runs (tree
   tie-breaking), which is why codenas seeds its trees.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

from codenas import metrics


def _factor_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors (3, 4 and 2 levels), a noisy identity code plus 2 noise units, a ReLU mixture."""
    rng = np.random.default_rng(seed)
    factors = np.stack(
        [rng.integers(0, 3, n), rng.integers(0, 4, n), rng.integers(0, 2, n)], axis=1
    )
    codes = np.c_[factors + 0.4 * rng.standard_normal((n, 3)), rng.standard_normal((n, 2))]
    mixed = np.maximum(
        0.0, (factors - 1.0) @ rng.standard_normal((3, 6)) + 0.5 * rng.standard_normal((n, 6))
    )
    return factors, codes, mixed


DLIB_VALUES = {
    "codes": {
        "mig": 0.6395837453865901,
        "sap_continuous": 0.7817718686358681,
        "sap": 0.17777777777777778,
        "modularity": 0.869511607558973,
        "explicitness": 0.9365477300614264,
        "disentanglement": 0.7585743471495988,
        "completeness": 0.7026170104166165,
        "informativeness": 0.7999999999999999,
    },
    "mixed": {
        "mig": 0.024597925254289322,
        "sap_continuous": 0.05705101814286471,
        "sap": 0.022222222222222216,
        "modularity": 0.8130869646036983,
        "explicitness": 0.919777975556232,
        "disentanglement": 0.11757871388311393,
        "completeness": 0.1335601935137725,
        "informativeness": 0.7666666666666667,
    },
}


class _Reference:
    """disentanglement_lib's definitions, in its orientation: codes (n_codes, n_points)."""

    def __init__(self, codes: np.ndarray, factors: np.ndarray) -> None:
        self.mus, self.ys = codes.T, factors.T
        k = math.ceil(0.9 * self.mus.shape[1])
        self.mus_tr, self.mus_te = self.mus[:, :k], self.mus[:, k:]
        self.ys_tr, self.ys_te = self.ys[:, :k], self.ys[:, k:]

    @staticmethod
    def discretize(mus: np.ndarray) -> np.ndarray:
        out = np.zeros_like(mus)
        for i in range(mus.shape[0]):
            out[i] = np.digitize(mus[i], np.histogram(mus[i], 20)[1][:-1])
        return out

    @staticmethod
    def mutual_info(mus: np.ndarray, ys: np.ndarray) -> np.ndarray:
        return np.array(
            [[mutual_info_score(y, mu) for y in ys] for mu in mus]
        )  # [num_codes, num_factors]

    def mig(self) -> float:
        m = self.mutual_info(self.discretize(self.mus), self.ys)
        h = np.array([mutual_info_score(y, y) for y in self.ys])
        top = np.sort(m, axis=0)[::-1]
        return float(np.mean((top[0] - top[1]) / h))

    def sap(self, continuous: bool) -> float:
        score = np.zeros((self.mus.shape[0], self.ys.shape[0]))
        for i, mu in enumerate(self.mus_tr):
            for j, y in enumerate(self.ys_tr):
                if continuous:
                    c = np.cov(mu, y, ddof=1)
                    score[i, j] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 else 0.0
                else:
                    svm = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
                    svm.fit(mu[:, None], y)
                    score[i, j] = np.mean(svm.predict(self.mus_te[i][:, None]) == self.ys_te[j])
        top = np.sort(score, axis=0)
        return float(np.mean(top[-1] - top[-2]))

    def dci(self) -> dict[str, float]:
        imp = np.zeros((self.mus.shape[0], self.ys.shape[0]))
        acc = []
        for j in range(self.ys.shape[0]):
            gbt = GradientBoostingClassifier(random_state=0).fit(self.mus_tr.T, self.ys_tr[j])
            imp[:, j] = np.abs(gbt.feature_importances_)
            acc.append(np.mean(gbt.predict(self.mus_te.T) == self.ys_te[j]))
        per_code = 1 - scipy.stats.entropy(imp.T + 1e-11, base=imp.shape[1])
        per_factor = 1 - scipy.stats.entropy(imp + 1e-11, base=imp.shape[0])
        return {
            "disentanglement": float(np.sum(per_code * imp.sum(axis=1) / imp.sum())),
            "completeness": float(np.sum(per_factor * imp.sum(axis=0) / imp.sum())),
            "informativeness": float(np.mean(acc)),
        }

    def modularity(self) -> dict[str, float]:
        sq = self.mutual_info(self.discretize(self.mus_tr), self.ys_tr) ** 2
        top = sq.max(axis=1)
        score = 1 - (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1))
        score[top == 0] = 0
        mean, std = self.mus_tr.mean(axis=1), self.mus_tr.std(axis=1)
        tr = (self.mus_tr.T - mean) / std
        te = (self.mus_te.T - mean) / std
        aucs = []
        for j in range(self.ys.shape[0]):
            clf = LogisticRegression().fit(tr, self.ys_tr[j])
            onehot = MultiLabelBinarizer().fit_transform(self.ys_te[j][:, None])
            aucs.append(roc_auc_score(onehot, clf.predict_proba(te)))
        return {"modularity": float(np.mean(score)), "explicitness": float(np.mean(aucs))}


@pytest.mark.parametrize("which", ["codes", "mixed"])
def test_agrees_with_disentanglement_lib(which: str) -> None:
    factors, codes, mixed = _factor_data()
    acts = {"codes": codes, "mixed": mixed}[which]
    ref = _Reference(acts, factors)
    dlib = DLIB_VALUES[which]
    got = {
        "mig": metrics.mig(acts, factors),
        "sap": metrics.sap(acts, factors),
        "sap_continuous": metrics.sap_continuous(acts, factors),
        **metrics.dci(acts, factors),
        **metrics.modularity(acts, factors),
    }
    expected = {
        "mig": ref.mig(),
        "sap": ref.sap(continuous=False),
        "sap_continuous": ref.sap(continuous=True),
        **ref.dci(),
        **ref.modularity(),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    model_tolerance = {"explicitness": 1e-3, "disentanglement": 0.02, "completeness": 0.02}
    model_tolerance["informativeness"] = 0.02
    for key, value in dlib.items():
        assert got[key] == pytest.approx(value, abs=model_tolerance.get(key, 1e-6)), key


def test_mutual_information_matrix_matches_sklearn() -> None:
    factors, codes, _ = _factor_data()
    ref = _Reference(codes, factors)
    expected = ref.mutual_info(ref.discretize(ref.mus), ref.ys)
    np.testing.assert_allclose(
        metrics.mutual_information_matrix(codes, factors), expected, atol=1e-12
    )


# --- anchors -------------------------------------------------------------------------------


def _levels(n: int, seed: int, levels: tuple[int, ...] = (4, 5, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, k, n) for k in levels], axis=1)


def test_identity_code_scores_near_one() -> None:
    factors = _levels(600, 0)
    codes = factors.astype(float)
    assert metrics.mig(codes, factors) > 0.95
    assert metrics.sap_continuous(codes, factors) > 0.95
    dci = metrics.dci(codes, factors)
    assert dci["disentanglement"] > 0.95
    assert dci["completeness"] > 0.95
    assert dci["informativeness"] == pytest.approx(1.0)
    mod = metrics.modularity(codes, factors)
    assert mod["modularity"] > 0.95
    assert mod["explicitness"] > 0.95


def test_noise_scores_near_zero() -> None:
    factors = _levels(600, 1)
    noise = np.random.default_rng(1).standard_normal((600, 6))
    assert metrics.mig(noise, factors) < 0.05
    assert metrics.sap_continuous(noise, factors) < 0.05
    assert metrics.sap(noise, factors) < 0.1
    dci = metrics.dci(noise, factors)
    assert dci["disentanglement"] < 0.15
    assert dci["completeness"] < 0.15
    assert metrics.modularity(noise, factors)["explicitness"] == pytest.approx(0.5, abs=0.1)


def test_rotated_factors_score_low() -> None:
    factors = _levels(1000, 2, levels=(4, 4, 4, 4))
    z = (factors - factors.mean(axis=0)) / factors.std(axis=0)
    # A rotation that mixes every factor equally into every code (a scaled Hadamard matrix).
    # A random rotation in 4-D usually leaves one dominant code per factor (MIG about 0.3-0.4).
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    rotated = z @ hadamard
    assert metrics.mig(z, factors) > 0.95
    assert metrics.mig(rotated, factors) < 0.05
    assert metrics.sap_continuous(rotated, factors) < 0.05
    dci = metrics.dci(rotated, factors)
    assert dci["disentanglement"] < 0.05
    assert dci["informativeness"] > 0.9  # the information is all there, only mixed


def test_duplicated_units_close_the_mig_gap_but_stay_modular() -> None:
    factors = _levels(600, 3)
    codes = factors.astype(float)
    doubled = np.c_[codes, codes]
    assert metrics.mig(doubled, factors) < 0.05  # the top two units tie
    assert metrics.sap_continuous(doubled, factors) < 0.05
    # Ridgeway & Mozer: a copy of a modular unit is still modular (disentanglement_lib's
    # test_duplicated_latent_space expects 0.9-1.0); completeness, not modularity, drops.
    assert metrics.modularity(doubled, factors)["modularity"] > 0.95
    assert metrics.dci(doubled, factors)["completeness"] < 0.8


def test_a_unit_mixing_two_factors_lowers_modularity() -> None:
    factors = _levels(600, 4, levels=(4, 4))
    codes = factors.astype(float)
    mixing = np.c_[codes, 4 * factors[:, 0] + factors[:, 1]]
    assert (
        metrics.modularity(mixing, factors)["modularity"]
        < metrics.modularity(codes, factors)["modularity"] - 0.2
    )


def test_modularity_is_high_on_pure_noise() -> None:
    # the known trap: uneven spurious information makes noise look modular
    factors = _levels(2000, 5)
    noise = np.random.default_rng(5).standard_normal((2000, 10))
    assert metrics.modularity(noise, factors)["modularity"] > 0.5


def test_discrete_sap_caps_well_below_one_even_for_a_perfect_code() -> None:
    # the second-best unit predicts at chance, so a binary factor caps at 1 - 1/2
    binary = _levels(1000, 6, levels=(2, 2, 2))
    # (less the best chance-level accuracy among the other units on 100 test rows)
    assert 0.3 < metrics.sap(binary.astype(float), binary) < 0.6
    # many-level factors (dSprites-like) cap lower still; the continuous variant does not
    factors = _levels(1000, 6, levels=(3, 6, 10, 32, 32))
    codes = factors.astype(float)
    assert metrics.sap(codes, factors) < 0.4
    assert metrics.sap_continuous(codes, factors) > 0.95


def test_dci_forest_is_the_faster_variant() -> None:
    factors = _levels(400, 7)
    codes = np.c_[factors + 0.1 * np.random.default_rng(7).standard_normal((400, 3))]
    forest = metrics.dci_forest(codes, factors)
    assert forest == metrics.dci(codes, factors, importance="forest")
    assert forest["disentanglement"] > 0.8
    with pytest.raises(ValueError, match="importance must be"):
        metrics.dci(codes, factors, importance="lasso")  # type: ignore[arg-type]


def test_explicitness_drops_dead_units_and_reports_them() -> None:
    factors, codes, _ = _factor_data()
    with_dead = np.c_[codes, np.zeros((len(codes), 2))]
    out = metrics.modularity(with_dead, factors)
    assert out["dropped_units"] == 2.0
    assert out["explicitness"] == pytest.approx(metrics.modularity(codes, factors)["explicitness"])
    assert np.isfinite(out["modularity"])


def test_explicitness_legacy_solver_is_close_to_lbfgs() -> None:
    factors, codes, _ = _factor_data()
    lbfgs = metrics.modularity(codes, factors)["explicitness"]
    legacy = metrics.modularity(codes, factors, solver="liblinear-ovr")["explicitness"]
    assert legacy == pytest.approx(lbfgs, abs=0.035)


# --- the pure cores, on disentanglement_lib's own analytic cases ----------------------------


def test_dci_from_importance_analytic_cases() -> None:
    diag = np.diag(5.0 * np.ones(5))
    assert metrics.dci_from_importance(diag) == pytest.approx((1.0, 1.0))
    d, c = metrics.dci_from_importance(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    assert (d, c) == pytest.approx((1.0, 1.0))
    d, c = metrics.dci_from_importance(np.zeros((10, 10)))
    assert (d, c) == pytest.approx((0.0, 0.0), abs=1e-7)
    d, c = metrics.dci_from_importance(np.vstack([diag, diag]))
    assert (d, c) == pytest.approx((1.0, 1.0 - np.log(2) / np.log(10)))
    d, c = metrics.dci_from_importance(np.hstack([diag, diag]))
    assert (d, c) == pytest.approx((1.0 - np.log(2) / np.log(10), 1.0))
    # one factor / one unit: nothing can be shared
    assert metrics.dci_from_importance(np.ones((4, 1)))[0] == 1.0
    assert metrics.dci_from_importance(np.ones((1, 4)))[1] == 1.0


def test_modularity_from_mi_analytic_cases() -> None:
    diag = np.diag(5.0 * np.ones(5))
    assert metrics.modularity_from_mi(diag) == pytest.approx(1.0)
    assert metrics.modularity_from_mi(
        np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    ) == pytest.approx(2 / 3)
    assert metrics.modularity_from_mi(np.zeros((10, 10))) == 0.0
    assert metrics.modularity_from_mi(np.vstack([diag, diag])) == pytest.approx(1.0)
    assert metrics.modularity_from_mi(np.hstack([diag, diag])) == pytest.approx(1 - 1 / 9)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factors", "message"),
    [
        (np.zeros(30, dtype=int), r"shape \(n_samples, n_factors\).*reshape"),
        (np.zeros((29, 1), dtype=int), "one row per sample"),
        (np.zeros((30, 1), dtype=int), "single value"),
        (np.full((30, 1), 0.5), "integer"),
        (np.array([[np.nan]] * 30), "NaN"),
    ],
)
def test_bad_factors_are_rejected(factors: np.ndarray, message: str) -> None:
    codes = np.random.default_rng(0).standard_normal((30, 3))
    for fn in (metrics.mig, metrics.dci, metrics.sap, metrics.modularity):
        with pytest.raises(ValueError, match=message):
            fn(codes, factors)


def test_split_metrics_need_both_values_in_the_training_rows() -> None:
    codes = np.random.default_rng(0).standard_normal((20, 3))
    factors = np.r_[np.zeros(18, dtype=int), np.ones(2, dtype=int)][:, None]
    for fn in (metrics.dci, metrics.sap, metrics.modularity):
        with pytest.raises(ValueError, match="training rows"):
            fn(codes, factors)
    with pytest.raises(ValueError, match="at least 10 samples"):
        metrics.dci(codes[:9], factors[:9])


def test_factors_are_relabelled_not_rescaled() -> None:
    factors, codes, _ = _factor_data()
    shifted = factors * 10 + 3  # same partition of the samples
    assert metrics.mig(codes, shifted) == metrics.mig(codes, factors)
    assert metrics.dci(codes, shifted) == metrics.dci(codes, factors)


def test_discrete_entropy_anchors() -> None:
    """One entropy helper for MIG, label information and the report: nats, per column."""
    from codenas.metrics import discrete_entropy

    assert discrete_entropy(np.arange(12) % 4) == pytest.approx(np.log(4))  # uniform over 4
    assert discrete_entropy(np.zeros(7, dtype=int)) == 0.0
    skewed = np.array([0, 0, 0, 1])
    assert discrete_entropy(skewed) == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    both = discrete_entropy(np.stack([np.arange(12) % 4, np.arange(12) % 2 + 5], axis=1))
    np.testing.assert_allclose(both, [np.log(4), np.log(2)])  # any integer codes
    with pytest.raises(ValueError, match="n_variables"):
        discrete_entropy(np.zeros((2, 2, 2)))
