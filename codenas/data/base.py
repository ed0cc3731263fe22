"""The one interface every dataset shares, its registry, and the deterministic split.

A dataset is loaded once per search into in-memory tensors (:class:`Dataset`): input shape,
task, number of classes or targets, train/validation/test :class:`Split` s and, where known, the
generative factors of every sample. The split is a deterministic function of ``data.seed``; the
test part is never used for selection (it is logged, never optimised).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import model_validator

from codenas.errors import DataError, unknown_name_message
from codenas.registry import Registry
from codenas.schema import Frozen

Task = Literal["classification", "regression"]


class DataConfig(Frozen):
    """``data:`` keys every dataset accepts; datasets subclass it with their own options."""

    name: str = "digits"
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2

    @model_validator(mode="after")
    def _fractions(self) -> DataConfig:
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{key}: 0 < {key} < 1 must hold, got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                "val_fraction + test_fraction < 1 must hold, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


@dataclasses.dataclass(frozen=True)
class Split:
    """One part of a dataset: inputs, targets and optional factors, as tensors.

    Attributes:
        x: inputs, ``(n, *input_shape)`` float32.
        y: class indices ``(n,)`` int64, or regression targets ``(n, n_targets)`` float32.
        factors: generative factors ``(n, n_factors)`` int64 (discrete levels), or ``None``.
    """

    x: torch.Tensor
    y: torch.Tensor
    factors: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded dataset, split and standardised (statistics from the train part only)."""

    name: str
    task: Task
    input_shape: tuple[int, ...]
    n_outputs: int
    train: Split
    val: Split
    test: Split
    factor_names: tuple[str, ...] = ()
    description: str = ""

    @property
    def has_factors(self) -> bool:
        return self.train.factors is not None

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


class FactorTask(Frozen):
    """``data.task`` of generated data: ``{classify: FACTOR | [FACTOR, ...]}`` or
    ``{regress: all | FACTOR | [FACTOR, ...]}``.

    Classifying several factors makes their joint level the class (first factor most
    significant); regressing predicts the factors' levels as real targets (z-scored).
    """

    classify: str | tuple[str, ...] | None = None
    regress: str | tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _one(self) -> FactorTask:
        if (self.classify is None) == (self.regress is None):
            raise ValueError(
                "give exactly one of classify (a factor or a list of factors) or regress (all, "
                f"or a list of factors), got classify={self.classify!r} regress={self.regress!r}"
            )
        return self

    def factor_columns(self, names: tuple[str, ...]) -> tuple[int, ...]:
        """Indices into ``names`` of the target factors; raise ``ValueError`` on unknown ones."""
        chosen = self.classify if self.classify is not None else self.regress
        if chosen == "all":
            wanted = names
        else:
            wanted = (chosen,) if isinstance(chosen, str) else tuple(chosen or ())
        if not wanted:
            raise ValueError("the task needs at least one factor, got an empty list")
        for name in wanted:
            if name not in names:
                raise ValueError(unknown_name_message("factor", name, names))
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"each factor may be a target once, got {list(wanted)}")
        return tuple(names.index(n) for n in wanted)

    def dataset(
        self,
        name: str,
        config: DataConfig,
        x: np.ndarray,
        levels: np.ndarray,
        *,
        factor_names: tuple[str, ...],
        level_counts: tuple[int, ...],
        description: str,
    ) -> Dataset:
        """Split ``x`` with the targets this task takes from the factor ``levels``."""
        columns = self.factor_columns(factor_names)
        common: dict[str, Any] = {
            "factors": levels,
            "factor_names": factor_names,
            "description": description,
        }
        if self.classify is not None:
            sizes = [level_counts[c] for c in columns]
            y = np.ravel_multi_index(tuple(levels[:, c] for c in columns), sizes)
            return make_dataset(name, config, x, y, n_outputs=math.prod(sizes), **common)
        targets = levels[:, list(columns)].astype(np.float64)
        return make_dataset(name, config, x, targets, task="regression", **common)


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, its ``data:`` config model and a one-line summary."""

    name: str
    loader: Callable[[DataConfig], Dataset]
    config_model: type[DataConfig]
    summary: str
    factors: bool | None = False  # known factors: True, False, or None when the data decides
    cacheable: bool = False  # the loader is a function of its config alone (codenas.data.cache)


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    config_model: type[DataConfig] = DataConfig,
    summary: str,
    factors: bool | None = False,
    cacheable: bool = False,
) -> Callable[[Callable[[DataConfig], Dataset]], Callable[[DataConfig], Dataset]]:
    """Decorator registering ``loader(config) -> Dataset`` under ``name``.

    ``cacheable``: the loader's result depends on its config and code alone (no file that can
    change, no download), so it may be kept in the machine's cache (:mod:`codenas.data.cache`).
    """

    def decorator(loader: Callable[[DataConfig], Dataset]) -> Callable[[DataConfig], Dataset]:
        DATASETS.add(name, DatasetEntry(name, loader, config_model, summary, factors, cacheable))
        return loader

    return decorator


def split_indices(
    n: int,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train/validation/test row indices, a deterministic function of ``seed``.

    With ``stratify`` (class labels) each part keeps the class proportions.
    """
    from sklearn.model_selection import train_test_split

    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    n_train = n - n_test - n_val
    n_classes = len(np.unique(stratify)) if stratify is not None else 1
    if min(n_test, n_val) < max(1, n_classes) or n_train < max(2, n_classes):
        raise DataError(
            f"too few samples for the split: {n} samples give {n_train} train, {n_val} "
            f"validation and {n_test} test rows; each part needs at least "
            f"{max(1, n_classes)} (one per class)"
        )
    if stratify is not None:
        # A stratified split puts every class in every part, so each class needs 3 rows.
        classes, counts = np.unique(stratify, return_counts=True)
        rare = classes[counts < 3]
        if len(rare):
            few = counts[counts < 3]
            shown = ", ".join(
                f"{c!r}: {k}" for c, k in zip(rare[:5].tolist(), few[:5].tolist(), strict=True)
            )
            raise DataError(
                f"too few samples for the split: {len(rare)} class(es) have fewer than 3 "
                f"samples ({shown}); each class needs one in train, validation and test"
            )
    idx = np.arange(n)
    try:
        rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
        train, val = train_test_split(
            rest,
            test_size=n_val,
            random_state=seed + 1,
            stratify=None if stratify is None else stratify[rest],
        )
    except ValueError as err:  # e.g. a class with a single sample cannot be stratified
        raise DataError(f"cannot split the data: {err}") from None
    return np.sort(train), np.sort(val), np.sort(test)


