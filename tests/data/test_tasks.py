"""The generated tasks where the architecture matters: shapes, determinism, the labels'
definitions re-derived from the generators' own maps, and bad keys."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from codenas.config import validate_config
from codenas.data import DATASETS, DataConfig, load_dataset
from codenas.data.tasks import (
    BarsConfig,
    ParityConfig,
    SpiralConfig,
    TeacherConfig,
    _orthonormal,
    _rng,
    generate_bars,
    generate_parity,
    generate_spiral,
    generate_teacher,
    teacher_map,
)
from codenas.errors import ConfigError

SHAPES = {
    "parity": ((16,), 4),
    "teacher": ((8,), 8),
    "spiral": ((32,), 6),
    "bars": ((1, 16, 16), 4),
}


def data_config(**raw: Any) -> DataConfig:
    return validate_config({"data": raw}, "test.yaml").data


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_task_is_registered_with_its_shape_and_classes(name: str) -> None:
    data = load_dataset(data_config(name=name, n_samples=600))
    input_shape, n_outputs = SHAPES[name]
    assert data.input_shape == input_shape
    assert data.n_outputs == n_outputs
    assert len(data.train) + len(data.val) + len(data.test) == 600
    assert data.task == "classification"
    # Every class is present in every split (stratified), and nothing is constant.
    for split in (data.train, data.val, data.test):
        assert set(np.unique(split.y.numpy())) == set(range(n_outputs))
    assert float(data.train.x.std()) > 0.5
    assert "\n" not in DATASETS.get(name).summary


@pytest.mark.parametrize("name", list(SHAPES))
def test_the_same_seeds_give_the_same_data_and_another_seed_other_samples(name: str) -> None:
    a = load_dataset(data_config(name=name, n_samples=300, seed=3))
    b = load_dataset(data_config(name=name, n_samples=300, seed=3))
    c = load_dataset(data_config(name=name, n_samples=300, seed=4))
    assert np.array_equal(a.train.x.numpy(), b.train.x.numpy())
    assert np.array_equal(a.test.y.numpy(), b.test.y.numpy())
    assert not np.array_equal(a.train.x.numpy(), c.train.x.numpy())


def test_parity_labels_are_two_parities_of_the_latent_signs() -> None:
    config = ParityConfig(n_samples=2000, noise=0.0)
    x, y = generate_parity(config)
    k = config.n_bits + config.n_distractors
    embed = _orthonormal(_rng(config.task_seed, "parity"), config.n_features, k).T
    z = x @ embed.T  # the rows of embed are orthonormal: this undoes the embedding
    bits = (z[:, : config.n_bits] > 0).astype(int)
    expected = 2 * (bits[:, :3].sum(1) % 2) + bits[:, 3:].sum(1) % 2
    assert np.array_equal(y, expected)
    # No single feature tells the label: every class has about the same mean of each feature.
    means = np.stack([x[y == c].mean(axis=0) for c in range(4)])
    assert np.abs(means).max() < 0.15
    assert np.bincount(y).min() > 400


def test_the_problem_depends_on_task_seed_not_on_the_sample_seed() -> None:
    base = teacher_map(TeacherConfig(seed=0))
    assert all(
        np.array_equal(a, b) for a, b in zip(base, teacher_map(TeacherConfig(seed=5)), strict=True)
    )
    other = teacher_map(TeacherConfig(task_seed=1))
    assert not np.array_equal(base[0], other[0])
    x, y = generate_teacher(TeacherConfig(n_samples=500))
    w1, b1, w2 = base
    assert np.array_equal(y, np.argmax(np.cos(1.5 * x @ w1 + b1) @ w2, axis=1))


def test_spiral_labels_ignore_every_direction_off_the_plane() -> None:
    config = SpiralConfig(n_samples=500)
    x, y = generate_spiral(config)
    p = _orthonormal(_rng(config.task_seed, "spiral"), config.n_features, 2)
    off = np.random.default_rng(1).standard_normal(x.shape)
    off -= off @ p @ p.T  # remove the part in the plane
    u = (x + off) @ p
    turns = (np.arctan2(u[:, 1], u[:, 0]) + 2.0 * np.hypot(u[:, 0], u[:, 1])) / (2 * np.pi)
    assert np.array_equal(y, np.floor(6 * np.mod(turns, 1.0)).astype(int))


def test_bars_label_counts_long_vertical_runs() -> None:
    images, y = generate_bars(BarsConfig(n_bars=1, noise=0.0, n_samples=400))
    img = images[:, 0]
    assert images.shape == (400, 1, 16, 16)
    # One bar: the label is 1 exactly when some column has 5 lit pixels in a row.
    runs = np.zeros(len(img), dtype=bool)
    for r in range(16 - 4):
        runs |= (img[:, r : r + 5, :].sum(axis=1) == 5).any(axis=1)
    assert np.array_equal(y == 1, runs)
    assert set(img.sum(axis=(1, 2)).tolist()) == {2.0, 5.0}  # short or long, nothing else
    assert 0.15 < y.mean() < 0.35  # a long vertical bar is one draw in four


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "parity", "n_bits": 1}, r"data\.n_bits"),
        ({"name": "parity", "n_bits": 10, "n_distractors": 8}, r"n_bits \+ n_distractors"),
        ({"name": "teacher", "widht": 3}, r"data\.widht: unknown key"),
        ({"name": "spiral", "n_classes": 500}, r"n_classes <= n_samples / 30"),
        ({"name": "bars", "size": 4}, r"data\.size"),
        ({"name": "teacher", "frequency": 0}, r"data\.frequency"),
    ],
)
def test_bad_task_keys_are_config_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        data_config(**raw)
