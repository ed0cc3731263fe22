"""Width profiles ("shapes") across the layers of a network.

``width`` is always the *widest* layer, so a profile never builds a network wider than the
sampled width, whatever its depth. Consecutive widths differ by the factor ``ratio``
(2 by default), rounded, and never fall below ``min_width``: the narrowest layer, by default
the number of outputs (classes) and at least 2, since a layer narrower than the classes it must
tell apart is a bottleneck no training can undo.

===========  ===============================================  ==================
shape        layer i of d (k_i = min(i, d-1-i), m = max k_i)  d = 5, width = 64
===========  ===============================================  ==================
constant     width                                            64 64 64 64 64
funnel       width / ratio**i                                 64 32 16 8 4
expand       width / ratio**(d-1-i)                           4 8 16 32 64
diamond      width / ratio**(m - k_i)                         16 32 64 32 16
hourglass    width / ratio**k_i                               64 32 16 32 64
===========  ===============================================  ==================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from codenas.schema import IntRange, StrChoice, check_choices, suggest_choice
from codenas.spaces.activations import ACTIVATIONS
from codenas.spaces.base import SpaceConfig

if TYPE_CHECKING:
    import optuna

SHAPES: tuple[str, ...] = ("constant", "funnel", "expand", "diamond", "hourglass")


def width_profile(
    shape: str, depth: int, width: int, *, ratio: float = 2.0, min_width: int = 1
) -> list[int]:
    """Widths of ``depth`` layers whose widest layer has ``width`` units.

    Args:
        shape: one of :data:`SHAPES`.
        depth: number of hidden layers, >= 1.
        width: width of the widest layer, >= 1.
        ratio: factor between consecutive widths in the non-constant shapes, >= 1.
        min_width: floor of every width.

    Returns:
        A list of ``depth`` positive integers.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    if depth < 1 or width < 1 or ratio < 1 or min_width < 1:
        raise ValueError(
            f"depth, width, min_width >= 1 and ratio >= 1 must hold, got "
            f"depth={depth} width={width} ratio={ratio} min_width={min_width}"
        )
    edge = [min(i, depth - 1 - i) for i in range(depth)]
    top = max(edge)
    exponents = {
        "constant": [0] * depth,
        "funnel": list(range(depth)),
        "expand": list(range(depth - 1, -1, -1)),
        "diamond": [top - k for k in edge],
        "hourglass": edge,
    }[shape]
    return [max(min_width, round(width / ratio**e)) for e in exponents]


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


class ProfileConfig(SpaceConfig):
    """The keys of every space whose layers follow a width profile (``mlp``, ``cnn``).

    ``depth`` layers, the widest ``width`` units wide, shaped by ``shape`` with a factor
    ``ratio`` between neighbours and no layer below ``min_width`` (default: the number of
    outputs, at least 2; never above the sampled ``width``); one ``activation`` for all.
    """

    depth: IntRange = Field(default=IntRange(min=1, max=4), description="number of hidden layers")
    width: IntRange = Field(
        default=IntRange(min=16, max=256, log=True),
        description="units of the widest layer (the shape sets the others)",
    )
    shape: StrChoice = Field(default=SHAPES, description="width profiles across the layers")
    activation: StrChoice = ("relu", "gelu", "tanh")
    ratio: float = Field(default=2.0, description="factor between neighbouring layers' widths")
    min_width: int | None = Field(
        default=None,
        description="units of the narrowest layer (null: the number of classes, at least 2)",
    )

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

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        if value < 1.0:
            raise ValueError(f"ratio >= 1 must hold, got {value}")
        return value

    @field_validator("min_width")
    @classmethod
    def _min_width(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"min_width >= 1 must hold, got {value}")
        return value

    @model_validator(mode="after")
    def _min_width_fits(self) -> ProfileConfig:
        if self.min_width is not None and self.min_width > self.width.max:
            raise ValueError(
                f"min_width <= width.max must hold (the narrowest layer is no wider than the "
                f"widest), got min_width={self.min_width} width.max={self.width.max}"
            )
        return self

    def narrowest(self, n_outputs: int) -> int:
        """The floor of every layer's width: ``min_width``, else ``max(2, n_outputs)``."""
        return self.min_width if self.min_width is not None else max(2, int(n_outputs))

    def sample_widths(self, trial: optuna.Trial, fixed_key: str, n_outputs: int = 2) -> list[int]:
        """Suggest ``depth``, ``width`` and ``shape`` and return the layer widths (or the widths
        fixed by the trial's user attribute ``fixed_key``).

        Args:
            trial: the Optuna trial.
            fixed_key: the user attribute that fixes the widths (``codenas rightsize``).
            n_outputs: the network's outputs (classes), the default floor of every width.
        """
        depth = self.depth.suggest(trial, "depth")
        width = self.width.suggest(trial, "width")
        shape = suggest_choice(trial, "shape", self.shape)
        floor = min(self.narrowest(n_outputs), width)  # the widest layer stays `width` wide
        return fixed_widths(trial, fixed_key, depth) or width_profile(
            shape, depth, width, ratio=self.ratio, min_width=floor
        )


def narrowest_width(space: Any, n_outputs: int) -> int:
    """The narrowest layer a space allows for a task with ``n_outputs`` outputs.

    A profile space's ``narrowest(n_outputs)`` (``space.min_width``, else the number of
    classes, at least 2); 1 for a space without widths. What the rules that cut layers
    (rightsize, the code sampler's moves, distil's student) never go below.
    """
    narrowest = getattr(space, "narrowest", None)
    return int(narrowest(n_outputs)) if narrowest is not None else 1
