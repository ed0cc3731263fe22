"""Label coding: how a layer's units relate to the class labels.

Every function takes one layer's activations of shape ``(n_samples, n_units)`` and the class
``labels`` of the same samples, an integer array of shape ``(n_samples,)``.

A caution that shapes the registered directions: class selectivity is not a virtue. Networks
that generalise well rely less on single, class-selective units (Morcos, Barrett, Rabinowitz &
Botvinick 2018), and regularising selectivity *down* can raise accuracy (Leavitt & Morcos 2021).
``class_selectivity`` and ``unit_label_information`` are therefore registered with no better
direction; an objective on them must say which way it wants to go.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from codenas.metrics._common import (
    discrete_entropy,
    factors_are_classes,
    histogram_discretize,
    mutual_information,
    zscore_train_test,
)
from codenas.metrics._validation import as_activations, as_labels, check_split
from codenas.metrics.registry import register_metric

SELECTIVITY_EPS = 1e-7
"""Added to the selectivity denominator, as Leavitt & Morcos (2021) do, so silent units give 0."""

# Fewest rows for the probe's split: ceil(0.9 n) < n needs n >= 10 (one test row).
_MIN_SPLIT_SAMPLES = 10


def selectivity_index(acts: ArrayLike, labels: ArrayLike) -> NDArray[np.float64]:
    """Class selectivity index of every unit (Morcos et al. 2018).

    ``SI_u = (mu_max - mu_-max) / (mu_max + mu_-max + eps)``, where ``mu_max`` is the largest
    class-conditional mean activity of unit u, ``mu_-max`` the mean of the other classes'
    class-conditional means, and ``eps = 1e-7`` as in Leavitt & Morcos (2021).

    The index is defined for non-negative activity (ReLU), where it is exactly the published
    one. A unit that goes negative (tanh, GELU, LeakyReLU) is first shifted so that its
    smallest activation is 0, ``a_u - min(0, min_i a_iu)``: selectivity is then measured above
    the unit's floor. (Without the shift, class means of opposite signs would make the index
    meaningless; ReLU units, whose minimum is >= 0, are never shifted.)

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's activations.
        labels: shape ``(n_samples,)``, integer classes (at least two).

    Returns:
        Shape ``(n_units,)``, values in [0, 1]: 0 when the unit responds equally to every class
        (or never responds), 1 when it responds to one class only.
    """
    a = as_activations(acts, metric="class_selectivity")
    y = as_labels(labels, a.shape[0], metric="class_selectivity")
    return _selectivity(a, y)


def _selectivity(a: NDArray[np.float64], y: NDArray[np.int64]) -> NDArray[np.float64]:
    floor = np.minimum(a.min(axis=0), 0.0)
    a = a - floor
    k = int(y.max()) + 1
    onehot = np.zeros((len(y), k))
    onehot[np.arange(len(y)), y] = 1.0
    # every class 0..k-1 occurs (labels are coded densely), so no count is 0
    means = (onehot.T @ a) / onehot.sum(axis=0)[:, None]
    best = means.argmax(axis=0)
    mu_max = means[best, np.arange(a.shape[1])]
    mu_rest = (means.sum(axis=0) - mu_max) / (k - 1)
    return (mu_max - mu_rest) / (mu_max + mu_rest + SELECTIVITY_EPS)


@register_metric(
    "class_selectivity",
    direction=None,
    needs=("labels",),
    aggregate="mean",
    keys=("mean", "median", "std", "max"),
)
def class_selectivity(acts: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Summary of the class selectivity index of a layer's units (Morcos et al. 2018).

    Per unit, :func:`selectivity_index`; this returns the mean and the shape of its
    distribution over the layer's units (dead units count, with index 0). Aggregated over layers
    by ``mean``, the quantity Leavitt & Morcos (2021) regularise.

    Registered with no better direction: higher selectivity is not better (see the module
    docstring), so to steer it, say ``direction: minimize`` (or maximize) in the objective.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's activations.
        labels: shape ``(n_samples,)``, integer classes (at least two).

    Returns:
        ``{"mean", "median", "std", "max"}`` of the per-unit index, each in [0, 1].
    """
    si = selectivity_index(acts, labels)
    return {
        "mean": float(np.mean(si)),
        "median": float(np.median(si)),
        "std": float(np.std(si)),
        "max": float(np.max(si)),
    }


