"""Generated tasks whose accuracy depends on the architecture: ``parity``, ``teacher``,
``spiral`` (tables) and ``bars`` (images).

digits and factors saturate (most networks of a search space end within a point of the best),
so a ranking of architectures on them is mostly noise. Each task here is built so that some
property of the network limits what it can reach, and each is generated in-process from two
seeds: ``task_seed`` fixes the problem (the random maps below), ``seed`` draws the samples and
the split, so changing the split never changes the problem.

``parity`` (needs depth and width: a composition of XORs)
    ``n_bits`` latent signs ``b_j = [z_j > 0]``, ``z ~ N(0, I)``, are embedded with
    ``n_distractors`` further Gaussian coordinates into ``n_features`` features by a random
    orthogonal map plus Gaussian noise (``noise`` times a unit feature's std). The label is
    ``2 * parity(b_0..b_{h-1}) + parity(b_h..b_{n_bits-1})`` with ``h = n_bits // 2``: four
    classes, each bit flips the label, so no single feature or linear direction says anything.
``teacher`` (needs width: a wide, oscillating random teacher)
    ``x ~ N(0, I_{n_features})``; the label is ``argmax_c (cos(frequency * x W1 + b1) W2)_c``
    with ``W1 ~ N(0, 1/n_features)`` of ``hidden`` columns, ``b1 ~ U(0, 2 pi)`` and
    ``W2 ~ N(0, 1)``: random Fourier features, a function that a narrow network cannot follow.
``spiral`` (a rank-2 bottleneck: the input is wide, the function lives on a plane)
    ``x ~ N(0, I_{n_features})``, ``u = x P`` with ``P`` two random orthonormal columns; with
    ``r = |u|`` and ``a`` the angle of ``u``, the label is
    ``floor(K * ((a + twist * r) / (2 pi) mod 1))``: ``K = n_classes`` interleaved spiral arms.
    Two directions of the input carry all the information, a fine partition of the plane does
    the rest.
``bars`` (images needing spatial composition: receptive field and counting)
    ``size x size`` grey images with ``n_bars`` one-pixel bars, each independently horizontal
    or vertical and short (2 px) or long (5 px), at random positions (they may cross), plus
    Gaussian pixel noise of std ``noise``. The label is the number of *long vertical* bars,
    ``0..n_bars``: a unit must see 5 pixels in a column to tell long from short, and the head
    must count over the whole image.

Every sample of every task is a fresh draw, so their sizes are free (``n_samples``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from codenas.data.base import DataConfig, Dataset, make_dataset, register_dataset
from codenas.errors import DataError

_SALT = {"parity": 0x9A17, "teacher": 0x7EAC, "spiral": 0x5917, "bars": 0xBA25}


def _rng(task_seed: int, name: str) -> np.random.Generator:
    """The generator of a task's fixed problem (its random maps), independent of ``seed``."""
    return np.random.default_rng([task_seed, _SALT[name]])


def _orthonormal(rng: np.random.Generator, rows: int, cols: int) -> NDArray[np.float64]:
    """``(rows, cols)`` with orthonormal columns (``cols <= rows``), Haar-distributed."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


class ParityConfig(DataConfig):
    """``data:`` of ``parity`` (see the module docstring)."""

    name: str = "parity"
    n_bits: int = Field(6, ge=2, le=16)
    n_distractors: int = Field(4, ge=0)
    n_features: int = Field(16, ge=2)
    noise: float = Field(0.1, ge=0)
    n_samples: int = Field(3000, ge=30)
    task_seed: int = 0

    @model_validator(mode="after")
    def _fits(self) -> ParityConfig:
        if self.n_bits + self.n_distractors > self.n_features:
            raise ValueError(
                "n_bits + n_distractors <= n_features must hold, got "
                f"{self.n_bits} + {self.n_distractors} > {self.n_features}"
            )
        return self


def generate_parity(config: ParityConfig) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features ``(n_samples, n_features)`` and labels ``(n_samples,)`` in ``0..3``."""
    rng = np.random.default_rng(config.seed)
    k = config.n_bits + config.n_distractors
    z = rng.standard_normal((config.n_samples, k))
    bits = (z[:, : config.n_bits] > 0).astype(np.int64)
    half = config.n_bits // 2
    y = 2 * (bits[:, :half].sum(axis=1) % 2) + bits[:, half:].sum(axis=1) % 2
    embed = _orthonormal(_rng(config.task_seed, "parity"), config.n_features, k).T
    x = z @ embed
    if config.noise > 0:
        x = x + config.noise * rng.standard_normal(x.shape)
    return x, y


