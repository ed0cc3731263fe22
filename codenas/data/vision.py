"""torchvision's ``mnist``, ``fashion_mnist`` and ``cifar10`` (optional: ``codenas[vision]``).

torchvision is imported only when one of these is loaded, so codenas works without it. The
files are read from ``data.root`` (torchvision's own layout beneath it); nothing is downloaded
unless ``data.download: true``. torchvision's train and test parts are pooled and split again
by codenas's deterministic seeded split, like every other dataset; ``n_samples`` draws a seeded
subsample of the pool first, which keeps a CPU search short.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from codenas.data.base import DataConfig, Dataset, make_dataset, register_dataset
from codenas.errors import DataError, first_line


class VisionConfig(DataConfig):
    """``data:`` of the torchvision datasets."""

    root: str = "data"
    download: bool = False
    n_samples: int | None = Field(None, ge=30)  # seeded subsample of train + test; None: all


# name -> (torchvision class, what it is, approximate download size)
_DATASETS: dict[str, tuple[str, str, str]] = {
    "mnist": ("MNIST", "70,000 28x28 handwritten digits, 10 classes", "12 MB"),
    "fashion_mnist": ("FashionMNIST", "70,000 28x28 clothing images, 10 classes", "30 MB"),
    "cifar10": ("CIFAR10", "60,000 32x32 colour images, 10 classes", "170 MB"),
}


def _torchvision_datasets(name: str) -> Any:
    try:
        import torchvision.datasets
    except ImportError:
        raise DataError(
            f"data.name: {name!r} needs torchvision, which is not installed; install the "
            "optional extra: pip install 'codenas[vision]'"
        ) from None
    return torchvision.datasets


def _read(name: str, config: VisionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, c, h, w)`` uint8 and labels ``(n,)`` of torchvision's train + test parts."""
    from pathlib import Path

    cls_name, _, size = _DATASETS[name]
    cls = getattr(_torchvision_datasets(name), cls_name)
    root = Path(config.root).expanduser()
    images, labels = [], []
    for train in (True, False):
        try:
            part = cls(root=str(root), train=train, download=config.download)
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError, ...
            if config.download:
                raise DataError(
                    f"{name}: downloading into data.root={str(root)!r} failed "
                    f"({first_line(err, None)}); check the network, or download the files on "
                    f"another machine and place them under data.root"
                ) from None
            raise DataError(
                f"{name}: no {cls_name} files under data.root={str(root)!r} "
                f"({first_line(err, None)}); set data.download: true to download them (about "
                f"{size}), or place torchvision's {cls_name} files under that root"
            ) from None
        images.append(np.asarray(part.data))
        labels.append(np.asarray(part.targets))
    x, y = np.concatenate(images), np.concatenate(labels).astype(np.int64)
    if x.ndim == 3:  # grayscale (n, h, w)
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):  # CIFAR keeps channels last
        x = x.transpose(0, 3, 1, 2)
    return x, y


def _load(name: str, config: DataConfig) -> Dataset:
    assert isinstance(config, VisionConfig)
    x, y = _read(name, config)
    if config.n_samples is not None and config.n_samples < len(x):
        rows = np.sort(
            np.random.default_rng(config.seed).choice(len(x), config.n_samples, replace=False)
        )
        x, y = x[rows], y[rows]
    return make_dataset(
        name,
        config,
        x.astype(np.float32) / 255.0,
        y,
        n_outputs=10,
        description=f"torchvision {name}: {_DATASETS[name][1]} ({len(x)} used)",
    )


def _register(name: str) -> None:
    cls_name, what, _ = _DATASETS[name]
    summary = f"torchvision's {cls_name}: {what} (needs codenas[vision])"

    @register_dataset(name, config_model=VisionConfig, summary=summary)
    def load(config: DataConfig) -> Dataset:
        return _load(name, config)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"torchvision's {cls_name}: {what}."


for _name in _DATASETS:
    _register(_name)
