"""Datasets by name (config ``data.name``); each registered in the file of its family."""

from codenas.search.datasets import sklearn_data as _sklearn_data  # noqa: F401
from codenas.search.datasets.base import (
    DATASETS,
    DataConfig,
    Dataset,
    DatasetEntry,
    Split,
    load_dataset,
    make_dataset,
    register_dataset,
    split_indices,
)

__all__ = [
    "DATASETS",
    "DataConfig",
    "Dataset",
    "DatasetEntry",
    "Split",
    "load_dataset",
    "make_dataset",
    "register_dataset",
    "split_indices",
]
