"""Disentanglement against known generative factors: MIG, DCI, SAP, modularity and explicitness.

Every function takes ``codes``, one layer's activations of shape ``(n_samples, n_units)``, and
``factors``, the ground-truth generative factors of the same samples, an integer array of shape
``(n_samples, n_factors)`` (``sap_continuous`` also takes real-valued factors). disentanglement_lib
stores both transposed; codenas keeps scikit-learn's orientation throughout.

Conventions of disentanglement_lib (Locatello et al. 2019) that these follow, so that numbers
agree with it on the same arrays:

- Each code dimension is discretised into 20 equal-width bins over its own min..max
  (``np.histogram`` edges, ``np.digitize``); mutual information is the plug-in estimate in nats
  (``sklearn.metrics.mutual_info_score``), normalised by the factor's entropy where the metric
  normalises.
- The model-based metrics (DCI, SAP, explicitness) fit on the first ``ceil(0.9 n)`` rows and
  score on the rest (``split_train_test`` with ``train_percentage=0.9`` in its
  ``*_on_fixed_data`` functions); modularity's mutual information and the continuous SAP use
  those same training rows; MIG uses all rows. Pass rows in random order: the split is
  positional, so sorted rows (e.g. grouped by factor) give a biased split.
- DCI importances come from one default ``GradientBoostingClassifier`` per factor, the
  informativeness is its test accuracy (not an error); SAP on discrete factors uses
  ``LinearSVC(C=0.01, class_weight="balanced")`` on each single code dimension.

Where they differ (see each function): the estimators are seeded (``random_state=0``) so results
are deterministic; explicitness drops constant units instead of dividing by a zero standard
deviation (disentanglement_lib returns NaN there) and uses the converged modern
``LogisticRegression`` (lbfgs, multinomial) unless asked for the 2019 liblinear one-vs-rest; edge
cases that are NaN or raise there (one factor, one unit, a class missing from the test rows) get
the documented values below.

One metric family in one file (about 500 lines), as disentanglement_lib keeps it: MIG, DCI,
SAP and modularity share the factor handling and the train/test split conventions above.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from codenas.metrics._common import (
    discrete_entropy,
    factors_are_classes,
    histogram_discretize,
    zscore_train_test,
)
from codenas.metrics._common import mutual_information_matrix as _mi_matrix
from codenas.metrics._validation import as_activations, as_factors, check_split, n_train_rows
from codenas.metrics.registry import register_metric

# Fewest rows for the split metrics: ceil(0.9 n) < n needs n >= 10 (one test row).
MIN_SPLIT_SAMPLES = 10
# disentanglement_lib adds this to every importance before normalising (dci.py).
_DCI_EPS = 1e-11

Importance = Literal["gbt", "forest"]


def _codes_and_factors(
    codes: ArrayLike, factors: ArrayLike, metric: str, min_samples: int = 2
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    x = as_activations(codes, name="codes", min_samples=min_samples, metric=metric)
    y = as_factors(factors, x.shape[0], metric=metric)
    return x, y


def mutual_information_matrix(codes: ArrayLike, factors: ArrayLike) -> NDArray[np.float64]:
    """Mutual information in nats between each code dimension and each factor.

    ``M[u, j] = I(bin20(code_u); factor_j)``, each code discretised into 20 equal-width bins over
    its own min..max, as disentanglement_lib's ``discrete_mutual_info``.

    Args:
        codes: shape ``(n_samples, n_units)``.
        factors: shape ``(n_samples, n_factors)``, integer.

    Returns:
        Shape ``(n_units, n_factors)``, values in [0, H(factor_j)].
    """
    x, y = _codes_and_factors(codes, factors, "mutual_information_matrix")
    return _mi_matrix(histogram_discretize(x), y)


@register_metric("mig", direction="maximize", needs=("factors",), aggregate="last")
def mig(codes: ArrayLike, factors: ArrayLike) -> float:
    """Mutual Information Gap (Chen et al. 2018), as disentanglement_lib's discrete MIG.

    ``MIG = mean_j (I(z_(1); v_j) - I(z_(2); v_j)) / H(v_j)``: for each factor ``v_j``, the gap
    between the two code dimensions with the most mutual information about it, normalised by
    its entropy. Codes are discretised into 20 equal-width bins; all rows are used (nothing is
    fitted). With a single code dimension the second-best information is taken as 0.

    Aggregated over layers as ``last`` (also for DCI, SAP, modularity): disentanglement is a
    property of the representation a network hands on, here the one feeding the head; ``max``
    over layers would reward depth with more chances to score (and mix layers in dict metrics).

    Args:
        codes: shape ``(n_samples, n_units)``, one layer's activations.
        factors: shape ``(n_samples, n_factors)``, integer factors; each must take two or more
            values.

    Returns:
        A float in [0, 1]; higher is better. About 1 when each factor is captured by one unit
        alone, near 0 for noise, mixed (rotated) factors, or a duplicated code (two units share
        the information, so the gap closes).
    """
    x, y = _codes_and_factors(codes, factors, "mig")
    m = _mi_matrix(histogram_discretize(x), y)
    h = discrete_entropy(y)
    top = -np.sort(-m, axis=0)
    second = top[1] if m.shape[0] > 1 else np.zeros(m.shape[1])
    return float(np.mean((top[0] - second) / h))


def _normalised_entropy(p: NDArray[np.float64], axis: int, base: int) -> NDArray[np.float64]:
    """Entropy along ``axis`` of ``p + eps`` normalised to sum 1, in log base ``base``."""
    q = p + _DCI_EPS
    q = q / q.sum(axis=axis, keepdims=True)
    return -np.sum(q * np.log(q), axis=axis) / np.log(base)


def dci_from_importance(importance: ArrayLike) -> tuple[float, float]:
    """Disentanglement and completeness of an importance matrix (Eastwood & Williams 2018).

    With ``R`` of shape ``(n_units, n_factors)`` (``R[u, j]`` the importance of unit u for
    predicting factor j) and ``P = (R + 1e-11)`` normalised along a row or a column:

    - disentanglement ``D = sum_u rho_u (1 - H_{n_factors}(P[u, :]))`` with code weights
      ``rho_u = sum_j R[u, j] / sum R`` (uniform when R is all zero);
    - completeness ``C = sum_j rho_j (1 - H_{n_units}(P[:, j]))`` with factor weights
      ``rho_j = sum_u R[u, j] / sum R``.

    ``H_K`` is entropy in log base K. With one factor D is 1.0, and with one unit C is 1.0 (log
    base 1 is undefined there; a lone factor or unit cannot be shared).

    Returns:
        ``(disentanglement, completeness)``, each in [0, 1].
    """
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 1 or r.shape[1] < 1:
        raise ValueError(f"importance must have shape (n_units, n_factors), got {r.shape}")
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError("importance must be finite and non-negative")
    d, f = r.shape
    weights = r if r.sum() > 0 else np.ones_like(r)
    if f > 1:
        per_code = 1.0 - _normalised_entropy(r, axis=1, base=f)
        disentanglement = float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))
    else:
        disentanglement = 1.0
    if d > 1:
        per_factor = 1.0 - _normalised_entropy(r, axis=0, base=d)
        completeness = float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))
    else:
        completeness = 1.0
    return disentanglement, completeness


def importance_matrix(
    x: NDArray[np.float64], y: NDArray[np.int64], n_train: int, method: str
) -> tuple[NDArray[np.float64], float]:
    """DCI's importance matrix, shape ``(n_units, n_factors)``, and the mean test accuracy.

    One tree ensemble per factor (``method``: ``"gbt"``, boosted trees as disentanglement_lib,
    or ``"forest"``, extra trees as ``dci_forest``), fitted on the first ``n_train`` rows of
    ``x`` (codes, ``(n_samples, n_units)``) and ``y`` (factors, ``(n_samples, n_factors)``) and
    scored on the rest. What :func:`dci` reads, and what the report draws.
    """
    x_train, x_test = x[:n_train], x[n_train:]
    d, f = x.shape[1], y.shape[1]
    importance = np.zeros((d, f))
    accuracy = np.zeros(f)
    for j in range(f):
        y_train, y_test = y[:n_train, j], y[n_train:, j]
        if method == "gbt":
            from sklearn.ensemble import GradientBoostingClassifier

            model = GradientBoostingClassifier(random_state=0)
        else:
            from sklearn.ensemble import ExtraTreesClassifier

            model = ExtraTreesClassifier(
                n_estimators=50, max_features=None, min_samples_leaf=5, random_state=0
            )
        with factors_are_classes():
            model.fit(x_train, y_train)
        importance[:, j] = np.abs(model.feature_importances_)
        accuracy[j] = np.mean(model.predict(x_test) == y_test)
    return importance, float(np.mean(accuracy))


@register_metric(
    "dci",
    direction="maximize",
    needs=("factors",),
    aggregate="last",
    keys=("disentanglement", "completeness", "informativeness"),
)
def dci(
    codes: ArrayLike, factors: ArrayLike, *, importance: Importance = "gbt"
) -> dict[str, float]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    One classifier per factor predicts it from all code dimensions, fitted on the first
    ``ceil(0.9 n)`` rows; its feature importances fill ``R[u, j]``, from which
    :func:`dci_from_importance` gives disentanglement (each unit captures at most one factor)
    and completeness (each factor is captured by one unit). Informativeness is the mean test
    accuracy over factors on the remaining rows (disentanglement_lib's
    ``informativeness_test``; an accuracy, so higher is better, unlike the paper's error).

    ``importance`` picks the model:

    - ``"gbt"`` (default, disentanglement_lib): ``GradientBoostingClassifier()`` with its
      defaults (100 stages of depth-3 trees), ``random_state=0``. Slow on wide layers: about
      n_classes x 100 trees per factor, each scanning every unit.
    - ``"forest"``: ``ExtraTreesClassifier(n_estimators=50, max_features=None,
      min_samples_leaf=5, random_state=0)``, impurity importances (Eastwood & Williams used a
      random forest). Every split weighs every unit, as boosting does, but at one random
      threshold each instead of a sorted scan, so it is 20-25x faster: 2,048 x 64 codes and a
      5-class factor take about 0.7 s against 15 s (2,048 x 1,024: 10 s against minutes).
      Values differ from ``"gbt"``. Registered on its own as ``dci_forest``, so search
      configs can name it. Two other fast options were tried and left out because they fail
      the anchors: a default random forest (sqrt(n_units) units per split) scatters
      importance onto irrelevant units and scores an identity code about 0.55; LASSO
      importances are so sparse that pure noise scores about 0.55.

    Args:
        codes: shape ``(n_samples, n_units)``, one layer's activations, rows in random order;
            at least 10 samples.
        factors: shape ``(n_samples, n_factors)``, integer; each factor needs two or more
            values in the training rows.
        importance: ``"gbt"`` or ``"forest"``.

    Returns:
        ``{"disentanglement", "completeness", "informativeness"}``, each in [0, 1], higher is
        better. Identity-like codes score near 1 on all three; noise scores near 0 on the
        first two and chance accuracy on the third.
    """
    if importance not in ("gbt", "forest"):
        raise ValueError(f"dci: importance must be 'gbt' or 'forest', got {importance!r}")
    return _dci(codes, factors, importance, "dci")


