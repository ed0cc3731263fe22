"""Datasets by name (config ``data.name``); each registered in the file of its family.

============  =================================================================
file          datasets
============  =================================================================
shapes.py     ``shapes``: procedural sprites with known factors (images)
factors.py    ``factors``: tabular data from known discrete factors
tasks.py      ``parity``, ``teacher``, ``spiral`` (tables), ``bars`` (images): tasks where
              the architecture matters
sklearn_data  ``digits``, ``iris``, ``wine``, ``breast_cancer``, ``diabetes``
vision.py     ``mnist``, ``fashion_mnist``, ``cifar10`` (optional torchvision)
files.py      ``npz``, ``csv``: the user's own data
============  =================================================================
"""

from codenas.data import factors as _factors  # noqa: F401  (registers the datasets)
from codenas.data import files as _files  # noqa: F401
from codenas.data import shapes as _shapes  # noqa: F401
from codenas.data import sklearn_data as _sklearn_data  # noqa: F401
from codenas.data import tasks as _tasks  # noqa: F401
from codenas.data import vision as _vision  # noqa: F401
from codenas.data.base import (
    DATASETS,
    DataConfig,
    Dataset,
    DatasetEntry,
    Split,
    make_dataset,
    register_dataset,
    split_indices,
)
from codenas.data.cache import load_dataset

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
