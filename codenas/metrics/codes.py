"""Binary activation codes: which units are "on" for each input, and how distinct the patterns are.

A unit is *on* for a sample when its activation exceeds ``threshold`` (default 0.0): for ReLU
and its relatives (GELU, SiLU, ELU, LeakyReLU) that is the linear region, where the unit passes
its input; for tanh it is the sign. For an activation that is always positive (sigmoid, softplus)
a threshold of 0 marks every unit on; pass the midpoint instead (0.5 for sigmoid).

Activations are arrays of shape ``(n_samples, n_units)``; a boolean array is taken as codes
already (its 0/1 values thresholded at 0 are themselves).

For a convolutional layer NASWOT's units are every channel at every spatial position (Mellor
et al. 2021): :func:`naswot` and :func:`activation_code_logdet` are registered with
``reads="codes"``, so the search hands them the per-position codes of
:func:`codenas.metrics.capture.capture_layers`. :func:`naswot_channel_mean` is the same score on
the channel means (one unit per channel), the definition codenas used before; for dense layers
the two are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from codenas.metrics._validation import as_activations, as_layers
from codenas.metrics.registry import register_metric

NASWOT_BATCH = 128
"""Rows per kernel: the batch size Mellor et al. (2021) score with."""


_GRAM_CHUNK = 2**18
"""Columns per float32 product (counts below 2^24 are exact in float32; 128 MiB a batch)."""


def _batch_logdet(layers: Sequence[NDArray[np.bool_]], ridge: float) -> float:
    # K_H[i, j] = units where codes i and j agree = N_A - Hamming(c_i, c_j)
    #           = N_A - s_i - s_j + 2 c_i . c_j,  s_i = |c_i|.
    # The kernel is a sum over units, so the layers' Gram matrices add up without joining the
    # codes. One float32 product per column chunk (a per-position CNN code has 10^5 units),
    # chunks small enough that every partial sum is an exact integer, accumulated in float64.
    m = layers[0].shape[0]
    n_units = sum(codes.shape[1] for codes in layers)
    gram = np.zeros((m, m), dtype=np.float64)
    for codes in layers:
        for start in range(0, codes.shape[1], _GRAM_CHUNK):
            block = codes[:, start : start + _GRAM_CHUNK].astype(np.float32)
            gram += block @ block.T
    ones = np.diag(gram)  # s_i = c_i . c_i
    k = n_units - ones[:, None] - ones[None, :] + 2.0 * gram
    if ridge:
        k[np.diag_indices_from(k)] += ridge
    sign, logdet = np.linalg.slogdet(k)
    return float(logdet) if sign > 0 else -np.inf


def _binarise(a: NDArray, threshold: float) -> NDArray[np.bool_]:
    # Boolean codes thresholded anywhere in [0, 1) are themselves: skip the copy.
    if a.dtype == np.bool_ and 0.0 <= threshold < 1.0:
        return a
    return a > threshold


def _check_options(batch_size: int, ridge: float, metric: str) -> None:
    if batch_size < 2:
        raise ValueError(f"{metric}: `batch_size >= 2` must hold, got {batch_size=}")
    if ridge < 0:
        raise ValueError(f"{metric}: `ridge >= 0` must hold, got {ridge=}")


def _code_logdet(layers: Sequence[NDArray[np.bool_]], *, batch_size: int, ridge: float) -> float:
    """The score of the codes of ``layers`` (same rows) taken together, batch by batch."""
    n = layers[0].shape[0]
    if n <= batch_size:
        return _batch_logdet(layers, ridge)
    scores = [
        _batch_logdet([codes[start : start + batch_size] for codes in layers], ridge)
        for start in range(0, n - batch_size + 1, batch_size)
    ]
    return float(np.mean(scores))


@register_metric("activation_code_logdet", direction="maximize", aggregate="mean", reads="codes")
def activation_code_logdet(
    acts: ArrayLike,
    *,
    threshold: float = 0.0,
    batch_size: int = NASWOT_BATCH,
    ridge: float = 1.0,
) -> float:
    """NASWOT score of one layer: log-determinant of the Hamming kernel of its binary codes.

    Mellor, Turner, Storkey & Crowley (2021), "Neural Architecture Search without Training".
    Each sample i gets a binary code ``c_i = [a_i > threshold]`` over the N_A units (for a
    convolutional layer, in a search: every channel at every spatial position); the kernel
    ``K_H[i, j] = N_A - d_H(c_i, c_j)`` counts the units on which two samples agree, and the
    score is ``log |K_H + ridge * I|`` (via ``slogdet``). Inputs the layer maps to distinct
    patterns give a well-conditioned kernel and a high score.

    Batches: the kernel is ``batch_size x batch_size`` (default 128, the NASWOT batch), so the
    cost is O(n N_A) and memory O(batch^2) whatever n is. With more rows than one batch, the
    score is the mean over the consecutive full batches (the first ``batch_size`` rows, the
    next ...; a last partial batch is left out), so it depends on row order only through which
    rows share a batch; with at most one batch it is invariant to row order. Scores are
    comparable only between runs with the same batch size.

    The ridge: ``K_H = [C, 1-C][C, 1-C]^T`` has rank at most ``N_A + 1``, so for a batch larger
    than the layer is wide, or with two identical codes, ``|K_H| = 0`` and the paper's score is
    ``-inf``. Adding the identity keeps it finite and ordered (it grows with every distinct
    pattern) and changes a well-conditioned ``K_H``, whose eigenvalues are O(N_A), little.
    ``ridge=0`` gives the paper's exact score, ``-inf`` when ``K_H`` is singular.

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.
        threshold: a unit is on where its activation is greater than this (see module doc).
        batch_size: rows per kernel, >= 2.
        ridge: added to the kernel's diagonal, >= 0.

    Returns:
        A float (``-inf`` only with ``ridge=0``). With ``ridge=1`` and m rows per batch it lies
        between ``log(1 + m N_A)`` (every code identical) and ``m log(N_A + 1)`` (Hadamard's
        bound). Higher is better; it grows with width, as the paper's score does.
    """
    _check_options(batch_size, ridge, "activation_code_logdet")
    a = as_activations(acts, metric="activation_code_logdet", keep_float=True)
    return _code_logdet([_binarise(a, threshold)], batch_size=batch_size, ridge=ridge)


@register_metric("naswot", direction="maximize", scope="network", reads="codes")
def naswot(
    layers: Sequence[ArrayLike],
    *,
    threshold: float = 0.0,
    batch_size: int = NASWOT_BATCH,
    ridge: float = 1.0,
) -> float:
    """NASWOT score of a network: the Hamming-kernel log-determinant of all hidden units together.

    :func:`activation_code_logdet` on the concatenated layers. Mellor et al. (2021)
    concatenate the codes of every rectified unit in the network, so ``N_A`` is the total
    number of hidden units, for a convolutional layer every channel at every spatial position;
    a search hands this function exactly those codes (``reads="codes"``; see
    :mod:`codenas.metrics.capture` for the bounds on rows and positions). Same batches, ridge
    and threshold as :func:`activation_code_logdet`.

    Args:
        layers: one array of shape ``(n_samples, n_units_l)`` per hidden layer, same rows.
        threshold: a unit is on where its activation is greater than this.
        batch_size: rows per kernel, >= 2.
        ridge: added to the kernel's diagonal, >= 0.

    Returns:
        A float; higher is better (at initialisation it ranks NAS-Bench-201 CIFAR-10
        architectures with Spearman rho about 0.79 against final accuracy).
    """
    return _network_logdet(layers, "naswot", threshold, batch_size, ridge)


def _network_logdet(
    layers: Sequence[ArrayLike], metric: str, threshold: float, batch_size: int, ridge: float
) -> float:
    _check_options(batch_size, ridge, metric)
    # Threshold layer by layer (boolean codes as they are) and add the layers' kernels: no copy
    # of the whole network's codes.
    arrays = as_layers(layers, metric=metric, keep_float=True)
    codes = [_binarise(a, threshold) for a in arrays]
    return _code_logdet(codes, batch_size=batch_size, ridge=ridge)


@register_metric("naswot_channel_mean", direction="maximize", scope="network")
def naswot_channel_mean(
    layers: Sequence[ArrayLike],
    *,
    threshold: float = 0.0,
    batch_size: int = NASWOT_BATCH,
    ridge: float = 1.0,
) -> float:
    """NASWOT on channel means: one unit per channel of a convolutional layer, not per position.

    The same score as :func:`naswot`, but a search hands it the ``units`` view of the layers, in
    which each channel of a feature map is its spatial mean. Not the published score: a
    channel's mean is positive for a ReLU net whenever the channel fires anywhere, so the codes
    are nearly constant. Kept to compare with what codenas reported before it read every
    position; for dense layers it equals :func:`naswot`.

    Args:
        layers: one array of shape ``(n_samples, n_units_l)`` per hidden layer, same rows.
        threshold: a unit is on where its activation is greater than this.
        batch_size: rows per kernel, >= 2.
        ridge: added to the kernel's diagonal, >= 0.

    Returns:
        A float; higher is better. Bounds as for :func:`activation_code_logdet`.
    """
    return _network_logdet(layers, "naswot_channel_mean", threshold, batch_size, ridge)


@register_metric("unique_codes_fraction", direction="maximize", aggregate="mean")
def unique_codes_fraction(acts: ArrayLike, *, threshold: float = 0.0) -> float:
    """Share of samples whose binary on/off code is distinct: #unique(c_i) / n_samples.

    Codes as in :func:`activation_code_logdet` (``c_i = [a_i > threshold]``), over all rows.
    A layer that maps different inputs to the same pattern of active units cannot tell them
    apart by its linear regions alone (cf. Hanin & Rolnick 2019 on activation regions).

    Args:
        acts: shape ``(n_samples, n_units)``, one layer's post-activation outputs.
        threshold: a unit is on where its activation is greater than this.

    Returns:
        A float in [1 / n_samples, 1]; 1 when every sample has its own pattern. Higher is
        better, but it saturates at 1 for wide layers (2^n_units patterns).
    """
    a = as_activations(acts, metric="unique_codes_fraction", keep_float=True)
    packed = np.packbits(a > threshold, axis=1)
    n_unique = np.unique(packed, axis=0).shape[0]
    return float(n_unique / a.shape[0])


SWAP_BATCH = NASWOT_BATCH
"""Rows per pattern in :func:`swap` by default: NASWOT's batch, so the two read the same rows.