@register_dataset(
    "parity",
    config_model=ParityConfig,
    summary="tabular: 2 parities of latent sign bits, rotated into features (needs depth)",
    cacheable=True,
)
def load_parity(config: DataConfig) -> Dataset:
    assert isinstance(config, ParityConfig)
    x, y = generate_parity(config)
    return make_dataset(
        "parity",
        config,
        x,
        y,
        n_outputs=4,
        description=(
            f"parity: 2 parities of {config.n_bits} latent bits (+{config.n_distractors} "
            f"distractors) in {config.n_features} features, {config.n_samples} samples"
        ),
    )


class TeacherConfig(DataConfig):
    """``data:`` of ``teacher`` (see the module docstring)."""

    name: str = "teacher"
    n_features: int = Field(8, ge=1)
    hidden: int = Field(128, ge=1)
    n_classes: int = Field(8, ge=2)
    frequency: float = Field(1.5, gt=0)
    n_samples: int = Field(3000, ge=30)
    task_seed: int = 0

    @model_validator(mode="after")
    def _classes(self) -> TeacherConfig:
        if self.n_classes > self.n_samples // 30:
            raise ValueError(
                f"n_classes <= n_samples / 30 must hold (every class needs samples in each "
                f"split), got n_classes={self.n_classes}, n_samples={self.n_samples}"
            )
        return self


