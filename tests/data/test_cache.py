"""Bundled and generated datasets are loaded once per machine (issue 21: scikit-learn and its
scipy.stats were imported in front of every search only to read the digits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codenas.config import load_config
from codenas.data import load_dataset
from codenas.data.base import DATASETS, Dataset
from codenas.data.cache import entry_path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODENAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CODENAS_NO_DATA_CACHE", raising=False)
    return tmp_path / "cache" / "datasets"


def _same(a: Dataset, b: Dataset) -> bool:
    for part in ("train", "val", "test"):
        x, y = getattr(a, part), getattr(b, part)
        if not (torch.equal(x.x, y.x) and torch.equal(x.y, y.y)):
            return False
        if (x.factors is None) != (y.factors is None):
            return False
        if x.factors is not None and not torch.equal(x.factors, y.factors):
            return False
    keys = ("name", "task", "input_shape", "n_outputs", "factor_names", "description")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


@pytest.mark.parametrize(
    "overrides",
    [[], ["data={name: factors, n_samples: 600}"], ["data={name: diabetes}"]],
    ids=["digits", "factors", "diabetes"],
)
def test_a_cached_dataset_is_the_dataset(
    cache: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str]
) -> None:
    config = load_config(None, overrides).data
    monkeypatch.setenv("CODENAS_NO_DATA_CACHE", "1")
    fresh = load_dataset(config)
    assert not cache.exists()  # turned off: nothing written
    monkeypatch.delenv("CODENAS_NO_DATA_CACHE")
    first = load_dataset(config)
    assert [p.name for p in cache.iterdir()] == [entry_path(config.name, config).name]
    second = load_dataset(config)
    assert _same(fresh, first) and _same(fresh, second)


def test_the_key_follows_the_config_and_a_broken_entry_is_recomputed(cache: Path) -> None:
    config = load_config(None, []).data
    other = load_config(None, ["data.seed=1"]).data
    assert entry_path(config.name, config) != entry_path(other.name, other)
    data = load_dataset(config)
    path = entry_path(config.name, config)
    path.write_bytes(b"truncated")
    again = load_dataset(config)
    assert _same(data, again)
    assert path.stat().st_size > 1000  # written again, whole


def test_only_datasets_that_are_functions_of_their_config_are_cached() -> None:
    cached = {name for name in DATASETS if DATASETS.get(name).cacheable}
    # Files can change under the same config; downloads are cached by torchvision itself.
    assert not cached & {"csv", "npz", "mnist", "fashion_mnist", "cifar10"}
    assert {"digits", "factors", "shapes", "parity", "teacher", "spiral", "bars"} <= cached


def test_a_warm_cache_spares_scikit_learn_and_scipy(cache: Path) -> None:
    load_dataset(load_config(None, []).data)  # warms it
    code = (
        "import sys; from codenas.config import load_config; from codenas.data import "
        "load_dataset; d = load_dataset(load_config(None, []).data); "
        "print(len(d.train), 'sklearn' in sys.modules, 'scipy.stats' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1:] == ["False", "False"], out
    assert int(out[0]) > 1000