Peng et al.'s code scores 16 inputs (``--input_samples 16``); pass ``batch_size=16`` for that."""


def _unit_patterns(codes: NDArray[np.bool_]) -> NDArray[np.void]:
    # One opaque value per unit (column): its on/off pattern over the rows, bit-packed.
    packed = np.packbits(np.ascontiguousarray(codes.T), axis=1)
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def _swap_batch(layers: Sequence[NDArray[np.bool_]]) -> int:
    patterns = np.concatenate([_unit_patterns(codes) for codes in layers])
    return int(np.unique(patterns).size)


@register_metric("swap", direction="maximize", scope="network", reads="codes")
def swap(
    layers: Sequence[ArrayLike],
    *,
    threshold: float = 0.0,
    batch_size: int = SWAP_BATCH,
) -> float:
    """SWAP score: the number of distinct sample-wise activation patterns of all hidden units.

    Peng, Song, Fayek, Ciesielski & Chang (ICLR 2024), "SWAP-NAS: Sample-Wise Activation
    Patterns for Ultra-fast NAS". Binary codes as for :func:`naswot` (``[a > threshold]``; the
    authors' ``sign`` of a ReLU output), over every hidden unit of the network together (for a
    convolutional layer every channel at every spatial position, ``reads="codes"``). Where
    NASWOT reads each *sample's* pattern over the units, SWAP reads each *unit's* pattern over a
    batch of samples, a column of the ``(n_samples, n_units)`` code matrix, and counts the
    distinct ones (``torch.unique`` over the transposed, concatenated codes in the reference
    code). Two units that fire on exactly the same samples count once; a dead unit and an
    always-on unit each give one pattern.

    This is the plain SWAP-Score. The paper's regularised variant multiplies it by
    ``exp(-(params - mu)^2 / sigma)``, a size prior with two hyper-parameters to tune per
    search space; it is left out (a caller can weigh size itself).

    Batches: with more rows than ``batch_size``, the score is the mean over the consecutive
    full batches (a last partial batch is left out), as :func:`naswot` does; with at most one
    batch it is invariant to row order. Scores are comparable only at the same batch size.

    Args:
        layers: one array of shape ``(n_samples, n_units_l)`` per hidden layer, same rows.
        threshold: a unit is on where its activation is greater than this.
        batch_size: rows per pattern, >= 2.

    Returns:
        A float in ``[1, min(N, 2^m)]`` for ``N`` units in all and ``m`` rows per batch:
        1 when every unit has the same pattern, ``N`` when all differ. Higher is better; it
        grows with width.
    """
    if batch_size < 2:
        raise ValueError(f"swap: `batch_size >= 2` must hold, got {batch_size=}")
    arrays = as_layers(layers, metric="swap", keep_float=True)
    codes = [_binarise(a, threshold) for a in arrays]
    n = codes[0].shape[0]
    if n <= batch_size:
        return float(_swap_batch(codes))
    counts = [
        _swap_batch([c[start : start + batch_size] for c in codes])
        for start in range(0, n - batch_size + 1, batch_size)
    ]
    return float(np.mean(counts))