def teacher_map(
    config: TeacherConfig,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The fixed teacher ``(W1, b1, W2)`` of ``config.task_seed``."""
    rng = _rng(config.task_seed, "teacher")
    w1 = rng.standard_normal((config.n_features, config.hidden)) / math.sqrt(config.n_features)
    b1 = rng.uniform(0.0, 2 * math.pi, config.hidden)
    w2 = rng.standard_normal((config.hidden, config.n_classes))
    return w1, b1, w2


def generate_teacher(config: TeacherConfig) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features ``(n_samples, n_features)`` and labels ``(n_samples,)`` in ``0..n_classes-1``."""
    rng = np.random.default_rng(config.seed)
    x = rng.standard_normal((config.n_samples, config.n_features))
    w1, b1, w2 = teacher_map(config)
    y = np.argmax(np.cos(config.frequency * x @ w1 + b1) @ w2, axis=1)
    return x, y.astype(np.int64)


@register_dataset(
    "teacher",
    config_model=TeacherConfig,
    summary="tabular: classes of a wide random-Fourier teacher network (needs width)",
    cacheable=True,
)
def load_teacher(config: DataConfig) -> Dataset:
    assert isinstance(config, TeacherConfig)
    x, y = generate_teacher(config)
    _check_classes("teacher", y, config.n_classes)
    return make_dataset(
        "teacher",
        config,
        x,
        y,
        n_outputs=config.n_classes,
        description=(
            f"teacher: {config.n_classes} classes of a {config.hidden}-unit random Fourier "
            f"teacher on {config.n_features} features, {config.n_samples} samples"
        ),
    )


class SpiralConfig(DataConfig):
    """``data:`` of ``spiral`` (see the module docstring)."""

    name: str = "spiral"
    n_features: int = Field(32, ge=2)
    n_classes: int = Field(6, ge=2)
    twist: float = Field(2.0, ge=0)
    n_samples: int = Field(3000, ge=30)
    task_seed: int = 0

    @model_validator(mode="after")
    def _classes(self) -> SpiralConfig:
        if self.n_classes > self.n_samples // 30:
            raise ValueError(
                f"n_classes <= n_samples / 30 must hold, got n_classes={self.n_classes}, "
                f"n_samples={self.n_samples}"
            )
        return self


def generate_spiral(config: SpiralConfig) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features ``(n_samples, n_features)`` and labels ``(n_samples,)`` in ``0..n_classes-1``."""
    rng = np.random.default_rng(config.seed)
    x = rng.standard_normal((config.n_samples, config.n_features))
    u = x @ _orthonormal(_rng(config.task_seed, "spiral"), config.n_features, 2)
    turns = (np.arctan2(u[:, 1], u[:, 0]) + config.twist * np.hypot(u[:, 0], u[:, 1])) / (
        2 * math.pi
    )
    y = np.floor(config.n_classes * np.mod(turns, 1.0)).astype(np.int64)
    return x, np.minimum(y, config.n_classes - 1)


@register_dataset(
    "spiral",
    config_model=SpiralConfig,
    summary="tabular: interleaved spiral arms on a random plane of many features (rank 2)",
    cacheable=True,
)
def load_spiral(config: DataConfig) -> Dataset:
    assert isinstance(config, SpiralConfig)
    x, y = generate_spiral(config)
    _check_classes("spiral", y, config.n_classes)
    return make_dataset(
        "spiral",
        config,
        x,
        y,
        n_outputs=config.n_classes,
        description=(
            f"spiral: {config.n_classes} spiral arms (twist {config.twist:g}) on a plane of "
            f"{config.n_features} features, {config.n_samples} samples"
        ),
    )


BAR_SHORT, BAR_LONG = 2, 5


class BarsConfig(DataConfig):
    """``data:`` of ``bars`` (see the module docstring)."""

    name: str = "bars"
    size: int = Field(16, ge=8, le=64)
    n_bars: int = Field(3, ge=1, le=8)
    noise: float = Field(0.3, ge=0)
    n_samples: int = Field(3000, ge=30)


def generate_bars(config: BarsConfig) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Images ``(n_samples, 1, size, size)`` float32 and labels ``(n_samples,)`` in
    ``0..n_bars`` (the number of long vertical bars)."""
    rng = np.random.default_rng(config.seed)
    n, s, k = config.n_samples, config.size, config.n_bars
    vertical = rng.random((n, k)) < 0.5
    long = rng.random((n, k)) < 0.5
    length = np.where(long, BAR_LONG, BAR_SHORT)
    # The bar's first pixel: along the bar it must leave room for its length.
    along = rng.integers(0, s - length + 1)
    across = rng.integers(0, s, size=(n, k))
    images = np.zeros((n, s, s), dtype=np.float32)
    step = np.arange(BAR_LONG)
    rows_idx = np.repeat(np.arange(n), k * BAR_LONG)
    pos = along[..., None] + step  # (n, k, 5): pixels along each bar
    keep = (step < length[..., None]).ravel()
    row = np.where(vertical[..., None], pos, across[..., None]).ravel()
    col = np.where(vertical[..., None], across[..., None], pos).ravel()
    images[rows_idx[keep], row[keep], col[keep]] = 1.0
    if config.noise > 0:
        images += config.noise * rng.standard_normal(images.shape).astype(np.float32)
    y = (vertical & long).sum(axis=1).astype(np.int64)
    return images[:, None], y


@register_dataset(
    "bars",
    config_model=BarsConfig,
    summary="images: count the long vertical bars among short and horizontal ones",
    cacheable=True,
)
def load_bars(config: DataConfig) -> Dataset:
    assert isinstance(config, BarsConfig)
    x, y = generate_bars(config)
    _check_classes("bars", y, config.n_bars + 1)
    return make_dataset(
        "bars",
        config,
        x,
        y,
        n_outputs=config.n_bars + 1,
        description=(
            f"bars: count long vertical bars among {config.n_bars} in {config.size}x"
            f"{config.size} images, {config.n_samples} samples"
        ),
    )


def _check_classes(name: str, y: NDArray[np.int64], n_classes: int) -> None:
    """A class with fewer than 3 samples cannot be in every split: say so, naming the task."""
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < 3:
        rare = [int(c) for c in np.flatnonzero(counts < 3)]
        raise DataError(
            f"{name}: classes {rare} have fewer than 3 samples ({counts.tolist()}); raise "
            "data.n_samples or change the task's settings"
        )
