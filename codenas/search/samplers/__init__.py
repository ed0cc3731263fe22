"""Samplers of codenas's own: the code-guided :class:`CodeSampler`, and its user-attr contract.

A plain Optuna objective that wants the code sampler's moves does two things::

    widths = proposed_widths(trial) or my_profile(depth, width)   # build these hidden widths
    ...
    report_layers(trial, hidden_activations)                      # after training

See docs/sampler.md for the rules, the options and the attributes read and written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codenas.neuralcode import LayerUsage, Move, usage_from_attr
from codenas.search.samplers.code import (
    LAYERS_ATTR,
    PARAMS_ATTR,
    PARENT_ATTR,
    REASON_ATTR,
    RULE_ATTR,
    VALUES_ATTR,
    WIDTHS_ATTR,
    CodeSampler,
    check_options,
    make_base_sampler,
)
from codenas.search.samplers.registry import SamplerPlugin, get_sampler, register_sampler

__all__ = [
    "LAYERS_ATTR",
    "PARAMS_ATTR",
    "PARENT_ATTR",
    "REASON_ATTR",
    "RULE_ATTR",
    "VALUES_ATTR",
    "CodeSampler",
    "LayerUsage",
    "Move",
    "SamplerPlugin",
    "check_options",
    "get_sampler",
    "lineage",
    "make_base_sampler",
    "proposed_widths",
    "register_sampler",
    "report_layers",
    "usage_from_attr",
]


def report_layers(trial: Any, layers: Sequence[Any]) -> list[dict[str, Any]]:
    """Record a trained network's per-layer code on ``trial`` (user attribute ``code.layers``).

    Args:
        trial: the ``optuna.Trial`` the objective runs.
        layers: either the hidden activations, one ``(n_samples, n_units)`` array per hidden
            layer, first to last, on the same inputs (e.g. a validation batch of a few hundred
            rows); or already-measured dicts ``{"width", "dead_fraction", "effective_rank",
            "cka_previous"}``.

    Returns:
        The list of dicts written.

    Raises:
        ValueError: the dicts do not follow the contract.
    """
    if layers and all(isinstance(layer, dict) for layer in layers):
        if usage_from_attr(layers) is None:
            raise ValueError(
                "report_layers: each layer needs width (int >= 1), dead_fraction in [0, 1], "
                f"effective_rank > 0 and optionally cka_previous, got {list(layers)[:2]}"
            )
        value = [dict(layer) for layer in layers]
    else:
        from codenas.metrics import layer_code

        value = layer_code(list(layers))
    trial.set_user_attr(LAYERS_ATTR, value)
    return value


def proposed_widths(trial: Any, attr: str = WIDTHS_ATTR) -> list[int] | None:
    """The exact hidden widths the code sampler fixed for ``trial``, or ``None``.

    The sampler also sets the ``depth`` parameter to their number; an objective that builds
    its widths from ``depth``/``width`` builds these instead when they are given.
    """
    value = trial.user_attrs.get(attr)
    return None if value is None else [int(w) for w in value]


def lineage(user_attrs: dict[str, Any]) -> str:
    """One short line saying which rule proposed a trial, from which trial: ``shrink<-#12``.

    ``""`` for a trial the base sampler proposed (or one without the code sampler).
    """
    rule = user_attrs.get(RULE_ATTR)
    if not rule:
        return ""
    parent = user_attrs.get(PARENT_ATTR)
    return str(rule) if parent is None else f"{rule}<-#{parent}"
