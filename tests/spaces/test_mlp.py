from __future__ import annotations

import json

import optuna
import pytest
import torch

from codenas.errors import ConfigError
from codenas.spaces import MLPConfig, MLPSpace, MLPSpec, build_model, spec_from_dict

PARAMS = {"depth": 3, "width": 64, "shape": "funnel", "activation": "gelu", "dropout": 0.1}


def sample(params: dict = PARAMS, **config: object) -> MLPSpec:
    space = MLPSpace(MLPConfig(**config))
    spec = space.sample(optuna.trial.FixedTrial(params), (1, 8, 8), 10)
    assert isinstance(spec, MLPSpec)
    return spec


def test_sample_builds_the_profile() -> None:
    spec = sample()
    assert spec.widths == (64, 32, 16)
    assert spec.activation == "gelu"
    assert spec.dropout == pytest.approx(0.1)
    assert spec.to_dict() == {
        "space": "mlp",
        "input_shape": [1, 8, 8],
        "n_outputs": 10,
        "widths": [64, 32, 16],
        "activation": "gelu",
        "dropout": 0.1,
    }


def test_spec_round_trip_rebuilds_the_same_module() -> None:
    spec = sample()
    restored = spec_from_dict(json.loads(spec.to_json()))
    assert restored == spec
    torch.manual_seed(3)
    a = build_model(spec)
    torch.manual_seed(3)
    b = build_model(restored)
    x = torch.randn(5, 1, 8, 8)
    a.eval()
    b.eval()
    assert torch.equal(a(x), b(x))
    assert [tuple(p.shape) for p in a.parameters()] == [
        (64, 64),
        (64,),
        (32, 64),
        (32,),
        (16, 32),
        (16,),
        (10, 16),
        (10,),
    ]


def test_hidden_layers_output_post_activation_widths() -> None:
    model = build_model(sample({**PARAMS, "activation": "relu"}))
    x = torch.randn(7, 1, 8, 8)
    outs = []
    h = model.flatten(x)
    for block in model.hidden_layers:
        h = block(h)
        outs.append(h)
    assert [o.shape[1] for o in outs] == [64, 32, 16]
    assert all((o >= 0).all() for o in outs)  # ReLU outputs


def test_fixed_ranges_fix_the_parameters() -> None:
    space = MLPSpace(MLPConfig(depth=2, width=24, shape="constant", activation="tanh", dropout=0.0))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    specs = []
    for _ in range(5):
        trial = study.ask()
        specs.append(space.sample(trial, (64,), 3))
        study.tell(trial, 0.0)
    assert {s.widths for s in specs} == {(24, 24)}
    assert {s.activation for s in specs} == {"tanh"}
    assert set(study.trials[0].params) == {"depth", "width", "shape", "activation", "dropout"}


def test_bad_specs_are_config_errors() -> None:
    good = sample().to_dict()
    with pytest.raises(ConfigError, match="unknown keys colour"):
        spec_from_dict({**good, "colour": "red"})
    with pytest.raises(ConfigError, match="missing keys widths"):
        spec_from_dict({k: v for k, v in good.items() if k != "widths"})
    with pytest.raises(ConfigError, match="non-empty list of positive ints"):
        spec_from_dict({**good, "widths": [8, 0]})
    with pytest.raises(KeyError, match=r"unknown search space 'mpl'\. Did you mean 'mlp'"):
        spec_from_dict({**good, "space": "mpl"})


def test_adapt_changes_only_the_ends() -> None:
    spec = sample()
    other = spec.adapt((30,), 2)
    assert other.widths == spec.widths
    model = build_model(other)
    assert model(torch.randn(4, 30)).shape == (4, 2)
