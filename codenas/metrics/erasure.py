"""LEACE: the least-squares affine concept eraser, in closed form (Belrose et al. 2023).

Given a representation ``x`` (``(n_samples, n_units)``) and a concept ``z`` (one-hot classes,
``(n_samples, n_classes)``), LEACE is the affine map ``r(x) = P x + c`` that makes the
cross-covariance of ``r(x)`` and ``z`` zero, so that no linear classifier predicts ``z`` from
``r(x)`` better than a constant (their Theorem 3.1, for any convex loss), while moving ``x`` as
little as possible in the least-squares sense among all such maps (their Theorem 4.3)::

    W = Sigma_xx^(-1/2)                  (pseudo-inverse square root; whitening)
    U = orthonormal basis of colspace(W Sigma_xz)
    P = I - W^+ U U^T W,    c = (I - P) mean_x

so ``r(x) = x - W^+ U U^T W (x - mean_x)``; it removes ``rank(Sigma_xz)`` (at most
``n_classes - 1``) directions and keeps the mean. This module is the closed form on numpy
arrays, from data or from accumulated moments (for convolutional maps, whose positions are
many more rows than fit in memory). EleutherAI's ``concept-erasure`` package computes the same
eraser (``LeaceFitter(..., shrinkage=False, constrain_cov_trace=False)``, the same ``svd_tol``);
the tests check the two agree.

:func:`orthogonal_from_moments` is the alternative (``codenas erase --method orthogonal``): the
orthogonal projection onto the complement of the cross-covariance's column space, ``P = I - Q Q^T``
(``Q`` an orthonormal basis of ``colspace(Sigma_xz)``), ``c = Q Q^T mean_x``. It too leaves
``r(x)`` with zero cross-covariance with ``z`` (the same guarantee), erasing every direction the
concept spans (``rank(Sigma_xz)``, ``k - 1`` for ``k`` levels), with no whitening (which
multiplies the cross-covariance's sampling noise by ``1/sqrt(lambda)`` along the code's
low-variance directions). It moves the code much further than LEACE, and on a trained factors
MLP cost 55-72 pp of task accuracy (docs/editing.md), so LEACE, on the covariance shrunk as
concept-erasure does by default (:func:`shrink_covariance`), stays the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Directions of W Sigma_xz whose singular value is below this fraction of the largest carry no
# cross-covariance beyond float64 round-off (a centred one-hot concept always has one such).
_RTOL = 1e-9
# concept-erasure's default ``svd_tol``: whitened cross-covariance directions weaker than this
# are kept. Without it, a factor of many levels (a 32-level position) that a layer barely
# carries would have every direction of a narrow layer removed, each for a trace of
# correlation that no probe can use (measured on shapes; docs/editing.md).
SVD_TOL = 0.01


@dataclasses.dataclass(frozen=True)
class AffineEraser:
    """An affine map ``x -> x @ matrix.T + bias`` on row vectors of ``n_units``.

    Attributes:
        matrix: ``(n_units, n_units)``, ``P`` of the module docstring (identity minus a rank
            ``rank`` oblique projection).
        bias: ``(n_units,)``, ``c``.
        rank: the number of directions erased.
    """

    matrix: NDArray[np.float64]
    bias: NDArray[np.float64]
    rank: int

    def __call__(self, x: ArrayLike) -> NDArray[np.float64]:
        """Apply the eraser to rows ``x`` of shape ``(n_samples, n_units)``."""
        return np.asarray(x, dtype=np.float64) @ self.matrix.T + self.bias


def one_hot(levels: ArrayLike) -> NDArray[np.float64]:
    """``(n_samples,)`` integer classes -> ``(n_samples, n_classes)`` indicator columns, one per
    distinct class (in sorted order)."""
    y = np.asarray(levels)
    if y.ndim != 1:
        raise ValueError(f"one_hot: levels must be 1-D, got shape {y.shape}")
    _, codes = np.unique(y, return_inverse=True)
    out = np.zeros((len(y), int(codes.max()) + 1 if len(y) else 0))
    out[np.arange(len(y)), codes] = 1.0
    return out


def leace_from_moments(
    mean_x: ArrayLike,
    sigma_xx: ArrayLike,
    sigma_xz: ArrayLike,
    *,
    svd_tol: float = SVD_TOL,
    rtol: float = _RTOL,
    null_cross: Sequence[ArrayLike] = (),
) -> AffineEraser:
    """The LEACE eraser from the mean, covariance and cross-covariance of ``x`` and ``z``.

    Args:
        mean_x: ``(d,)``, the mean of ``x``.
        sigma_xx: ``(d, d)``, the covariance of ``x`` (any common normalisation with
            ``sigma_xz``: the eraser is invariant to scaling both).
        sigma_xz: ``(d, k)``, the cross-covariance of ``x`` and ``z``.
        svd_tol: singular values of ``W sigma_xz`` (whitened cross-covariance, at most the
            concept's standard deviation) below this are left (as concept-erasure's
            ``svd_tol``); 0 erases every direction of any correlation.
        rtol: singular values below ``rtol`` times the largest are round-off, always left.
        null_cross: cross-covariances of ``x`` with the concept's levels *permuted* over the
            samples (:func:`permuted_cross`). Directions weaker than the strongest whitened
            direction of any of them are sampling noise and are left: erasing them removes (of
            a k-level concept, up to ``k - 1``) directions of other information that merely
            happened to correlate on these rows, not the concept.

    Returns:
        The :class:`AffineEraser`; the identity (rank 0) when ``x`` and ``z`` are uncorrelated.
    """
    mu = np.asarray(mean_x, dtype=np.float64)
    sxx = np.asarray(sigma_xx, dtype=np.float64)
    sxz = np.asarray(sigma_xz, dtype=np.float64)
    d = mu.shape[0]
    if sxx.shape != (d, d) or sxz.ndim != 2 or sxz.shape[0] != d:
        raise ValueError(
            f"leace: shapes mean_x (d,), sigma_xx (d, d), sigma_xz (d, k) must agree, got "
            f"{mu.shape}, {sxx.shape}, {sxz.shape}"
        )
    sxx = (sxx + sxx.T) / 2.0
    eigval, eigvec = np.linalg.eigh(sxx)
    # The pseudo-inverse's threshold (as torch.linalg.pinv and concept-erasure): directions of
    # no variance (dead units, copies) are neither whitened nor erased.
    keep = eigval > max(eigval[-1], 0.0) * d * np.finfo(np.float64).eps
    root = np.sqrt(np.clip(eigval, 0.0, None))
    inv_root = np.where(keep, 1.0 / np.where(keep, root, 1.0), 0.0)
    w = (eigvec * inv_root) @ eigvec.T
    w_inv = (eigvec * np.where(keep, root, 0.0)) @ eigvec.T
    u, s, _ = np.linalg.svd(w @ sxz, full_matrices=False)
    if s.size == 0 or s[0] <= 0.0:
        return AffineEraser(np.eye(d), np.zeros(d), 0)
    tol = max(svd_tol, rtol * s[0])
    for null in null_cross:
        top = np.linalg.svd(w @ np.asarray(null, dtype=np.float64), compute_uv=False)
        tol = max(tol, float(top[0]) if top.size else 0.0)
    u = u[:, s > tol]
    oblique = w_inv @ u @ u.T @ w
    matrix = np.eye(d) - oblique
    return AffineEraser(matrix, oblique @ mu, int(u.shape[1]))


def orthogonal_from_moments(
    mean_x: ArrayLike,
    sigma_xz: ArrayLike,
    *,
    rtol: float = _RTOL,
) -> AffineEraser:
    """The orthogonal eraser: project out every direction of ``colspace(sigma_xz)``.

    Args:
        mean_x: ``(d,)``, the mean of ``x``.
        sigma_xz: ``(d, k)``, the cross-covariance of ``x`` and the one-hot concept.
        rtol: singular values below ``rtol`` times the largest are round-off (a centred
            one-hot concept always has one), left.

    Returns:
        The :class:`AffineEraser` ``x -> (I - Q Q^T) x + Q Q^T mean_x``: after it, every linear
        combination of the units has zero covariance with every concept column on the rows the
        moments came from; it removes ``rank(sigma_xz)`` directions and keeps the mean.
    """
    mu = np.asarray(mean_x, dtype=np.float64)
    sxz = np.asarray(sigma_xz, dtype=np.float64)
    d = mu.shape[0]
    if sxz.ndim != 2 or sxz.shape[0] != d:
        raise ValueError(
            f"orthogonal eraser: shapes mean_x (d,), sigma_xz (d, k) must agree, got {mu.shape}, "
            f"{sxz.shape}"
        )
    u, s, _ = np.linalg.svd(sxz, full_matrices=False)
    if s.size == 0 or s[0] <= 0.0:
        return AffineEraser(np.eye(d), np.zeros(d), 0)
    keep = s > rtol * s[0]
    q = u[:, keep]
    projector = q @ q.T
    return AffineEraser(np.eye(d) - projector, projector @ mu, int(q.shape[1]))


def shrink_covariance(sigma: ArrayLike, n: int) -> NDArray[np.float64]:
    """Optimal linear shrinkage of a sample covariance towards ``tr(S)/d I`` (the estimator
    concept-erasure's ``LeaceFitter`` applies by default; arXiv:1308.2608).

    Args:
        sigma: ``(d, d)`` sample covariance.
        n: the number of rows it was estimated from.

    Returns:
        ``(d, d)``, ``alpha S + beta tr(S)/d I``.
    """
    s = np.asarray(sigma, dtype=np.float64)
    d = s.shape[0]
    target = np.eye(d) * np.trace(s) / d
    target_sq = float(np.sum(target**2))
    prod = float(np.trace(s @ target))
    eps = np.finfo(np.float64).eps
    top = np.trace(s) ** 2 * target_sq / n
    bottom = float(np.sum(s**2)) * target_sq - prod**2
    alpha = 1.0 - (top + eps) / (bottom + eps)
    beta = (1.0 - alpha) * (prod + eps) / (target_sq + eps)
    return alpha * s + beta * target


def permuted_cross(
    units: ArrayLike, levels: ArrayLike, *, permutations: int = 20, seed: int = 0
) -> list[NDArray[np.float64]]:
    """Cross-covariances of per-sample ``units`` with one-hot ``levels`` shuffled over samples.

    The null distribution of :func:`leace_from_moments`'s ``sigma_xz``: what the same rows
    give a concept they carry no trace of. For a conv layer pass its channel means (one row per
    image), whose cross-covariance equals that of the positions.

    Args:
        units: ``(n_samples, d)``, one row per independent sample.
        levels: ``(n_samples,)`` integer classes.
        permutations: how many shuffles.
        seed: seeds the shuffles.

    Returns:
        ``permutations`` arrays of shape ``(d, k)``.
    """
    a = np.asarray(units, dtype=np.float64)
    a = a - a.mean(axis=0)
    z = one_hot(levels)
    z = z - z.mean(axis=0)
    rng = np.random.default_rng(seed)
    n = max(a.shape[0] - 1, 1)
    return [a.T @ z[rng.permutation(len(z))] / n for _ in range(permutations)]


def leace_fit(
    x: ArrayLike,
    z: ArrayLike,
    *,
    svd_tol: float = SVD_TOL,
    rtol: float = _RTOL,
    noise_edge: bool = True,
) -> AffineEraser:
    """The LEACE eraser of concept ``z`` from representation ``x``.

    Args:
        x: ``(n_samples, n_units)`` activations.
        z: ``(n_samples,)`` integer classes (one-hot encoded here) or ``(n_samples, k)`` real
            concept columns.
        svd_tol, rtol: see :func:`leace_from_moments`.
        noise_edge: leave directions no stronger than those of ``z`` shuffled over the rows
            (:func:`permuted_cross`); ``False`` erases every direction above ``svd_tol``
            (concept-erasure's behaviour).

    Returns:
        The :class:`AffineEraser`; after it, every unit's (and every linear combination's)
        covariance with every concept column is zero on these rows (up to the directions
        weaker than ``svd_tol``).
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"leace: x must be (n_samples >= 2, n_units), got shape {a.shape}")
    c = np.asarray(z)
    c = one_hot(c) if c.ndim == 1 else c.astype(np.float64)
    if c.shape[0] != a.shape[0]:
        raise ValueError(
            f"leace: x and z must have the same n_samples, got {a.shape[0]} and {c.shape[0]}"
        )
    mu = a.mean(axis=0)
    xc = a - mu
    zc = c - c.mean(axis=0)
    n = a.shape[0] - 1
    null = permuted_cross(a, np.asarray(z)) if noise_edge and np.asarray(z).ndim == 1 else []
    return leace_from_moments(
        mu, xc.T @ xc / n, xc.T @ zc / n, svd_tol=svd_tol, rtol=rtol, null_cross=null
    )


