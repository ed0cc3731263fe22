from __future__ import annotations

from pathlib import Path

import pytest

import codenas
from codenas.config import Config, apply_overrides, load_config, packaged_configs
from codenas.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_config_is_the_digits_mlp_search() -> None:
    config = load_config()
    assert config.data.name == "digits"
    assert config.space.name == "mlp"
    assert config.objective_names == ["val_accuracy", "capacity_usage", "params"]
    assert config.directions == ["maximize", "maximize", "minimize"]
    assert config.study.storage == "sqlite:///optuna.db"
    assert config.tracking.uri == "sqlite:///mlflow.db"
    assert "digits-mlp" in packaged_configs()


def test_config_is_frozen_and_round_trips() -> None:
    config = load_config()
    with pytest.raises(Exception, match="frozen"):
        config.study.trials = 3  # type: ignore[misc]
    assert Config.from_dict(config.to_dict()) == config


def test_overrides_any_key() -> None:
    config = load_config(
        None,
        [
            "train.epochs=3",
            "space.width={min: 8, max: 8}",
            "space.shape=funnel",
            "objectives=[val_accuracy, params]",
            "constraints=['params <= 5000']",
        ],
    )
    assert config.train.epochs == 3
    assert config.space.width.fixed and config.space.width.min == 8
    assert config.space.shape == ("funnel",)
    assert config.directions == ["maximize", "minimize"]
    assert str(config.constraints[0]) == "params <= 5000"
    assert config.constraints[0].violation(6000) == 1000


def test_overrides_do_not_mutate_their_input() -> None:
    raw = {"train": {"epochs": 1}}
    out = apply_overrides(raw, ["train.epochs=4", "study.name=x"])
    assert raw == {"train": {"epochs": 1}}
    assert out == {"train": {"epochs": 4}, "study": {"name": "x"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "space: {width: {min: 256, max: 8}}",
            r"c.yaml: space.width: min <= max must hold, got min=256 max=8",
        ),
        ("space: {widht: 3}", r"c.yaml: space.widht: unknown key 'widht' in 'space'"),
        ("train: {epochs: many}", r"c.yaml: train.epochs: Input should be a valid integer"),
        ("train: {epochs: 0}", r"c.yaml: train.epochs: Input should be greater than or equal to 1"),
        (
            "objectives: [val_acuracy]",
            r"c.yaml: objectives\[0\]: unknown metric 'val_acuracy'. Did you mean 'val_accuracy'\?",
        ),
        (
            "objectives: [test_accuracy]",
            r"c.yaml: objectives\[0\]: 'test_accuracy' is measured "
            "on the test split",
        ),
        ("objectives: [params, params]", r"each metric may be an objective once"),
        ("data: {name: digts}", r"c.yaml: data.name: unknown dataset 'digts'. Did you mean"),
        ("space: {name: mpl}", r"c.yaml: space.name: unknown search space 'mpl'"),
        ("space: {shape: [round]}", r"c.yaml: space.shape: unknown shape 'round'"),
        ("space: {dropout: {min: 0, max: 1.5}}", r"space.dropout: 0 <= min and max < 1"),
        ("study: {sampler: cmaes}", r"c.yaml: study.sampler: unknown sampler 'cmaes'"),
        ("constraints: ['params < 5']", r"constraints\[0\]: expected 'METRIC <= NUMBER'"),
        ("data: {val_fraction: 0.6, test_fraction: 0.5}", r"val_fraction \+ test_fraction < 1"),
        ("study: {grace_period: 5, heartbeat_interval: 10}", r"grace_period > heartbeat_interval"),
        ("bogus: 1", r"c.yaml: bogus: unknown key 'bogus'"),
        ("- a\n- b", r"c.yaml: the config must be a mapping, got list"),
        ("space: [1, 2]", r"c.yaml: space: expected a mapping, got list"),
        ("train: {epochs: 3\n", r"c.yaml: invalid YAML at line"),
    ],
)
def test_bad_configs_give_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(path))


def test_missing_file_lists_packaged_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: no such config file \(packaged configs: "):
        load_config(tmp_path / "nope.yaml")


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match=r"train\.epochs is not a mapping"):
        load_config(None, ["train.epochs.max=3"])


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.study.name == "digits-mlp"
    assert config.space.depth.min == 1


def test_problem_excludes_study_and_tracking() -> None:
    a = load_config(None, ["study.name=a", "tracking.uri=sqlite:///x.db", "study.seed=4"])
    b = load_config()
    assert a.problem() == b.problem()
    c = load_config(None, ["train.epochs=2"])
    assert c.problem() != b.problem()


def test_public_api_exports() -> None:
    assert codenas.load_config is load_config
    assert callable(codenas.search.run)
    assert callable(codenas.search.front)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.accelerator=banana", r"train\.accelerator: unknown accelerator 'banana'"),
        ("train.precision=bogus", r"train\.precision: unknown precision 'bogus'"),
    ],
)
def test_unknown_accelerator_or_precision_is_refused_naming_the_key(
    override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)
    assert load_config(None, ["train.precision=16"]).train.precision == "16"  # YAML's int


def test_the_accelerator_and_precision_names_are_fabrics() -> None:
    """The names a config accepts without importing Lightning are those Fabric accepts."""
    from typing import get_args

    from lightning_fabric.connector import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS

    from codenas.config.models import ACCELERATORS, PRECISIONS
    from codenas.training.fabric import Fabric

    assert set(PRECISIONS) == set(get_args(_PRECISION_INPUT_STR)) | set(
        get_args(_PRECISION_INPUT_STR_ALIAS)
    )
    with pytest.raises(ValueError, match="Available names are: ") as info:
        Fabric(accelerator="no-such-accelerator", devices=1)
    fabric_names = {n.strip(" .`") for n in info.value.args[0].split(":")[-1].split(",")}
    assert fabric_names <= set(ACCELERATORS) and set(ACCELERATORS) - fabric_names == {"gpu"}
