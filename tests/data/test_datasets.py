"""Datasets: the registry, the generators' factors, deterministic splits, and every bad input."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from codenas.config import validate_config
from codenas.data import (
    DATASETS,
    DataConfig,
    Dataset,
    load_dataset,
    split_indices,
)
from codenas.data.factors import FactorsConfig, generate_factors
from codenas.data.shapes import (
    FACTORS,
    RADIUS,
    SPRITES,
    ShapesConfig,
    generate_shapes,
    render_sprites,
)
from codenas.errors import ConfigError, DataError

SMALL_SHAPES = {"name": "shapes", "n_samples": 300}
SMALL_FACTORS = {"name": "factors", "n_samples": 300}


def data_config(**raw: Any) -> DataConfig:
    """The validated ``data:`` section of a config with these keys."""
    return validate_config({"data": raw}, "test.yaml").data


def load(**raw: Any) -> Dataset:
    return load_dataset(data_config(**raw))


def all_rows(d: Dataset) -> list[torch.Tensor]:
    return [d.train.x, d.val.x, d.test.x]


# ----------------------------------------------------------------------------- registry


def test_registry_names_every_dataset_with_its_config_model() -> None:
    expected = {
        "shapes",
        "factors",
        "digits",
        "iris",
        "wine",
        "breast_cancer",
        "diabetes",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "npz",
        "csv",
    }
    assert expected <= set(DATASETS)
    for name in expected:
        entry = DATASETS.get(name)
        assert issubclass(entry.config_model, DataConfig)
        assert entry.summary and "\n" not in entry.summary
    assert DATASETS.get("shapes").factors is True
    assert DATASETS.get("factors").factors is True
    assert DATASETS.get("csv").factors is None
    assert DATASETS.get("wine").factors is False


def test_cli_lists_the_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    from codenas.cli import main

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("shapes", "factors", "wine", "fashion_mnist", "npz", "csv"):
        assert name in out


def test_unknown_data_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data\.sise: unknown key 'sise'"):
        data_config(name="shapes", sise=32)


# ----------------------------------------------------------------------------- shapes


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img)
    return float(cols.mean()), float(rows.mean())


def render_one(
    shape: int = 2,
    scale: float = 1.0,
    angle: float = 0.0,
    x: float = 0.5,
    y: float = 0.5,
    size: int = 64,
) -> np.ndarray:
    return render_sprites(
        np.array([shape]),
        np.array([scale]),
        np.array([angle]),
        np.array([x]),
        np.array([y]),
        size=size,
    )[0]


@pytest.mark.parametrize("shape", range(len(SPRITES)))
def test_sprite_centre_of_mass_follows_x_and_y(shape: int) -> None:
    size = 64
    for x in (0.25, 0.5, 0.75):
        for y in (0.3, 0.7):
            cx, cy = centre_of_mass(render_one(shape, x=x, y=y, angle=0.4, size=size))
            # Pixel (col, row) centres sit at (i + 0.5) / size; the sprite's centroid is (x, y).
            assert (cx + 0.5) / size == pytest.approx(x, abs=0.02)
            assert (cy + 0.5) / size == pytest.approx(y, abs=0.02)


@pytest.mark.parametrize("shape", range(len(SPRITES)))
def test_sprite_area_grows_with_scale_squared(shape: int) -> None:
    # Fine pixels, so that the area is not dominated by rounding at the sprite's edge.
    areas = [int(render_one(shape, scale=s, size=256).sum()) for s in (0.5, 0.75, 1.0)]
    assert areas[0] < areas[1] < areas[2]
    assert areas[2] / areas[0] == pytest.approx(4.0, rel=0.05)
    # Every sprite fits in its circumscribed circle: area < pi r^2.
    assert areas[2] < np.pi * (RADIUS * 256) ** 2


def test_orientation_changes_the_image_and_keeps_the_area() -> None:
    upright = render_one(2, angle=0.0)
    turned = render_one(2, angle=np.pi / 2)
    assert (upright != turned).sum() > 0.2 * upright.sum()
    assert turned.sum() == pytest.approx(upright.sum(), rel=0.05)
    # The heart's tip points down when upright and right after a quarter turn counter-clockwise.
    rows, cols = np.nonzero(upright)
    assert rows.max() - 32 > 32 - rows.min()
    rows, cols = np.nonzero(turned)
    assert cols.max() - 32 > 32 - cols.min()


def test_sprites_differ_and_fit_their_circle_at_every_orientation() -> None:
    imgs = [render_one(k, angle=np.pi / 4) for k in range(len(SPRITES))]
    assert len({img.tobytes() for img in imgs}) == len(SPRITES)
    # Within RADIUS of the centroid at scale 1, so the position grid keeps sprites inside.
    size = 256
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    for k in range(len(SPRITES)):
        imgs = render_sprites(
            np.full(12, k), np.ones(12), angles, np.full(12, 0.5), np.full(12, 0.5), size=size
        )
        _, rows, cols = np.nonzero(imgs)
        dist = np.hypot((cols + 0.5) / size - 0.5, (rows + 0.5) / size - 0.5)
        assert dist.max() <= RADIUS + 1e-6
        assert dist.max() > 0.95 * RADIUS  # and reaches it: the circle is tight


def test_generated_images_agree_with_their_factors() -> None:
    cfg = ShapesConfig(n_samples=600, size=32)
    images, levels = generate_shapes(cfg)
    assert images.shape == (600, 1, 32, 32) and images.dtype == np.uint8
    assert levels.shape == (600, len(FACTORS))
    assert len({tuple(row) for row in levels.tolist()}) == 600  # grid points, no repeats
    area = images.sum(axis=(1, 2, 3))
    cols = np.arange(32)[None, :]
    cx = (images[:, 0].sum(axis=1) * cols).sum(axis=1) / area
    cy = (images[:, 0].sum(axis=2) * cols).sum(axis=1) / area
    assert np.corrcoef(cx, levels[:, 3])[0, 1] > 0.99  # x level -> column
    assert np.corrcoef(cy, levels[:, 4])[0, 1] > 0.99  # y level -> row
    assert np.corrcoef(area, levels[:, 1])[0, 1] > 0.9  # scale level -> area


def test_shapes_dataset_carries_factors_and_is_deterministic() -> None:
    d = load(**SMALL_SHAPES)
    assert d.task == "classification" and d.input_shape == (1, 32, 32) and d.n_outputs == 3
    assert d.factor_names == FACTORS and d.has_factors and d.is_image
    assert d.train.factors is not None and d.train.factors.dtype == torch.int64
    assert torch.equal(d.train.y, d.train.factors[:, 0])
    again = load(**SMALL_SHAPES)
    assert torch.equal(d.train.x, again.train.x) and torch.equal(d.test.factors, again.test.factors)
    other = load(**SMALL_SHAPES, seed=1)
    assert not torch.equal(d.train.factors, other.train.factors)


def test_shapes_splits_are_disjoint() -> None:
    d = load(**SMALL_SHAPES)
    parts = [{tuple(r) for r in s.factors.tolist()} for s in (d.train, d.val, d.test)]
    assert sum(map(len, parts)) == 300
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


@pytest.mark.parametrize("factor", FACTORS)
def test_shapes_classify_any_factor(factor: str) -> None:
    d = load(name="shapes", n_samples=900, positions=4, orientations=4, task={"classify": factor})
    col = FACTORS.index(factor)
    assert d.n_outputs == ShapesConfig(n_samples=900, positions=4, orientations=4).levels[col]
    assert torch.equal(d.val.y, d.val.factors[:, col])


def test_shapes_classify_a_combination_of_factors_by_joint_level() -> None:
    d = load(name="shapes", n_samples=900, positions=4, task={"classify": ["shape", "x"]})
    assert d.n_outputs == 3 * 4
    assert torch.equal(d.val.y, d.val.factors[:, 0] * 4 + d.val.factors[:, 3])


def test_shapes_regress_all_factors() -> None:
    d = load(**SMALL_SHAPES, task={"regress": "all"})
    assert d.task == "regression" and d.n_outputs == 5
    assert d.train.y.shape == (len(d.train), 5) and d.train.y.dtype == torch.float32
    # Targets are the levels, z-scored on train: mean 0, std 1, same order as the factors.
    assert d.train.y.mean(0).abs().max() < 1e-4
    assert np.corrcoef(d.train.y[:, 3], d.train.factors[:, 3])[0, 1] > 0.999


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"size": 48}, r"data\.size: Input should be 32 or 64"),
        ({"task": {"classify": "colour"}}, r"unknown factor 'colour'.*Available: orientation"),
        ({"task": {"classify": "shape", "regress": "all"}}, "exactly one of classify"),
        ({"n_samples": 10**7}, r"n_samples <= grid size must hold, got n_samples=10000000"),
    ],
)
def test_shapes_bad_config(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        data_config(name="shapes", **data)


def test_shapes_cache_round_trip_and_mismatch(tmp_path: Path) -> None:
    cache = tmp_path / "sprites" / "shapes.npz"
    first = generate_shapes(ShapesConfig(n_samples=100, cache=str(cache)))
    assert cache.is_file()
    again = generate_shapes(ShapesConfig(n_samples=100, cache=str(cache)))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    with pytest.raises(DataError, match=r"other settings \(n_samples=100 \(now 120\)\)"):
        generate_shapes(ShapesConfig(n_samples=120, cache=str(cache)))
    cache.write_text("not a zip")
    with pytest.raises(DataError, match=r"cannot read .* as a shapes cache"):
        generate_shapes(ShapesConfig(n_samples=100, cache=str(cache)))


# ----------------------------------------------------------------------------- factors


def test_factors_dataset_shapes_and_task() -> None:
    d = load(**SMALL_FACTORS)
    assert (d.input_shape, d.n_outputs) == ((16,), 5)
    assert d.factor_names == ("f0", "f1", "f2", "f3")
    assert torch.equal(d.train.y, d.train.factors[:, 0])
    joint = load(**SMALL_FACTORS, task={"classify": ["f1", "f2"]}, levels=[2, 3, 4, 2])
    assert joint.n_outputs == 12
    f = joint.train.factors
    assert torch.equal(joint.train.y, f[:, 1] * 4 + f[:, 2])
    reg = load(**SMALL_FACTORS, task={"regress": ["f2", "f0"]})
    assert reg.task == "regression" and reg.n_outputs == 2


def test_factors_are_independent_and_mixed_into_every_feature() -> None:
    x, levels = generate_factors(FactorsConfig(n_samples=3000))
    corr = np.corrcoef(levels.T)
    assert np.abs(corr - np.eye(4)).max() < 0.08  # independent draws
    # Each factor moves several features: no feature is a copy of one factor.
    link = np.abs(np.corrcoef(np.hstack([levels, x]).T)[:4, 4:])
    assert (link.max(axis=1) < 0.99).all() and ((link > 0.1).sum(axis=1) >= 3).all()


def test_factors_map_seed_fixes_the_problem_and_seed_the_sample() -> None:
    a, la = generate_factors(FactorsConfig(n_samples=100, noise=0))
    b, lb = generate_factors(FactorsConfig(n_samples=100, noise=0, seed=1))
    c, lc = generate_factors(FactorsConfig(n_samples=100, noise=0, map_seed=1))
    assert not np.array_equal(la, lb) and np.array_equal(la, lc)
    assert not np.allclose(a, c)
    # Same factor vector, same map -> same features, whatever the sample seed.
    row_a = {tuple(r): x for r, x in zip(la.tolist(), a, strict=True)}
    shared = [
        (x, row_a[tuple(r)]) for r, x in zip(lb.tolist(), b, strict=True) if tuple(r) in row_a
    ]
    assert shared and all(np.allclose(u, v) for u, v in shared)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"levels": [3, 3]}, r"levels needs one entry per factor: n_factors=4, got 2"),
        ({"levels": 1}, r"every factor needs >= 2 levels"),
        ({"task": {"classify": "f9"}}, r"unknown factor 'f9'"),
        ({"task": {"classify": ["f0", "f1", "f2"]}, "n_samples": 60}, "makes 125 classes"),
    ],
)
def test_factors_bad_config(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        data_config(name="factors", **data)


# ----------------------------------------------------------------------------- scikit-learn


@pytest.mark.parametrize(
    ("name", "shape", "n_outputs", "task"),
    [
        ("digits", (1, 8, 8), 10, "classification"),
        ("iris", (4,), 3, "classification"),
        ("wine", (13,), 3, "classification"),
        ("breast_cancer", (30,), 2, "classification"),
        ("diabetes", (10,), 1, "regression"),
    ],
)
def test_sklearn_datasets(name: str, shape: tuple[int, ...], n_outputs: int, task: str) -> None:
    d = load(name=name)
    assert (d.input_shape, d.n_outputs, d.task, d.has_factors) == (shape, n_outputs, task, False)
    # Inputs standardised with the train part's statistics.
    assert d.train.x.mean().abs() < 1e-4


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("data", [SMALL_SHAPES, SMALL_FACTORS, {"name": "wine"}])
def test_split_is_deterministic(data: dict[str, Any]) -> None:
    a, b = load(**data), load(**data)
    for x, y in zip(all_rows(a), all_rows(b), strict=True):
        assert torch.equal(x, y)


def test_split_indices_disjoint_cover_and_seeded() -> None:
    labels = np.arange(500) % 5
    train, val, test = split_indices(
        500, val_fraction=0.2, test_fraction=0.1, seed=3, stratify=labels
    )
    assert (len(train), len(val), len(test)) == (350, 100, 50)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(500))
    again = split_indices(500, val_fraction=0.2, test_fraction=0.1, seed=3, stratify=labels)
    assert all(np.array_equal(p, q) for p, q in zip((train, val, test), again, strict=True))
    other = split_indices(500, val_fraction=0.2, test_fraction=0.1, seed=4, stratify=labels)
    assert not np.array_equal(test, other[2])
    assert set(np.bincount(labels[test])) == {10}  # stratified


def test_split_needs_every_class_three_times() -> None:
    labels = np.array([0] * 20 + [1] * 20 + [2] * 2)
    with pytest.raises(
        DataError,
        match=r"too few samples for the split: 1 class\(es\) have "
        r"fewer than 3 samples \(2: 2\)",
    ):
        split_indices(42, val_fraction=0.2, test_fraction=0.2, seed=0, stratify=labels)


# ----------------------------------------------------------------------------- torchvision


def test_vision_without_torchvision_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails even if installed
    for name in ("mnist", "fashion_mnist", "cifar10"):
        with pytest.raises(DataError, match=r"needs torchvision.*pip install 'codenas\[vision\]'"):
            load(name=name)


def fake_torchvision(monkeypatch: pytest.MonkeyPatch, factory: Any) -> list[dict[str, Any]]:
    """Install a stand-in ``torchvision.datasets`` whose classes call ``factory``."""
    calls: list[dict[str, Any]] = []

    def make(cls_name: str) -> Any:
        def cls(**kwargs: Any) -> Any:
            calls.append({"cls": cls_name, **kwargs})
            return factory(cls_name, **kwargs)

        return cls

    datasets = types.ModuleType("torchvision.datasets")
    for cls_name in ("MNIST", "FashionMNIST", "CIFAR10"):
        setattr(datasets, cls_name, make(cls_name))
    package = types.ModuleType("torchvision")
    package.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    return calls


def test_vision_missing_files_say_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def missing(cls_name: str, **_: Any) -> Any:
        raise RuntimeError("Dataset not found. You can use download=True to download it")

    calls = fake_torchvision(monkeypatch, missing)
    with pytest.raises(
        DataError,
        match=(
            r"fashion_mnist: no FashionMNIST files under data.root='.*vis' \(Dataset not found.*"
            r"set data.download: true to download them .*or place torchvision's FashionMNIST"
        ),
    ):
        load(name="fashion_mnist", root=str(tmp_path / "vis"))
    assert calls[0]["download"] is False  # nothing is downloaded unless asked


def test_vision_failed_download_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(cls_name: str, **_: Any) -> Any:
        raise OSError("[Errno -3] Temporary failure in name resolution")

    calls = fake_torchvision(monkeypatch, offline)
    with pytest.raises(
        DataError,
        match=r"mnist: downloading into data.root=.* failed "
        r"\(\[Errno -3\] Temporary failure",
    ):
        load(name="mnist", download=True)
    assert calls[0]["download"] is True


def test_vision_reads_torchvision_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    def cifar(cls_name: str, train: bool, **_: Any) -> Any:
        n = 60 if train else 30
        rng = np.random.default_rng(int(train))
        return types.SimpleNamespace(
            data=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),  # channels last
            targets=list(np.arange(n) % 10),
        )

    fake_torchvision(monkeypatch, cifar)
    d = load(name="cifar10", n_samples=60)
    assert d.input_shape == (3, 32, 32) and d.n_outputs == 10
    assert len(d.train) + len(d.val) + len(d.test) == 60


# ----------------------------------------------------------------------------- user files


def write_npz(path: Path, **arrays: Any) -> str:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return str(path)


def good_arrays(n: int = 60, classes: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((n, 5)),
        "y": np.arange(n) % classes,
        "factors": np.stack([np.arange(n) % classes, 10 * (np.arange(n) % 4)], axis=1),
    }


def test_npz_loads_arrays_and_renumbers_factors(tmp_path: Path) -> None:
    arrays = good_arrays()
    path = write_npz(tmp_path / "d.npz", **arrays, factor_names=np.array(["cls", "tens"]))
    d = load(name="npz", path=path)
    assert d.input_shape == (5,) and d.n_outputs == 3 and d.factor_names == ("cls", "tens")
    assert set(torch.cat([d.train.factors[:, 1], d.val.factors[:, 1]]).tolist()) <= {0, 1, 2, 3}
    images = write_npz(tmp_path / "img.npz", x=np.zeros((60, 6, 6)), y=np.arange(60) % 2)
    assert load(name="npz", path=images).input_shape == (1, 6, 6)
    reg = write_npz(tmp_path / "r.npz", x=arrays["x"], y=np.linspace(0, 1, 60))
    r = load(name="npz", path=reg, task="regression")
    assert r.task == "regression" and r.n_outputs == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": np.zeros(60)}, r"x must have shape \(n, features\).*got \(60,\); one feature"),
        ({"x": np.zeros((60, 2, 2, 2, 2))}, r"x must have shape .*got \(60, 2, 2, 2, 2\)"),
        ({"y": np.arange(59) % 3}, r"x and y must have the same number of rows, got 60 and 59"),
        ({"y": np.zeros((60, 2))}, r"y must have shape \(n,\) for classification, got \(60, 2\)"),
        ({"factors": np.zeros((50, 2))}, r"factors must have shape \(n, n_factors\) with n = 60"),
        (
            {"x": np.where(np.eye(60, 5) > 0, np.nan, 1.0)},
            r"x has 5 NaN or infinite value\(s\) in 5 row\(s\), first in row 0",
        ),
        ({"x": np.full((60, 5), np.inf)}, r"x has 300 NaN or infinite"),
        ({"y": np.arange(60) % 3 + 0.5}, r"y \(class labels 0..C-1\) must be integers, got 0.5"),
        ({"y": np.arange(60) % 3 - 1}, r"got negative label -1"),
        ({"y": (np.arange(60) % 3) * 2}, r"labels 0..4 with 1, 3 missing; renumber"),
        ({"y": np.zeros(60)}, r"only one class \(0\)"),
        ({"y": np.array(["a", "b", "c"] * 20)}, r"y must hold real numbers, got dtype <U1"),
        ({"factors": np.full((60, 2), 0.5)}, r"factors \(discrete levels\) must be integers"),
        (
            {"x": np.zeros((6, 5)), "y": np.arange(6) % 3, "factors": np.zeros((6, 1))},
            r"too few samples for the split",
        ),
    ],
)
def test_npz_bad_input_messages(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    arrays = {**good_arrays(), **change}
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as err:
        load(name="npz", path=path)
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


def test_npz_missing_arrays_and_unreadable_file(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", x=np.zeros((30, 2)), labels=np.zeros(30))
    with pytest.raises(
        DataError,
        match=r"needs arrays 'x' and 'y', missing 'y' \(arrays in "
        r"the file: labels, x\)",
    ):
        load(name="npz", path=path)
    junk = tmp_path / "junk.npz"
    junk.write_text("hello")
    with pytest.raises(
        DataError,
        match=r"junk.npz: not a .npz archive; write the arrays with "
        r"numpy.savez",
    ):
        load(name="npz", path=str(junk))
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"one.npy: a .npy file \(one array\)"):
        load(name="npz", path=str(tmp_path / "one.npy"))
    objects = write_npz(
        tmp_path / "o.npz", x=np.array([{"a": 1}] * 30, dtype=object), y=np.zeros(30)
    )
    with pytest.raises(DataError, match=r"o.npz: cannot read the arrays .*save numeric"):
        load(name="npz", path=objects)


@pytest.mark.parametrize("name", ["npz", "csv"])
def test_missing_file_names_the_file(name: str, workdir: Path) -> None:
    extra = {"label": "y"} if name == "csv" else {}
    with pytest.raises(
        DataError,
        match=rf"data.path: the file 'nope/my.{name}' does not exist "
        rf"\(relative to the working directory .*\)",
    ):
        load(name=name, path=f"nope/my.{name}", **extra)
    with pytest.raises(DataError, match="is a directory, not a file"):
        load(name=name, path=str(workdir), **extra)


def test_file_dataset_needs_a_path() -> None:
    with pytest.raises(ConfigError, match=r"data\.path: required key is missing"):
        data_config(name="npz")


CSV = "a,b,c,f,label\n" + "".join(
    f"{i * 0.1:.1f},{(i * 7) % 5},{i % 2},{i % 4},{i % 3}\n" for i in range(30)
)


def write_csv(tmp_path: Path, text: str = CSV) -> str:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return str(path)


def test_csv_reads_label_factors_and_features(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    d = load(name="csv", path=path, label="label", factors=["f"])
    assert d.input_shape == (3,) and d.n_outputs == 3 and d.factor_names == ("f",)
    d = load(name="csv", path=path, label="label", features=["a", "b"])
    assert d.input_shape == (2,) and not d.has_factors
    d = load(name="csv", path=path, label="label", factors=["label", "f"])  # label as factor
    assert d.input_shape == (3,) and d.factor_names == ("label", "f")
    d = load(name="csv", path=path, label=["a", "b"], task="regression")
    assert d.task == "regression" and d.n_outputs == 2 and d.input_shape == (3,)


def test_example_user_data_loads() -> None:
    example = Path(__file__).parents[2] / "examples" / "my-data.csv"
    d = load(name="csv", path=str(example), label="size", factors=["size", "colour"])
    assert d.input_shape == (6,) and d.n_outputs == 3 and d.factor_names == ("size", "colour")


@pytest.mark.parametrize(
    ("text", "keys", "message"),
    [
        (CSV, {"label": "lable"}, r"data.label: unknown column 'lable'. Did you mean 'label'\?"),
        (CSV, {"factors": ["g"]}, r"data.factors: unknown column 'g'"),
        (CSV + "1,2\n", {}, r"line 32 has 2 fields, the header has 5"),
        (CSV.replace("0.5,", "abc,", 1), {}, r"feature column 'a' holds text 'abc' \(line 7\)"),
        (
            CSV.replace("0.5,", ",", 1),
            {},
            r"feature column 'a' has 1 missing, NaN or infinite value\(s\), first on line 7",
        ),
        (CSV.replace("0.5,", "inf,", 1), {}, r"feature column 'a' has 1 missing, NaN"),
        (
            CSV.replace(",0\n", ",cat\n"),
            {},
            r"label column 'label' holds text 'cat' \(line 2\); the classes must be the integers",
        ),
        (
            CSV.replace(",2\n", ",7\n"),
            {},
            r"label column 'label' must be the class labels 0..C-1.*labels 0..7 with 2, 3, 4, 5, 6",
        ),
        (
            CSV.replace(",1\n", ",1.5\n"),
            {},
            r"label column 'label' \(class labels 0..C-1\) must "
            r"be integers, got 1.5",
        ),
        (
            "a,b,label\n" + "1,2,0\n" * 3 + "1,2,1\n" * 3,
            {},
            r"too few samples for the split: 6 samples give 4 train, 1 validation and 1 test",
        ),
        ("", {}, r"the file is empty"),
        ("a,b,label\n", {}, r"has a header but no data rows"),
        ("a,a,label\n1,2,0\n", {}, r"the header names column\(s\) a more than once"),
    ],
)
def test_csv_bad_input_messages(
    tmp_path: Path, text: str, keys: dict[str, Any], message: str
) -> None:
    path = write_csv(tmp_path, text)
    with pytest.raises(DataError, match=message) as err:
        load(name="csv", path=path, **{"label": "label", **keys})
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"label": ["a", "b"]}, r"classification needs one label column, got \['a', 'b'\]"),
        (
            {"label": "label", "features": ["a", "label"]},
            r"label and factor columns cannot be features too, got label",
        ),
        ({"label": "label", "delimiter": ";;"}, r"a delimiter is one character"),
    ],
)
def test_csv_bad_config(tmp_path: Path, keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        data_config(name="csv", path="t.csv", **keys)


# ----------------------------------------------------------------------------- regression


def test_regression_training_reports_r2_like_scikit_learn() -> None:
    from sklearn.metrics import r2_score

    from codenas.config import TrainConfig
    from codenas.spaces import MLPSpec, build_model
    from codenas.training.loop import BriefTrainer

    d = load(name="diabetes")
    torch.manual_seed(0)
    model = build_model(MLPSpec(input_shape=(10,), n_outputs=1, widths=(16,)))
    trainer = BriefTrainer(d, TrainConfig(epochs=3, accelerator="cpu"))
    result = trainer.fit(model, seed=0)
    assert "val_accuracy" not in result.metrics
    with torch.no_grad():
        pred = result.model.eval()(d.val.x).numpy()
    assert result.metrics["val_r2"] == pytest.approx(r2_score(d.val.y.numpy(), pred), abs=1e-5)
    assert result.metrics["test_r2"] < 1.0


def test_metrics_must_fit_the_task() -> None:
    from codenas.config.objectives import check_against_dataset

    with pytest.raises(ConfigError, match=r"c.yaml: metric 'val_r2' measures a regression"):
        check_against_dataset(["val_r2"], task="classification", has_factors=False, source="c.yaml")
    with pytest.raises(ConfigError, match=r"metric 'val_accuracy' needs class labels"):
        check_against_dataset(["val_accuracy"], task="regression", has_factors=True, source="c")
    check_against_dataset(["val_r2", "val_loss"], task="regression", has_factors=True, source="c")
