"""Datasets bundled with scikit-learn: real data, no download."""

from __future__ import annotations

from codenas.search.datasets.base import DataConfig, Dataset, make_dataset, register_dataset


@register_dataset(
    "digits", summary="scikit-learn's 1,797 real 8x8 handwritten digits, 10 classes (bundled)"
)
def load_digits(config: DataConfig) -> Dataset:
    """scikit-learn's digits as ``(1, 8, 8)`` images, standardised per channel on train."""
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    x = bunch.images.reshape(-1, 1, 8, 8)
    return make_dataset(
        "digits", config, x, bunch.target, description="scikit-learn digits (8x8, 10 classes)"
    )
