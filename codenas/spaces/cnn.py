"""The ``cnn`` space: convolutional networks for images, with the MLP's depth/width/shape terms.

A network is ``depth`` conv blocks, ``Conv2d(kernel_size, 'same' padding) -> [BatchNorm2d] ->
activation``, with a 2x2 pooling after every ``pool_every``-th block (not after the last one,
and only while the feature map is at least 2x2), then a global average pool and a linear head.
The channels of the blocks follow the same width profile as the MLP's layers
(:func:`codenas.spaces.profiles.width_profile`): ``width`` is the widest block and ``shape``
one of ``constant``, ``funnel``, ``expand``, ``diamond``, ``hourglass``.

``hidden_layers[k]`` outputs block ``k``'s post-activation feature map ``(N, C, H, W)``; the
activation capture turns it into ``C`` units, one per channel (its spatial mean), and, for
NASWOT, into binary codes of every channel at every position (``codenas.metrics.capture``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from codenas.errors import ConfigError
from codenas.schema import IntChoice, IntRange, suggest_choice
from codenas.spaces.activations import ACTIVATIONS, make_activation
from codenas.spaces.base import Space, Spec, register_space
from codenas.spaces.profiles import ProfileConfig

if TYPE_CHECKING:
    import optuna

POOLS = ("max", "avg")
CHANNELS_ATTR = "channels"
"""Trial user attribute that fixes the block channels (set by ``codenas rightsize``)."""


class CNNConfig(ProfileConfig):
    """``space:`` of the ``cnn`` space. Each range or choice may be fixed to one value."""

    name: str = "cnn"
    width: IntRange = Field(
        default=IntRange(min=8, max=64, log=True),
        description="channels of the widest block (the shape sets the others)",
    )
    kernel_size: IntChoice = (3, 5)
    pool_every: int = Field(2, ge=0)  # a 2x2 pooling after every k-th block; 0: never
    pool: Literal["max", "avg"] = "max"
    batch_norm: bool = True

    @field_validator("kernel_size")
    @classmethod
    def _kernels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [k for k in value if k < 1 or k % 2 == 0]
        if bad:
            raise ValueError(
                "kernel sizes must be odd and >= 1 (so 'same' padding keeps the size), "
                f"got {bad[0]}"
            )
        return value


@dataclasses.dataclass(frozen=True)
class CNNSpec(Spec):
    """``{"space": "cnn", "input_shape", "n_outputs", "channels", "kernel_size", "activation",
    "pool_every", "pool", "batch_norm"}``; ``input_shape`` is ``(channels, height, width)``."""

    space = "cnn"
    channels: tuple[int, ...] = ()
    kernel_size: int = 3
    activation: str = "relu"
    pool_every: int = 0
    pool: str = "max"
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3:
            raise ValueError(
                f"input_shape must be (channels, height, width), got {tuple(self.input_shape)}"
            )
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError(
                f"channels must be a non-empty list of positive ints, got {self.channels}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {self.kernel_size}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}")
        if self.pool_every < 0:
            raise ValueError(f"pool_every must be >= 0, got {self.pool_every}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")


def pooling_after(spec: CNNSpec) -> list[bool]:
    """Whether a 2x2 pooling follows each block: after every ``pool_every``-th block but the
    last, while the feature map is at least 2x2 (each pooling halves it, rounding up)."""
    _, height, width = spec.input_shape
    out = []
    for i in range(1, len(spec.channels) + 1):
        pooled = (
            spec.pool_every > 0
            and i % spec.pool_every == 0
            and i < len(spec.channels)
            and min(height, width) >= 2
        )
        if pooled:
            height, width = -(-height // 2), -(-width // 2)
        out.append(pooled)
    return out


class CNN(nn.Module):
    """[Conv -> (BatchNorm) -> activation (-> 2x2 pool)] x depth -> global mean -> Linear head.

    ``hidden_layers[k]`` is block ``k`` (without its pooling); its output is what the coding
    metrics read.
    """

    def __init__(self, spec: CNNSpec) -> None:
        super().__init__()
        c_in = spec.input_shape[0]
        k = spec.kernel_size
        blocks: list[nn.Module] = []
        pools: list[nn.Module] = []
        pooled = pooling_after(spec)
        for i, c_out in enumerate(spec.channels):
            layers: list[nn.Module] = [
                nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=not spec.batch_norm)
            ]
            if spec.batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(make_activation(spec.activation))
            blocks.append(nn.Sequential(*layers))
            if pooled[i]:
                # ceil_mode keeps the last row/column of an odd-sized map.
                pool_cls = nn.MaxPool2d if spec.pool == "max" else nn.AvgPool2d
                pools.append(pool_cls(2, ceil_mode=True))
            else:
                pools.append(nn.Identity())
            c_in = c_out
        self.hidden_layers = nn.ModuleList(blocks)
        self.pools = nn.ModuleList(pools)
        self.head = nn.Linear(c_in, spec.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, pool in zip(self.hidden_layers, self.pools, strict=True):
            x = pool(block(x))
        return self.head(x.mean(dim=(2, 3)))


@register_space
class CNNSpace(Space):
    """Conv network: depth, widest channels (log), shape profile, kernel size, activation."""

    name = "cnn"
    config_model = CNNConfig
    spec_type = CNNSpec
    summary = (
        "conv network for images: depth, channels (log), shape profile, kernel size, "
        "activation; pooling every k blocks, global average pool"
    )

    layers_field = CHANNELS_ATTR
    example_input_shape = (1, 8, 8)

    config: CNNConfig

    def sample(self, trial: optuna.Trial, input_shape: tuple[int, ...], n_outputs: int) -> CNNSpec:
        cfg = self.config
        channels = cfg.sample_widths(trial, CHANNELS_ATTR, n_outputs)
        kernel_size = suggest_choice(trial, "kernel_size", cfg.kernel_size)
        activation = suggest_choice(trial, "activation", cfg.activation)
        return CNNSpec(
            input_shape=tuple(input_shape),
            n_outputs=n_outputs,
            channels=tuple(channels),
            kernel_size=int(kernel_size),
            activation=activation,
            pool_every=cfg.pool_every,
            pool=cfg.pool,
            batch_norm=cfg.batch_norm,
        )

    @staticmethod
    def build(spec: Spec) -> CNN:
        assert isinstance(spec, CNNSpec)
        return CNN(spec)

    # ------------------------------------------------------------------ surgery

    @staticmethod
    def unit_producers(model: nn.Module, layer: int) -> list[nn.Module]:
        block = model.hidden_layers[layer]
        return [m for m in block if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]

    @staticmethod
    def unit_reader(model: nn.Module, layer: int) -> tuple[nn.Module, nn.Module | None]:
        if layer == len(model.hidden_layers) - 1:
            return model.head, None  # after the global mean, which an affine map commutes with
        block = model.hidden_layers[layer + 1]
        norm = block[1] if len(block) > 1 and isinstance(block[1], nn.BatchNorm2d) else None
        return block[0], norm

    @classmethod
    def foldable(cls, spec: Spec, layer: int) -> bool:
        """False where max pooling follows the block (an average pool commutes with an
        affine map, a maximum does not)."""
        assert isinstance(spec, CNNSpec)
        return not (pooling_after(spec)[layer] and spec.pool == "max")

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 3:
            kind = "tabular inputs" if len(input_shape) == 1 else "inputs"
            raise ConfigError(
                f"space.name: 'cnn' needs image inputs of shape (channels, height, width), but "
                f"the dataset gives {kind} of shape {tuple(input_shape)}; use space.name: mlp "
                "for tabular data"
            )
