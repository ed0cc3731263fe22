"""``factors``: tabular data generated from known, independent discrete factors.

``n_factors`` latent factors ``f0, f1, ...`` are drawn independently and uniformly from their
levels (``levels``: one int for all, or one per factor). Each level ``i`` of ``L`` is mapped to
the value ``2 i / (L - 1) - 1`` in [-1, 1], and the factor values ``v`` (shape
``(n, n_factors)``) are mixed into ``n_features`` observed features by a fixed random
nonlinear map, seeded by ``map_seed`` (not by ``seed``, so the split seed never changes the
problem)::

    h = tanh(2 v W1 / sqrt(n_factors) + b1)      W1: (n_factors, hidden), b1: (hidden,)
    x = h W2 / sqrt(hidden) + noise              W2: (hidden, n_features)

with ``W1, W2 ~ N(0, 1)``, ``b1 ~ N(0, 0.5^2)`` and Gaussian noise of ``noise`` times each
feature's standard deviation. Every factor is thus spread over every feature, and no single
feature reveals one factor: a network has to untangle them, which is what the disentanglement
metrics then measure, fast and without images.

Targets: ``task: {classify: f0}`` (one factor's levels are the classes),
``task: {classify: [f0, f1]}`` (the combination: class ``f0 * L1 + f1``, i.e. the joint level),
or ``task: {regress: all | FACTOR | [FACTOR, ...]}`` (levels as real targets, z-scored).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from codenas.data.base import DataConfig, Dataset, FactorTask, register_dataset


class FactorsConfig(DataConfig):
    """``data:`` of ``factors`` (see the module docstring)."""

    name: str = "factors"
    n_factors: int = Field(4, ge=1, le=64)
    levels: int | tuple[int, ...] = 5
    n_features: int = Field(16, ge=1)
    hidden: int = Field(32, ge=1)
    n_samples: int = Field(3000, ge=30)
    noise: float = Field(0.1, ge=0)
    map_seed: int = 0
    task: FactorTask = FactorTask(classify="f0")

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: int | tuple[int, ...]) -> int | tuple[int, ...]:
        values = (value,) if isinstance(value, int) else value
        if not values or any(v < 2 for v in values):
            raise ValueError(f"every factor needs >= 2 levels, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FactorsConfig:
        if not isinstance(self.levels, int) and len(self.levels) != self.n_factors:
            raise ValueError(
                f"levels needs one entry per factor: n_factors={self.n_factors}, got "
                f"{len(self.levels)} levels {list(self.levels)}"
            )
        columns = self.task.factor_columns(self.factor_names)
        if self.task.classify is not None:
            n_classes = math.prod(self.factor_levels[c] for c in columns)
            if n_classes > self.n_samples // 3:
                raise ValueError(
                    f"classify {list(self.factor_names[c] for c in columns)} makes {n_classes} "
                    f"classes, more than n_samples / 3 = {self.n_samples // 3}; each class "
                    "needs samples in train, validation and test"
                )
        return self

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f"f{i}" for i in range(self.n_factors))

    @property
    def factor_levels(self) -> tuple[int, ...]:
        if isinstance(self.levels, int):
            return (self.levels,) * self.n_factors
        return tuple(self.levels)


def mixing_map(
    config: FactorsConfig,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The fixed random map ``(W1, b1, W2)`` of ``config.map_seed`` (see the module docstring)."""
    rng = np.random.default_rng([config.map_seed, 0xFAC7025])
    w1 = rng.standard_normal((config.n_factors, config.hidden))
    b1 = 0.5 * rng.standard_normal(config.hidden)
    w2 = rng.standard_normal((config.hidden, config.n_features))
    return w1, b1, w2


def generate_factors(config: FactorsConfig) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Observed features and the factor levels that generated them.

    Returns:
        ``(x, levels)``: ``(n_samples, n_features)`` float64 and ``(n_samples, n_factors)``
        int64 levels, ``levels[:, j]`` in ``0..L_j-1``.
    """
    rng = np.random.default_rng(config.seed)
    top = np.asarray(config.factor_levels)
    levels = rng.integers(0, top, size=(config.n_samples, config.n_factors), dtype=np.int64)
    values = 2.0 * levels / (top - 1) - 1.0
    w1, b1, w2 = mixing_map(config)
    h = np.tanh(2.0 * values @ w1 / math.sqrt(config.n_factors) + b1)
    x = h @ w2 / math.sqrt(config.hidden)
    if config.noise > 0:
        x = x + config.noise * x.std(axis=0) * rng.standard_normal(x.shape)
    return x, levels


@register_dataset(
    "factors",
    config_model=FactorsConfig,
    summary="tabular: k independent discrete factors mixed into D features by a random net",
    factors=True,
    cacheable=True,
)
def load_factors(config: DataConfig) -> Dataset:
    """Generate the features and split them; the task is one factor, a combination, or all."""
    assert isinstance(config, FactorsConfig)
    x, levels = generate_factors(config)
    return config.task.dataset(
        "factors",
        config,
        x,
        levels,
        factor_names=config.factor_names,
        level_counts=tuple(config.factor_levels),
        description=(
            f"factors: {config.n_factors} factors ({'x'.join(map(str, config.factor_levels))} "
            f"levels) -> {config.n_features} features, {config.n_samples} samples"
        ),
    )