def _dci(codes: ArrayLike, factors: ArrayLike, importance: str, metric: str) -> dict[str, float]:
    x, y = _codes_and_factors(codes, factors, metric, MIN_SPLIT_SAMPLES)
    n_train = check_split(y, name="factors", metric=metric)
    r, accuracy = importance_matrix(x, y, n_train, importance)
    disentanglement, completeness = dci_from_importance(r)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": accuracy,
    }


@register_metric(
    "dci_forest",
    direction="maximize",
    needs=("factors",),
    aggregate="last",
    keys=("disentanglement", "completeness", "informativeness"),
)
def dci_forest(codes: ArrayLike, factors: ArrayLike) -> dict[str, float]:
    """DCI with extra-trees importances: the faster variant of dci, nameable in search configs.

    Exactly ``dci(codes, factors, importance="forest")``: one extremely randomised forest
    (``ExtraTreesClassifier(n_estimators=50, max_features=None, min_samples_leaf=5)``) per
    factor instead of gradient boosting, 20-25x faster. Values are not interchangeable with
    the gradient-boosted ``dci``, which follows disentanglement_lib.

    Args:
        codes: shape ``(n_samples, n_units)``, one layer's activations, rows in random order;
            at least 10 samples.
        factors: shape ``(n_samples, n_factors)``, integer.

    Returns:
        ``{"disentanglement", "completeness", "informativeness"}``, each in [0, 1], higher is
        better.
    """
    return _dci(codes, factors, "forest", "dci_forest")


