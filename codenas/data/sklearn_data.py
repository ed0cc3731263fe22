"""Datasets bundled with scikit-learn: real data, no download.

``digits`` are 8x8 images (a CNN or an MLP can take them); the others are small tables
(MLP only). ``diabetes`` is a regression task: its target is z-scored on the train part.
"""

from __future__ import annotations

from codenas.data.base import (
    DataConfig,
    Dataset,
    Task,
    make_dataset,
    register_dataset,
)


@register_dataset(
    "digits",
    summary="scikit-learn's 1,797 real 8x8 handwritten digits, 10 classes (bundled)",
    cacheable=True,
)
def load_digits(config: DataConfig) -> Dataset:
    """scikit-learn's digits as ``(1, 8, 8)`` images, standardised per channel on train."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = bunch.images.reshape(-1, 1, 8, 8)
    return make_dataset(
        "digits", config, x, bunch.target, description="scikit-learn digits (8x8, 10 classes)"
    )


def _table(
    name: str,
    config: DataConfig,
    loader_name: str,
    description: str,
    task: Task = "classification",
) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    return make_dataset(name, config, bunch.data, bunch.target, task=task, description=description)


@register_dataset(
    "iris",
    summary="scikit-learn's iris: 150 flowers, 4 measurements, 3 species (bundled)",
    cacheable=True,
)
def load_iris(config: DataConfig) -> Dataset:
    """Fisher's iris: ``(150, 4)`` features, 3 classes."""
    return _table("iris", config, "load_iris", "scikit-learn iris (4 features, 3 classes)")


@register_dataset(
    "wine",
    summary="scikit-learn's wine: 178 wines, 13 chemical features, 3 cultivars (bundled)",
    cacheable=True,
)
def load_wine(config: DataConfig) -> Dataset:
    """UCI wine recognition: ``(178, 13)`` features, 3 classes."""
    return _table("wine", config, "load_wine", "scikit-learn wine (13 features, 3 classes)")


@register_dataset(
    "breast_cancer",
    summary="scikit-learn's breast cancer: 569 tumours, 30 features, benign/malignant (bundled)",
    cacheable=True,
)
def load_breast_cancer(config: DataConfig) -> Dataset:
    """Wisconsin diagnostic breast cancer: ``(569, 30)`` features, 2 classes."""
    return _table(
        "breast_cancer",
        config,
        "load_breast_cancer",
        "scikit-learn breast cancer (30 features, 2 classes)",
    )


@register_dataset(
    "diabetes",
    summary="scikit-learn's diabetes: 442 patients, 10 features, disease progression (regression)",
    cacheable=True,
)
def load_diabetes(config: DataConfig) -> Dataset:
    """Diabetes progression after one year: ``(442, 10)`` features, one real target."""
    return _table(
        "diabetes",
        config,
        "load_diabetes",
        "scikit-learn diabetes (10 features, regression)",
        task="regression",
    )
