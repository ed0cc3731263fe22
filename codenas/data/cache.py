"""Datasets loaded once per machine: the split, standardised tensors of a dataset whose loader
is a function of its ``data:`` config alone (the bundled and generated ones).

Loading scikit-learn's digits costs about 1.1 s before any row is read, most of it importing
scikit-learn (which imports scipy.stats), and every command of every search in a fresh process
paid it. A cached dataset is one ``torch.load`` (tens of milliseconds). The key is the dataset's
name and config, the installed numpy, scikit-learn and torch versions, and the source text of
every module of :mod:`codenas.data` (loaders, split and standardisation), so that a change to
any of them makes a new entry instead of reading a stale one. File datasets (``npz``, ``csv``)
and downloaded ones are never cached: their files can change under the same config.

Entries are written atomically (a temporary file, then a rename); an entry that cannot be read
is recomputed. ``CODENAS_NO_DATA_CACHE=1`` turns the cache off; the directory is
:func:`codenas.cache.cache_dir` (``datasets/`` in it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from codenas.cache import cache_dir
from codenas.data.base import DATASETS, DataConfig, Dataset, Split

_log = logging.getLogger(__name__)
FORMAT = 1  # bump when the stored layout changes


@functools.cache
def _sources_digest() -> str:
    """One digest of the source text of every module of this package."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def entry_path(name: str, config: DataConfig) -> Path:
    """Where the dataset ``name`` loaded with ``config`` is cached."""
    key = {
        "format": FORMAT,
        "name": name,
        "config": config.model_dump(mode="json"),
        "versions": [_version(p) for p in ("numpy", "scikit-learn", "torch")],
        "sources": _sources_digest(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir() / "datasets" / f"{name}-{digest}.pt"


def _split_dict(split: Split) -> dict[str, Any]:
    return {"x": split.x, "y": split.y, "factors": split.factors}


def _write(path: Path, data: Dataset) -> None:
    import torch

    payload = {
        "name": data.name,
        "task": data.task,
        "input_shape": list(data.input_shape),
        "n_outputs": data.n_outputs,
        "factor_names": list(data.factor_names),
        "description": data.description,
        **{part: _split_dict(getattr(data, part)) for part in ("train", "val", "test")},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> Dataset:
    import torch

    p = torch.load(path, map_location="cpu", weights_only=True)
    return Dataset(
        name=p["name"],
        task=p["task"],
        input_shape=tuple(p["input_shape"]),
        n_outputs=int(p["n_outputs"]),
        train=Split(**p["train"]),
        val=Split(**p["val"]),
        test=Split(**p["test"]),
        factor_names=tuple(p["factor_names"]),
        description=p["description"],
    )


def load_cached(name: str, config: DataConfig, loader: Callable[[DataConfig], Dataset]) -> Dataset:
    """``loader(config)``, read from the cache when it holds it, else computed and stored."""
    if os.environ.get("CODENAS_NO_DATA_CACHE"):
        return loader(config)
    try:
        path = entry_path(name, config)
    except OSError as err:  # a source file we cannot read: no key, no cache
        _log.debug("dataset cache off for %s: %s", name, err)
        return loader(config)
    if path.exists():
        try:
            return _read(path)
        except Exception as err:  # a truncated or foreign file: recompute it
            _log.warning("dataset cache entry %s could not be read (%s); recomputing", path, err)
    data = loader(config)
    try:
        _write(path, data)
    except OSError as err:  # a read-only or full cache directory costs speed, not the search
        _log.warning("could not cache dataset %s in %s: %s", name, path.parent, err)
    return data


def load_dataset(config: DataConfig) -> Dataset:
    """Load, split and standardise the dataset ``config.name`` (from the machine's cache for
    a dataset registered ``cacheable``)."""
    entry = DATASETS.get(config.name)
    if entry.cacheable:
        return load_cached(config.name, config, entry.loader)
    return entry.loader(config)