def _top_two_gap(score: NDArray[np.float64]) -> float:
    """``mean_j (best - second best)`` over the units of a ``(n_units, n_factors)`` matrix."""
    top = -np.sort(-score, axis=0)
    second = top[1] if score.shape[0] > 1 else np.zeros(score.shape[1])
    return float(np.mean(top[0] - second))


@register_metric("sap", direction="maximize", needs=("factors",), aggregate="last")
def sap(codes: ArrayLike, factors: ArrayLike) -> float:
    """Separated Attribute Predictability on discrete factors (Kumar et al. 2018).

    Kumar, Sattigeri & Balakrishnan (2018). For every unit u and factor j,
    ``LinearSVC(C=0.01, class_weight="balanced")`` (one-vs-rest, ``random_state=0``) is fitted
    on that single unit over the first ``ceil(0.9 n)`` rows, and ``S[u, j]`` is its accuracy on
    the remaining rows; ``SAP = mean_j (S_(1)j - S_(2)j)``, the gap between the two most
    predictive units. With one unit the second score is 0.

    Known ceiling: even a perfect code scores far below 1. The second-best unit still predicts
    at chance (about 1/K for a balanced K-level factor), so the gap is at most 1 - 1/K (0.5 for
    a binary factor), and one linear threshold on one unit separates only the extreme levels of
    a 3+-level factor, while ``C=0.01`` with balanced weights shrinks the rest: a perfect code
    of dSprites-like factors (3, 6, 40, 32, 32 levels) scores about 0.3. For graded factors use
    :func:`sap_continuous`. Cost: n_units x n_factors small fits.

    Args:
        codes: shape ``(n_samples, n_units)``, one layer's activations, rows in random order;
            at least 10 samples.
        factors: shape ``(n_samples, n_factors)``, integer; each factor needs two or more
            values in the training rows.

    Returns:
        A float in [0, 1]; higher is better.
    """
    from sklearn.svm import LinearSVC

    x, y = _codes_and_factors(codes, factors, "sap", MIN_SPLIT_SAMPLES)
    n_train = check_split(y, name="factors", metric="sap")
    d, f = x.shape[1], y.shape[1]
    score = np.zeros((d, f))
    for j in range(f):
        y_train, y_test = y[:n_train, j], y[n_train:, j]
        for u in range(d):
            clf = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
            with factors_are_classes():
                clf.fit(x[:n_train, u : u + 1], y_train)
            score[u, j] = np.mean(clf.predict(x[n_train:, u : u + 1]) == y_test)
    return _top_two_gap(score)