def _standardise_targets(y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Regression targets ``(n, t)`` z-scored per column with the train part's statistics."""
    mean = y[train].mean(axis=0, keepdims=True)
    std = y[train].std(axis=0, keepdims=True)
    return (y - mean) / np.where(std > 1e-12, std, 1.0)


def _standardise(x: np.ndarray, train: np.ndarray, image: bool) -> np.ndarray:
    axes = (0, 2, 3) if image else (0,)
    mean = x[train].mean(axis=axes, keepdims=True)
    std = x[train].std(axis=axes, keepdims=True)
    std = np.where(std > 1e-12, std, 1.0)  # constant features stay constant (0), not NaN
    return (x - mean) / std


def make_dataset(
    name: str,
    config: DataConfig,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: Task = "classification",
    factors: np.ndarray | None = None,
    factor_names: tuple[str, ...] = (),
    n_outputs: int | None = None,
    standardise: bool = True,
    standardise_targets: bool = True,
    description: str = "",
) -> Dataset:
    """Split arrays into a :class:`Dataset`, standardising inputs on the train part.

    Args:
        name: dataset name.
        config: its ``data:`` config (seed and fractions).
        x: inputs ``(n, d)`` (tabular) or ``(n, c, h, w)`` (images).
        y: class labels ``(n,)`` in ``0..C-1`` or regression targets ``(n,)``/``(n, t)``.
        task: ``"classification"`` or ``"regression"``.
        factors: optional ``(n, n_factors)`` integer factors.
        factor_names: names of the factor columns.
        n_outputs: number of classes (default ``max(y) + 1``) or targets.
        standardise: z-score inputs per feature (tabular) or per channel (images).
        standardise_targets: for regression, z-score each target column on the train part,
            so the MSE of every target is on one scale (predicting the train mean scores ~1).
        description: one line shown by ``codenas datasets`` and logged.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (2, 4):
        raise DataError(f"{name}: x must have shape (n, features) or (n, c, h, w), got {x.shape}")
    if len(y) != len(x) or (factors is not None and len(factors) != len(x)):
        raise DataError(
            f"{name}: x, y and factors must have the same number of rows, got "
            f"{len(x)}, {len(y)} and {None if factors is None else len(factors)}"
        )
    image = x.ndim == 4
    stratify = None
    if task == "classification":
        y = np.asarray(y)
        n_outputs = int(y.max()) + 1 if n_outputs is None else n_outputs
        stratify = y
        y_t = torch.as_tensor(y.astype(np.int64))
    else:
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        n_outputs = y.shape[1] if n_outputs is None else n_outputs
    train, val, test = split_indices(
        len(x),
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
        stratify=stratify,
    )
    if task != "classification":
        if standardise_targets:
            y = _standardise_targets(y, train)
        y_t = torch.as_tensor(y.astype(np.float32))
    if standardise:
        x = _standardise(x, train, image).astype(np.float32)
    x_t = torch.as_tensor(x)
    f_t = None if factors is None else torch.as_tensor(np.asarray(factors, dtype=np.int64))

    def part(idx: np.ndarray) -> Split:
        i = torch.as_tensor(idx)
        return Split(x_t[i], y_t[i], None if f_t is None else f_t[i])

    return Dataset(
        name=name,
        task=task,
        input_shape=tuple(x.shape[1:]),
        n_outputs=int(n_outputs),
        train=part(train),
        val=part(val),
        test=part(test),
        factor_names=tuple(factor_names),
        description=description,
    )
