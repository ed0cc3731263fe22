"""The ``mlp`` space: fully connected networks of sampled depth, width, shape and activation."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch
from pydantic import field_validator
from torch import nn

from codenas.schema import FloatRange, suggest_choice
from codenas.spaces.activations import ACTIVATIONS, make_activation
from codenas.spaces.base import Space, Spec, register_space
from codenas.spaces.profiles import ProfileConfig

if TYPE_CHECKING:
    import optuna

WIDTHS_ATTR = "widths"
"""Trial user attribute that fixes the layer widths (set by ``codenas rightsize``)."""


class MLPConfig(ProfileConfig):
    """``space:`` of the ``mlp`` space. Each range may be fixed to one value."""

    name: str = "mlp"
    dropout: FloatRange = FloatRange(min=0.0, max=0.3)

    @field_validator("dropout")
    @classmethod
    def _dropout(cls, value: FloatRange) -> FloatRange:
        if not (value.min >= 0.0 and value.max < 1.0):
            raise ValueError(f"0 <= min and max < 1 must hold, got min={value.min} max={value.max}")
        return value


@dataclasses.dataclass(frozen=True)
class MLPSpec(Spec):
    """``{"space": "mlp", "input_shape", "n_outputs", "widths", "activation", "dropout"}``."""

    space = "mlp"
    widths: tuple[int, ...] = ()
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class MLP(nn.Module):
    """Flatten -> [Linear -> activation -> dropout] x depth -> Linear head.

    ``hidden_layers[k]`` outputs the post-activation values of hidden layer ``k`` (before
    dropout), which is what the coding metrics read.
    """

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        n_in = math.prod(spec.input_shape)
        blocks = []
        for width in spec.widths:
            blocks.append(nn.Sequential(nn.Linear(n_in, width), make_activation(spec.activation)))
            n_in = width
        self.hidden_layers = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(n_in, spec.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        for block in self.hidden_layers:
            x = self.dropout(block(x))
        return self.head(x)


@register_space
class MLPSpace(Space):
    """Fully connected network: depth, widest width (log), shape profile, activation, dropout."""

    name = "mlp"
    config_model = MLPConfig
    spec_type = MLPSpec
    summary = "fully connected network: depth, width (log), shape profile, activation, dropout"

    config: MLPConfig

    def sample(self, trial: optuna.Trial, input_shape: tuple[int, ...], n_outputs: int) -> MLPSpec:
        cfg = self.config
        widths = cfg.sample_widths(trial, WIDTHS_ATTR, n_outputs)
        activation = suggest_choice(trial, "activation", cfg.activation)
        dropout = cfg.dropout.suggest(trial, "dropout")
        return MLPSpec(
            input_shape=tuple(input_shape),
            n_outputs=n_outputs,
            widths=tuple(widths),
            activation=activation,
            dropout=float(dropout),
        )

    @staticmethod
    def build(spec: Spec) -> MLP:
        assert isinstance(spec, MLPSpec)
        return MLP(spec)