@register_metric("sap_continuous", direction="maximize", needs=("factors",), aggregate="last")
def sap_continuous(codes: ArrayLike, factors: ArrayLike) -> float:
    """SAP with factors taken as continuous: gaps in squared correlation (Kumar et al. 2018).

    ``S[u, j] = cov(z_u, v_j)^2 / (var(z_u) var(v_j))``, the R^2 of a linear fit of factor j on
    unit u (0 for a unit with variance <= 1e-12, as disentanglement_lib), and
    ``SAP = mean_j (S_(1)j - S_(2)j)``. Computed on the first ``ceil(0.9 n)`` rows, as
    disentanglement_lib's ``compute_sap_on_fixed_data`` does (it splits before choosing the
    variant, and the continuous one reads only the training part). The factors' values matter
    here, not only their order: levels 0, 1, 10 are not levels 0, 1, 2.

    Args:
        codes: shape ``(n_samples, n_units)``, one layer's activations; at least 10 samples.
        factors: shape ``(n_samples, n_factors)``, numeric (integer or real); each factor must
            vary over the training rows.

    Returns:
        A float in [0, 1]; about 1 when each factor is linearly encoded by one unit alone.
        Higher is better.
    """
    x = as_activations(codes, name="codes", metric="sap_continuous", min_samples=MIN_SPLIT_SAMPLES)
    v = as_activations(
        factors, name="factors", metric="sap_continuous", min_samples=1, columns="n_factors"
    )
    if v.shape[0] != x.shape[0]:
        raise ValueError(
            f"sap_continuous: factors must have one row per sample: codes have {x.shape[0]} "
            f"rows, factors have {v.shape[0]}"
        )
    n_train = n_train_rows(x.shape[0])
    xc = x[:n_train] - x[:n_train].mean(axis=0)
    vc = v[:n_train] - v[:n_train].mean(axis=0)
    var_x = np.einsum("ij,ij->j", xc, xc)
    var_v = np.einsum("ij,ij->j", vc, vc)
    flat = np.flatnonzero(var_v <= 0)
    if flat.size:
        raise ValueError(
            f"sap_continuous: factors column {int(flat[0])} is constant on the training rows "
            f"(the first {n_train} of {x.shape[0]}); a constant factor cannot be scored"
        )
    cov = xc.T @ vc
    score = np.zeros_like(cov)
    # disentanglement_lib's cut-off is on the ddof=1 variance.
    live = var_x / (n_train - 1) > 1e-12
    score[live] = cov[live] ** 2 / (var_x[live, None] * var_v[None, :])
    return _top_two_gap(np.clip(score, 0.0, 1.0))


