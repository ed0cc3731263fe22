"""The ``mlp`` space: fully connected networks of sampled depth, width, shape and activation."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch
from pydantic import field_validator
from torch import nn

from codenas.schema import FloatRange, IntRange, StrChoice, check_choices, suggest_choice
from codenas.spaces.activations import ACTIVATIONS, make_activation
from codenas.spaces.base import Space, SpaceConfig, Spec, register_space
from codenas.spaces.profiles import SHAPES, width_profile

if TYPE_CHECKING:
    import optuna

WIDTHS_ATTR = "widths"
"""Trial user attribute that fixes the layer widths (set by ``codenas rightsize``)."""


def fixed_widths(trial: optuna.Trial, key: str, depth: int) -> list[int] | None:
    """Widths fixed through the trial's user attribute ``key``, else ``None``.

    ``codenas rightsize`` proposes widths that no ``shape`` profile may produce; it enqueues
    them as ``study.enqueue_trial(params, user_attrs={key: [...]})``, with ``params["depth"]``
    their number. A trial without the attribute samples its widths from the profile as usual.

    Raises:
        ValueError: the attribute is not ``depth`` positive integers.
    """
    value = trial.user_attrs.get(key)
    if value is None:
        return None
    widths = [int(w) for w in value]
    if len(widths) != depth or any(w < 1 for w in widths):
        raise ValueError(
            f"user attribute {key!r} must be {depth} positive integers (one per layer of "
            f"depth={depth}), got {list(value)}"
        )
    return widths


class MLPConfig(SpaceConfig):
    """``space:`` of the ``mlp`` space. Each range may be fixed to one value."""

    name: str = "mlp"
    depth: IntRange = IntRange(min=1, max=4)
    width: IntRange = IntRange(min=16, max=256, log=True)
    shape: StrChoice = SHAPES
    activation: StrChoice = ("relu", "gelu", "tanh")
    dropout: FloatRange = FloatRange(min=0.0, max=0.3)
    ratio: float = 2.0
    min_width: int = 2

    @field_validator("depth", "width")
    @classmethod
    def _positive(cls, value: IntRange) -> IntRange:
        if value.min < 1:
            raise ValueError(f"min >= 1 must hold, got min={value.min}")
        return value

    @field_validator("shape")
    @classmethod
    def _shapes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_choices(value, SHAPES, "shape")
        return value

    @field_validator("activation")
    @classmethod
    def _activations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_choices(value, list(ACTIVATIONS), "activation")
        return value

    @field_validator("dropout")
    @classmethod
    def _dropout(cls, value: FloatRange) -> FloatRange:
        if not (value.min >= 0.0 and value.max < 1.0):
            raise ValueError(f"0 <= min and max < 1 must hold, got min={value.min} max={value.max}")
        return value

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        if value < 1.0:
            raise ValueError(f"ratio >= 1 must hold, got {value}")
        return value

    @field_validator("min_width")
    @classmethod
    def _min_width(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"min_width >= 1 must hold, got {value}")
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
        depth = cfg.depth.suggest(trial, "depth")
        width = cfg.width.suggest(trial, "width")
        shape = suggest_choice(trial, "shape", cfg.shape)
        activation = suggest_choice(trial, "activation", cfg.activation)
        dropout = cfg.dropout.suggest(trial, "dropout")
        widths = fixed_widths(trial, WIDTHS_ATTR, depth) or width_profile(
            shape, depth, width, ratio=cfg.ratio, min_width=cfg.min_width
        )
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
