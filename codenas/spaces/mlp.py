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
from codenas.spaces.base import Space, Spec, SurgeryError, register_space
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
    layers_field = WIDTHS_ATTR

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

    # ------------------------------------------------------------------ surgery

    @staticmethod
    def unit_producers(model: nn.Module, layer: int) -> list[nn.Module]:
        return [model.hidden_layers[layer][0]]

    @staticmethod
    def unit_reader(model: nn.Module, layer: int) -> tuple[nn.Module, None]:
        if layer == len(model.hidden_layers) - 1:
            return model.head, None
        return model.hidden_layers[layer + 1][0], None

    @classmethod
    @torch.no_grad()
    def remove_layer(cls, model: nn.Module, spec: Spec, layer: int) -> tuple[Spec, nn.Module]:
        """Layer ``layer``'s ``Linear`` folded into its reader (``W' = W_next W_k``,
        ``b' = W_next b_k + b_next``): exact where its units stayed in their linear region."""
        layers = _linear_layers(model)
        if len(layers) <= 2:
            raise SurgeryError("the network's only hidden layer cannot be removed")
        w, b = layers[layer]
        w_next, b_next = layers[layer + 1]
        layers[layer + 1] = (w_next @ w, w_next @ b + b_next)
        del layers[layer]
        return _from_layers(cls, spec, layers)

    @classmethod
    @torch.no_grad()
    def insert_identity(cls, model: nn.Module, spec: Spec, after: int) -> tuple[Spec, nn.Module]:
        """An identity ``Linear`` after hidden layer ``after``: exact for ReLU (its inputs are
        non-negative), approximate for other activations."""
        layers = _linear_layers(model)
        w = layers[after][0]
        eye = torch.eye(w.shape[0], dtype=w.dtype)
        layers.insert(after + 1, (eye, torch.zeros(w.shape[0], dtype=w.dtype)))
        return _from_layers(cls, spec, layers)


Layers = list[tuple[torch.Tensor, torch.Tensor]]
"""``[(W_0, b_0), ..., (W_head, b_head)]``: each hidden layer's ``Linear``, then the head."""


def _linear_layers(model: nn.Module) -> Layers:
    out = [
        (block[0].weight.detach().cpu().clone(), block[0].bias.detach().cpu().clone())
        for block in model.hidden_layers
    ]
    out.append((model.head.weight.detach().cpu().clone(), model.head.bias.detach().cpu().clone()))
    return out


def _from_layers(space: type[MLPSpace], spec: Spec, layers: Layers) -> tuple[Spec, MLP]:
    new_spec = space.with_layer_sizes(spec, [w.shape[0] for w, _ in layers[:-1]])
    model = space.build(new_spec)
    state = {}
    for k, (w, b) in enumerate(layers[:-1]):
        state[f"hidden_layers.{k}.0.weight"], state[f"hidden_layers.{k}.0.bias"] = w, b
    state["head.weight"], state["head.bias"] = layers[-1]
    model.load_state_dict(state)
    return new_spec, model