def label_information_per_unit(acts: ArrayLike, labels: ArrayLike) -> NDArray[np.float64]:
    """Normalised mutual information of every unit with the class label.

    ``I(bin20(a_u); y) / H(y)``: each unit discretised into 20 equal-width bins over its own
    min..max (the disentanglement_lib convention), plug-in mutual information in nats over all
    rows, divided by the label entropy.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's activations.
        labels: shape ``(n_samples,)``, integer classes (at least two).

    Returns:
        Shape ``(n_units,)``, values in [0, 1]: 1 when the unit alone determines the class.
    """
    a = as_activations(acts, metric="unit_label_information")
    y = as_labels(labels, a.shape[0], metric="unit_label_information")
    return mutual_information(histogram_discretize(a), y) / discrete_entropy(y)


@register_metric(
    "unit_label_information",
    direction=None,
    needs=("labels",),
    aggregate="last",
    keys=("mean", "max"),
)
def unit_label_information(acts: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Mean and max over units of each unit's normalised mutual information with the class.

    Per unit, :func:`label_information_per_unit`: ``I(bin20(a_u); y) / H(y)``. The plug-in
    estimate is biased upward by about ``(bins - 1)(classes - 1) / (2 n)`` nats on n samples
    (Miller 1955), so compare layers on the same number of rows. Aggregated as ``last``: the
    representation feeding the head, where label information is expected to peak.

    Registered with no better direction: like class selectivity, high single-unit label
    information marks a localist code, which is not known to generalise better than a
    distributed one (Morcos et al. 2018); state the direction in an objective.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's activations.
        labels: shape ``(n_samples,)``, integer classes (at least two).

    Returns:
        ``{"mean", "max"}``, each in [0, 1].
    """
    info = label_information_per_unit(acts, labels)
    return {"mean": float(np.mean(info)), "max": float(np.max(info))}


@register_metric("linear_probe_accuracy", direction="maximize", needs=("labels",), aggregate="last")
def linear_probe_accuracy(acts: ArrayLike, labels: ArrayLike, *, C: float = 1.0) -> float:
    """Held-out accuracy of a linear probe reading the class from a layer (Alain & Bengio 2016).

    ``LogisticRegression(C=C, max_iter=1000)`` (L2-regularised, lbfgs, multinomial) on units
    z-scored with the training rows' mean and std, fitted on the first ``ceil(0.9 n)`` rows and
    scored on the rest (pass rows in random order). Units constant on the training rows (dead
    units) carry nothing and would divide by a zero std, so they are dropped; with none left,
    the probe predicts the most frequent training class. Aggregated as ``last``: Alain &
    Bengio find probe accuracy rises monotonically with depth, so the layer feeding the head
    is the one to read.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's activations; at least 10 samples.
        labels: shape ``(n_samples,)``, integer classes, two or more in the training rows.
        C: inverse regularisation strength, > 0.

    Returns:
        A float in [0, 1]; higher is better (1 / n_classes is chance on balanced classes).
    """
    from sklearn.linear_model import LogisticRegression

    if not C > 0:
        raise ValueError(f"linear_probe_accuracy: `C > 0` must hold, got {C=}")
    a = as_activations(acts, min_samples=_MIN_SPLIT_SAMPLES, metric="linear_probe_accuracy")
    y = as_labels(labels, a.shape[0], metric="linear_probe_accuracy")
    n_train = check_split(y, name="labels", metric="linear_probe_accuracy")
    z_train, z_test, kept = zscore_train_test(a, n_train)
    y_train, y_test = y[:n_train], y[n_train:]
    if not kept.any():
        majority = np.bincount(y_train).argmax()
        return float(np.mean(y_test == majority))
    with factors_are_classes():
        clf = LogisticRegression(C=C, max_iter=1000).fit(z_train, y_train)
    return float(np.mean(clf.predict(z_test) == y_test))