@dataclasses.dataclass(frozen=True)
class ProbeScores:
    """A fresh linear probe's held-out scores, next to the constant predictor's.

    Attributes:
        accuracy, constant: accuracy of the probe and of the majority class, in [0, 1].
        log_loss, constant_log_loss: mean cross-entropy (nats) of the probe's probabilities and
            of the training part's class frequencies.
    """

    accuracy: float
    constant: float
    log_loss: float
    constant_log_loss: float

    @property
    def gain(self) -> float:
        """``constant_log_loss - log_loss`` (nats): what the probe predicts better than a
        constant in the loss LEACE's guarantee is about; <= 0 means no better."""
        return self.constant_log_loss - self.log_loss


def probe_scores_cv(
    acts: ArrayLike, labels: ArrayLike, *, folds: int = 5, seed: int = 0, C: float = 1.0
) -> ProbeScores:
    """Cross-validated :class:`ProbeScores` of a fresh linear probe (as
    :func:`probe_accuracy_cv`); every row is scored once, by a probe that never saw it.
    Probabilities are clipped to ``[1e-12, 1]`` for the log loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold

    from codenas.metrics._common import factors_are_classes

    a = np.asarray(acts, dtype=np.float64)
    y = np.asarray(labels)
    if a.ndim != 2 or a.shape[0] != y.shape[0]:
        raise ValueError(f"probe: acts (n, d) and labels (n,) must agree, got {a.shape}, {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if counts.min() >= folds
        else KFold(folds, shuffle=True, random_state=seed)
    )
    hit = hit_const = 0
    loss = loss_const = 0.0
    for train, test in splitter.split(a, y):
        values, freq = np.unique(y[train], return_counts=True)
        majority = values[np.argmax(freq)]
        hit_const += int(np.sum(y[test] == majority))
        prior = dict(zip(values.tolist(), (freq / freq.sum()).tolist(), strict=True))
        p_const = np.array([prior.get(v, 0.0) for v in y[test].tolist()])
        loss_const += float(-np.log(np.clip(p_const, 1e-12, 1.0)).sum())
        mean, std = a[train].mean(axis=0), a[train].std(axis=0)
        kept = std > 1e-9 * max(float(std.max()), 1e-300)
        if len(values) < 2 or not kept.any():
            hit += int(np.sum(y[test] == majority))
            loss += float(-np.log(np.clip(p_const, 1e-12, 1.0)).sum())
            continue
        z_train = (a[train][:, kept] - mean[kept]) / std[kept]
        z_test = (a[test][:, kept] - mean[kept]) / std[kept]
        with factors_are_classes():
            clf = LogisticRegression(C=C, max_iter=1000).fit(z_train, y[train])
        proba = clf.predict_proba(z_test)
        column = {c: i for i, c in enumerate(clf.classes_.tolist())}
        p = np.array(
            [proba[r, column[v]] if v in column else 0.0 for r, v in enumerate(y[test].tolist())]
        )
        loss += float(-np.log(np.clip(p, 1e-12, 1.0)).sum())
        hit += int(np.sum(clf.classes_[proba.argmax(1)] == y[test]))
    n = len(y)
    del classes
    return ProbeScores(hit / n, hit_const / n, loss / n, loss_const / n)


def probe_accuracy_cv(
    acts: ArrayLike, labels: ArrayLike, *, folds: int = 5, seed: int = 0, C: float = 1.0
) -> tuple[float, float]:
    """Cross-validated accuracy of a fresh linear probe, and of the constant predictor.

    ``LogisticRegression(C=C, max_iter=1000)`` on units z-scored with the training folds' mean
    and std (units constant there, up to ``1e-9`` of the largest std, are dropped: an erased
    direction leaves round-off, not information), over ``folds`` stratified folds (plain folds
    when a class has fewer rows than folds); every row is scored once. The constant predictor
    predicts each training part's most frequent class.

    Args:
        acts: ``(n_samples, n_units)`` activations.
        labels: ``(n_samples,)`` integer classes.
        folds: number of folds, >= 2.
        seed: seeds the fold assignment.
        C: inverse L2 regularisation strength.

    Returns:
        ``(probe accuracy, constant accuracy)``, both in [0, 1], higher better.
    """
    scores = probe_scores_cv(acts, labels, folds=folds, seed=seed, C=C)
    return scores.accuracy, scores.constant


def probe_accuracy_split(
    train_acts: ArrayLike,
    train_labels: ArrayLike,
    test_acts: ArrayLike,
    test_labels: ArrayLike,
    *,
    C: float = 1.0,
) -> tuple[float, float]:
    """Accuracy on test rows of a fresh linear probe fitted on train rows, and of the constant
    predictor (the training rows' most frequent class); the probe as in
    :func:`probe_accuracy_cv`.

    Args:
        train_acts, test_acts: ``(n_train, n_units)`` and ``(n_test, n_units)`` activations.
        train_labels, test_labels: their integer classes.
        C: inverse L2 regularisation strength.

    Returns:
        ``(probe accuracy, constant accuracy)`` on the test rows, in [0, 1], higher better.
    """
    from sklearn.linear_model import LogisticRegression

    from codenas.metrics._common import factors_are_classes

    a, b = np.asarray(train_acts, dtype=np.float64), np.asarray(test_acts, dtype=np.float64)
    y, t = np.asarray(train_labels), np.asarray(test_labels)
    values, freq = np.unique(y, return_counts=True)
    majority = values[np.argmax(freq)]
    constant = float(np.mean(t == majority))
    mean, std = a.mean(axis=0), a.std(axis=0)
    kept = std > 1e-9 * max(float(std.max()), 1e-300)
    if len(values) < 2 or not kept.any():
        return constant, constant
    with factors_are_classes():
        clf = LogisticRegression(C=C, max_iter=1000).fit((a[:, kept] - mean[kept]) / std[kept], y)
    return float(np.mean(clf.predict((b[:, kept] - mean[kept]) / std[kept]) == t)), constant
