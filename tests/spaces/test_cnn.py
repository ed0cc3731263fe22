"""The ``cnn`` space: config, spec round trip, module structure, input check, brief training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from codenas.config import TrainConfig, validate_config
from codenas.data import Dataset, load_dataset
from codenas.data.shapes import ShapesConfig
from codenas.errors import ConfigError
from codenas.metrics import capture_activations
from codenas.spaces import (
    SHAPES,
    CNNConfig,
    CNNSpace,
    CNNSpec,
    build_model,
    get_space,
    spec_from_dict,
    width_profile,
)
from codenas.training.loop import BriefTrainer
from tests.conftest import make_config

PARAMS = {"depth": 3, "width": 32, "shape": "funnel", "kernel_size": 5, "activation": "gelu"}


def sample(
    params: dict[str, Any] = PARAMS, input_shape: tuple[int, ...] = (1, 32, 32), **config: Any
) -> CNNSpec:
    space = CNNSpace(CNNConfig(**config))
    spec = space.sample(optuna.trial.FixedTrial(params), input_shape, 3)
    assert isinstance(spec, CNNSpec)
    return spec


def test_registered_with_stable_parameter_names() -> None:
    assert get_space("cnn") is CNNSpace
    space = CNNSpace(CNNConfig())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    space.sample(trial, (1, 32, 32), 3)
    assert set(trial.params) == {"depth", "width", "shape", "kernel_size", "activation"}


def test_sample_builds_the_profile() -> None:
    spec = sample()
    assert spec.channels == (32, 16, 8)
    assert spec.to_dict() == {
        "space": "cnn",
        "input_shape": [1, 32, 32],
        "n_outputs": 3,
        "channels": [32, 16, 8],
        "kernel_size": 5,
        "activation": "gelu",
        "pool_every": 2,
        "pool": "max",
        "batch_norm": True,
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_channels_follow_the_mlp_width_profile(shape: str) -> None:
    spec = sample({**PARAMS, "depth": 4, "shape": shape})
    assert list(spec.channels) == width_profile(shape, 4, 32, ratio=2.0, min_width=2)
    assert max(spec.channels) == 32  # width is the widest block, as in the MLP


def test_spec_round_trip_rebuilds_the_same_module() -> None:
    spec = sample()
    restored = spec_from_dict(json.loads(spec.to_json()))
    assert restored == spec
    torch.manual_seed(3)
    a = build_model(spec)
    torch.manual_seed(3)
    b = build_model(restored)
    a.eval()
    b.eval()
    x = torch.randn(4, 1, 32, 32)
    assert torch.equal(a(x), b(x))
    assert a(x).shape == (4, 3)


def test_blocks_pooling_and_hidden_units() -> None:
    spec = sample(
        {**PARAMS, "depth": 4, "shape": "constant", "width": 8, "activation": "relu"},
        input_shape=(3, 9, 9),
    )
    model = build_model(spec)
    model.eval()
    x = torch.randn(6, 3, 9, 9)
    sizes, h = [], x
    for block, pool in zip(model.hidden_layers, model.pools, strict=True):
        h = block(h)
        assert (h >= 0).all()  # post-activation (ReLU)
        sizes.append(tuple(h.shape[1:]))
        h = pool(h)
    # Pooling after blocks 2 (9 -> 5, ceil mode keeps the odd edge), never after the last.
    assert sizes == [(8, 9, 9), (8, 9, 9), (8, 5, 5), (8, 5, 5)]
    layers = capture_activations(model, x)
    assert [a.shape for a in layers] == [(6, 8)] * 4  # channels are the units


def test_pooling_options() -> None:
    never = build_model(sample(pool_every=0))
    assert all(isinstance(p, torch.nn.Identity) for p in never.pools)
    avg = build_model(sample(pool_every=1, pool="avg"))
    assert [type(p).__name__ for p in avg.pools] == ["AvgPool2d", "AvgPool2d", "Identity"]
    tiny = build_model(sample({**PARAMS, "depth": 4}, input_shape=(1, 2, 2), pool_every=1))
    assert tiny(torch.randn(2, 1, 2, 2)).shape == (2, 3)  # pooling stops at 1x1
    plain = build_model(sample(batch_norm=False))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"kernel_size": [3, 4]}, r"space\.kernel_size: kernel sizes must be odd and >= 1"),
        ({"width": {"min": 0, "max": 8}}, r"space\.width: min >= 1 must hold, got min=0"),
        ({"shape": ["funel"]}, r"unknown shape 'funel'. Did you mean 'funnel'\?"),
        ({"pool_every": -1}, r"space\.pool_every: Input should be greater than or equal to 0"),
        ({"pool": "min"}, r"space\.pool: Input should be 'max' or 'avg'"),
        ({"activation": "swish"}, r"unknown activation 'swish'"),
    ],
)
def test_bad_config(space: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config({"data": {"name": "shapes"}, "space": {"name": "cnn", **space}})


def test_spec_rejects_bad_values() -> None:
    good = sample().to_dict()
    for key, value, message in [
        ("input_shape", [13], r"input_shape must be \(channels, height, width\), got \(13,\)"),
        ("kernel_size", 2, "kernel_size must be odd"),
        ("channels", [], "channels must be a non-empty list"),
        ("pool", "min", "pool must be one of max, avg"),
    ]:
        with pytest.raises(ConfigError, match=message):
            spec_from_dict({**good, key: value})


def test_cnn_on_tabular_data_is_a_config_error() -> None:
    space = CNNSpace(CNNConfig())
    space.check_input((1, 8, 8))
    with pytest.raises(
        ConfigError,
        match=(
            r"space.name: 'cnn' needs image inputs of shape \(channels, height, width\), but the "
            r"dataset gives tabular inputs of shape \(13,\); use space.name: mlp for tabular data"
        ),
    ):
        space.check_input((13,))


def test_search_refuses_a_cnn_on_tabular_data_before_training(tmp_path: Path) -> None:
    from codenas.search import run

    config = validate_config(
        {
            "study": {"name": "cnn-on-wine", "storage": f"sqlite:///{tmp_path / 'optuna.db'}"},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            "data": {"name": "wine"},
            "space": {"name": "cnn"},
        }
    )
    with pytest.raises(ConfigError, match="'cnn' needs image inputs"):
        run(config)
    db = tmp_path / "optuna.db"
    if db.exists():  # the storage may be opened first; no study, so no trial, was started
        assert optuna.get_all_study_names(f"sqlite:///{db}") == []


def test_mlp_flattens_images(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["data.name=shapes"])
    model = build_model(
        get_space("mlp")(config.space).sample(
            optuna.trial.FixedTrial(
                {"depth": 1, "width": 8, "shape": "constant", "activation": "relu", "dropout": 0.0}
            ),
            (1, 32, 32),
            3,
        )
    )
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)


@pytest.fixture(scope="module")
def tiny_shapes() -> Dataset:
    return load_dataset(ShapesConfig(n_samples=150))


@pytest.mark.parametrize("shape", SHAPES)
def test_builds_and_trains_on_shapes(shape: str, tiny_shapes: Dataset) -> None:
    torch.manual_seed(0)
    spec = CNNSpace(CNNConfig()).sample(
        optuna.trial.FixedTrial(
            {"depth": 3, "width": 8, "shape": shape, "kernel_size": 3, "activation": "relu"}
        ),
        tiny_shapes.input_shape,
        tiny_shapes.n_outputs,
    )
    model = build_model(spec)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = BriefTrainer(tiny_shapes, TrainConfig(epochs=1, batch_size=32, accelerator="cpu"))
    result = trainer.fit(model, seed=0)
    assert result.steps == 3  # 90 training rows in batches of 32
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())
    assert 0.0 <= result.metrics["val_accuracy"] <= 1.0
    assert any(
        not torch.equal(a, b) for a, b in zip(before, result.model.parameters(), strict=True)
    )
    layers = capture_activations(result.model, tiny_shapes.val.x)
    assert [a.shape[1] for a in layers] == list(spec.channels)
