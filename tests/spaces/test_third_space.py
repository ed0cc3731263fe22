"""A space is one file plus its registration: a toy third space, written here as a user would,
goes through a search, rightsize and erase without any caller naming it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import codenas
from codenas.spaces import SPACES, Space, Spec, register_space
from codenas.spaces.activations import make_activation
from codenas.spaces.profiles import ProfileConfig


class ToyConfig(ProfileConfig):
    name: str = "toy"


@dataclasses.dataclass(frozen=True)
class ToySpec(Spec):
    space = "toy"
    units: tuple[int, ...] = ()
    activation: str = "tanh"


class ToyNet(nn.Module):
    """Stem -> [Linear -> activation] x depth -> "out": another layout than the mlp's."""

    def __init__(self, spec: ToySpec) -> None:
        super().__init__()
        n_in = math.prod(spec.input_shape)
        blocks = []
        for width in spec.units:
            blocks.append(nn.Sequential(nn.Linear(n_in, width), make_activation(spec.activation)))
            n_in = width
        self.hidden_layers = nn.ModuleList(blocks)
        self.out = nn.Linear(n_in, spec.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for block in self.hidden_layers:
            x = block(x)
        return self.out(x)


class ToySpace(Space):
    name = "toy"
    config_model = ToyConfig
    spec_type = ToySpec
    summary = "a toy space of the tests"
    layers_field = "units"

    def sample(self, trial, input_shape, n_outputs) -> ToySpec:
        units = self.config.sample_widths(trial, "units", n_outputs)
        activation = trial.suggest_categorical("activation", list(self.config.activation))
        return ToySpec(tuple(input_shape), n_outputs, tuple(units), activation)

    @staticmethod
    def build(spec: Spec) -> ToyNet:
        assert isinstance(spec, ToySpec)
        return ToyNet(spec)

    @staticmethod
    def unit_producers(model: nn.Module, layer: int) -> list[nn.Module]:
        return [model.hidden_layers[layer][0]]

    @staticmethod
    def unit_reader(model: nn.Module, layer: int) -> tuple[nn.Module, None]:
        last = layer == len(model.hidden_layers) - 1
        return (model.out if last else model.hidden_layers[layer + 1][0]), None


@pytest.fixture
def toy_space() -> Iterator[type[Space]]:
    register_space(ToySpace)
    try:
        yield ToySpace
    finally:
        SPACES._entries.pop("toy")


@pytest.mark.slow
def test_a_registered_third_space_is_searched_rightsized_and_erased(
    tmp_path: Path, toy_space: type[Space]
) -> None:
    from codenas.decisions.erase import erase
    from codenas.decisions.rightsize import enqueue, propose
    from codenas.decisions.source import from_trial

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config = codenas.load_config(
        "factors-mlp",
        [
            "space={name: toy, depth: {min: 2, max: 2}, width: {min: 16, max: 32}, "
            "activation: [tanh]}",
            "study.trials=2",
            f"study.storage={storage}",
            "data.n_samples=600",
            "train.epochs=2",
            "metrics.samples=200",
            "metrics.log=[dead_fraction, effective_rank]",
            "objectives=[{metric: val_accuracy, direction: maximize}, "
            "{metric: params, direction: minimize}]",
            "tracking.enabled=false",
        ],
    )
    study = codenas.search.run(config)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2 and all(t.user_attrs["spec"]["space"] == "toy" for t in done)
    number = done[0].number
    proposal = propose(study, number, config=config, retrain=True, cka_threshold=None)
    sizes = proposal.new_spec.units  # type: ignore[attr-defined]
    assert len(sizes) == 2 and all(
        new <= old for new, old in zip(sizes, done[0].user_attrs["spec"]["units"], strict=True)
    )
    queued, _ = enqueue(study, proposal)
    assert study.trials[queued].user_attrs["units"] == list(sizes)
    source = from_trial(config.study.name, storage, number)
    result = erase(source, "f1", log=False, samples=150)
    assert result.layer == 1 and result.fold_error < 1e-5