def modularity_from_mi(mutual_information: ArrayLike) -> float:
    """Modularity of a mutual-information matrix (Ridgeway & Mozer 2018).

    With ``M`` of shape ``(n_units, n_factors)``, for each unit u with ``m_u = max_j M[u, j]``:
    ``delta_u = sum_{j != argmax} M[u, j]^2 / (m_u^2 (n_factors - 1))`` and the unit's score is
    ``1 - delta_u`` (0 for a unit with no information); modularity is their mean over units.
    With one factor every informative unit scores 1.

    Returns:
        A float in [0, 1].
    """
    m = np.asarray(mutual_information, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"mutual_information must have shape (n_units, n_factors), got {m.shape}")
    sq = m * m
    top = sq.max(axis=1)
    informative = top > 0
    per_unit = np.zeros(m.shape[0])
    if m.shape[1] > 1:
        rest = sq.sum(axis=1) - top
        per_unit[informative] = 1.0 - rest[informative] / (top[informative] * (m.shape[1] - 1))
    else:
        per_unit[informative] = 1.0
    return float(np.mean(per_unit))


def _explicitness(
    x: NDArray[np.float64], y: NDArray[np.int64], n_train: int, solver: str
) -> tuple[float, int]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.multiclass import OneVsRestClassifier

    z_train, z_test, kept = zscore_train_test(x, n_train)
    dropped = int(np.count_nonzero(~kept))
    scores = []
    for j in range(y.shape[1]):
        y_train, y_test = y[:n_train, j], y[n_train:, j]
        if not kept.any():  # no unit varies: a constant score, whose AUC is 0.5
            scores.append(0.5)
            continue
        if solver == "lbfgs":
            model = LogisticRegression(max_iter=1000)
        else:
            model = OneVsRestClassifier(LogisticRegression(solver="liblinear"))
        with factors_are_classes():
            clf = model.fit(z_train, y_train)
        proba = clf.predict_proba(z_test)
        aucs = []
        for k, cls in enumerate(clf.classes_):
            truth = y_test == cls
            if truth.any() and not truth.all():  # AUC needs both outcomes among test rows
                aucs.append(roc_auc_score(truth, proba[:, k]))
        if aucs:
            scores.append(float(np.mean(aucs)))
    if not scores:
        raise ValueError(
            "modularity: explicitness needs some factor with two or more values in the test "
            f"rows (the last {len(x) - n_train} of {len(x)}); pass more samples"
        )
    return float(np.mean(scores)), dropped