def _min_correlation_eigenvalue(a: NDArray[np.float64]) -> float:
    if np.any(np.ptp(a, axis=0) == 0):  # a constant column: a zero row, eigenvalue 0
        return 0.0
    centred = a - a.mean(axis=0)
    z = centred / np.sqrt(np.einsum("ij,ij->j", centred, centred))
    # Positive semi-definite: a negative smallest eigenvalue is rounding.
    return max(0.0, float(np.linalg.eigvalsh(z.T @ z)[0]))


def correlation_min_eigenvalue(acts: ArrayLike) -> float:
    """Smallest eigenvalue of the Pearson correlation matrix of the columns of ``acts``.

    The rows of ``acts`` (shape ``(n_samples, n_units)``) are the observations. A constant
    column has no correlation: its row and column of the matrix are 0, as in MeCo's reference
    code (``corrcoef`` with NaN set to 0), so the smallest eigenvalue is then 0.

    Returns:
        A float in ``[0, 1]``: 1 when the columns are uncorrelated (orthogonal after
        centring), 0 when some are linearly dependent (always so when ``n_units >=
        n_samples``: the centred rows span at most ``n_samples - 1`` dimensions).
    """
    a = as_activations(acts, metric="correlation_min_eigenvalue")
    return _min_correlation_eigenvalue(a)