@register_metric(
    "modularity",
    direction="maximize",
    needs=("factors",),
    aggregate="last",
    keys=("modularity", "explicitness", "dropped_units"),
)
def modularity(
    codes: ArrayLike,
    factors: ArrayLike,
    *,
    solver: Literal["lbfgs", "liblinear-ovr"] = "lbfgs",
) -> dict[str, float]:
    """Modularity and explicitness (Ridgeway & Mozer 2018), as in disentanglement_lib.

    Modularity: :func:`modularity_from_mi` of the 20-bin mutual information between units and
    factors on the first ``ceil(0.9 n)`` rows; a unit is modular when it carries information
    about one factor only. Duplicated units stay modular (each copy still encodes one factor);
    a unit mixing two factors lowers it. Beware: it is about 0.65 on pure noise, because
    noise gives each unit a small, uneven information about every factor; never read it
    without explicitness or MIG.

    Explicitness: per factor, a logistic regression on all units, z-scored with the training
    rows' mean and std, fitted on the first ``ceil(0.9 n)`` rows; its one-vs-rest ROC AUC on
    the remaining rows is averaged over the factor's classes (those with both outcomes among
    the test rows), then over factors. Units constant on the training rows (dead units) would
    divide by a zero std, so they are dropped first and counted in ``dropped_units``.
    ``solver="lbfgs"`` (default) is scikit-learn's current ``LogisticRegression(max_iter=1000)``
    (lbfgs, multinomial, C=1); ``"liblinear-ovr"`` reproduces disentanglement_lib's 2019 runs
    (liblinear, one-vs-rest). They differ by up to about 0.035.

    Args:
        codes: shape ``(n_samples, n_units)``, one layer's activations, rows in random order;
            at least 10 samples.
        factors: shape ``(n_samples, n_factors)``, integer; each factor needs two or more
            values in the training rows.
        solver: ``"lbfgs"`` or ``"liblinear-ovr"``.

    Returns:
        ``{"modularity": [0, 1], "explicitness": [0, 1] (0.5 is chance), "dropped_units":
        count}``; higher modularity and explicitness are better. ``dropped_units`` is a report,
        not an objective.
    """
    if solver not in ("lbfgs", "liblinear-ovr"):
        raise ValueError(f"modularity: solver must be 'lbfgs' or 'liblinear-ovr', got {solver!r}")
    x, y = _codes_and_factors(codes, factors, "modularity", MIN_SPLIT_SAMPLES)
    n_train = check_split(y, name="factors", metric="modularity")
    mi = _mi_matrix(histogram_discretize(x[:n_train]), y[:n_train])
    explicitness, dropped = _explicitness(x, y, n_train, solver)
    return {
        "modularity": modularity_from_mi(mi),
        "explicitness": explicitness,
        "dropped_units": float(dropped),
    }


__all__ = [
    "dci",
    "dci_forest",
    "dci_from_importance",
    "mig",
    "modularity",
    "modularity_from_mi",
    "mutual_information_matrix",
    "sap",
    "sap_continuous",
]