@register_metric("meco", direction="maximize", scope="network")
def meco(layers: Sequence[ArrayLike]) -> float:
    """MeCo: the smallest eigenvalue of each layer's unit correlation matrix, summed over layers.

    Jiang, Wang & Bie (NeurIPS 2023), "MeCo: Zero-Shot NAS with One Data and Single Forward
    Pass via Minimum Eigenvalue of Correlation". For each hidden layer, the Pearson
    correlation matrix of its units (columns), the rows being the observations, and its
    smallest eigenvalue (:func:`correlation_min_eigenvalue`); the score is their sum.

    The paper feeds *one* random input to a CNN and correlates its channels over the spatial
    positions of that input's feature map (``fea = output[0].reshape(C, -1)``); on a dense
    layer that leaves one observation per unit and the matrix is 0. Here the observations are
    the rows handed in: over a search's sample rows, one unit per dense unit or per channel
    (the channel's spatial mean, ``reads="units"``). To score a CNN as the paper does, pass one
    array of shape ``(H * W, C)`` per layer, one input's feature map. Layers are a network's
    hidden layers (post-activation), not every module as in the reference code. The paper's
    MeCo_opt (a random subset of channels per layer) is not implemented.

    A layer at least as wide as there are rows has a singular correlation matrix and adds 0.

    Args:
        layers: one array of shape ``(n_samples, n_units_l)`` per hidden layer, same rows.

    Returns:
        A float in ``[0, n_layers]``; higher is better (less correlated units).
    """
    arrays = as_layers(layers, metric="meco")
    return float(sum(_min_correlation_eigenvalue(a) for a in arrays))
