"""``rank_early``: the early score (:mod:`codenas.metrics.derived`) of specs after a brief
training on a dataset, for ranking architectures outside a search."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codenas.config import Config
from codenas.errors import ConfigError
from codenas.metrics.derived import (
    DERIVED,
    Derived,
    derived_needs,
    early_score,
    layer_values,
)
from codenas.spaces import Spec, get_space

# ----------------------------------------------------------------------------- rank_early


def _resolve(data_config: Any, budget: int | None, samples: int) -> Config:
    """A config that trains ``budget`` epochs on ``data_config`` and computes ``early_score``."""
    from pydantic import BaseModel

    from codenas.config import load_config, resolve_config_path, validate_config

    train: dict[str, Any] = {}
    if isinstance(data_config, Config):
        data, train = data_config.data.model_dump(mode="json"), data_config.train.model_dump()
    elif isinstance(data_config, BaseModel):
        data = data_config.model_dump(mode="json")
    elif isinstance(data_config, Mapping):
        data = dict(data_config)
    elif isinstance(data_config, (str, Path)):
        try:
            resolve_config_path(data_config)
        except ConfigError:
            data = {"name": str(data_config)}  # a dataset name, with its defaults
        else:
            whole = load_config(data_config)
            data, train = whole.data.model_dump(mode="json"), whole.train.model_dump()
    else:
        raise ConfigError(
            "rank_early: data_config must be a Config, a data config, a mapping with a 'name' "
            f"key, a dataset name or a config file, got {type(data_config).__name__}"
        )
    if budget is not None:
        if int(budget) < 1:
            raise ConfigError(f"rank_early: `budget >= 1` must hold, got {budget=}")
        train["epochs"] = int(budget)
    return validate_config(
        {
            "data": data,
            "train": train,
            "metrics": {"samples": samples, "log": []},
            "objectives": ["early_score"],
            "tracking": {"enabled": False},
        },
        source="rank_early",
    )


def _as_written(spec: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """A spec as a user writes it, completed: ``input_shape`` and ``n_outputs`` from the
    dataset, and the space's defaults for fields left out (``dropout``, ``pool`` ...)."""
    if not isinstance(spec, Mapping) or "space" not in spec:
        raise ConfigError(f"rank_early: a spec must be a mapping with a 'space' key, got {spec!r}")
    out = {"input_shape": list(data.input_shape), "n_outputs": int(data.n_outputs)}
    for field in dataclasses.fields(get_space(str(spec["space"])).spec_type):
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
    return {**out, **spec}


def rank_early(
    specs: Sequence[Spec | Mapping[str, Any]],
    data_config: Any,
    budget: int | None = None,
    *,
    seed: int = 0,
    samples: int = 2048,
) -> list[float]:
    """The early score of each spec after a brief training on a dataset; higher ranks first.

    Each spec is adapted to the dataset's input shape and number of outputs (so specs found on
    one dataset can be ranked on another), trained for ``budget`` epochs with codenas's
    :class:`~codenas.evaluation.evaluate.Evaluator`, and scored by :func:`early_score`.

    Args:
        specs: architectures: ``Spec`` objects, their ``to_dict()`` form, or mappings as a
            user writes them (``{"space": "mlp", "widths": [64, 32], "activation": "relu"}``):
            ``input_shape`` and ``n_outputs`` come from the dataset, left-out fields take the
            spec's defaults.
        data_config: the dataset: a :class:`~codenas.config.Config` (its ``data`` and ``train``
            sections), a data config model (``config.data``), a mapping such as
            ``{"name": "factors", "n_factors": 3}``, a dataset name (``"digits"``) or the
            name/path of a search config (``"shapes-cnn"``: its data and training settings).
        budget: brief training epochs; default the config's ``train.epochs`` (10 for a bare
            dataset).
        seed: training seed, the same for every spec (as the trials of one search differ only
            by architecture).
        samples: validation rows whose activations the effective ranks are read on.

    Returns:
        One float per spec, in order. Higher is better; scores are comparable within a call
        (same dataset, budget and seed), and across calls with those equal.

    Raises:
        ConfigError: an unknown dataset or bad settings, before any training.
    """
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.spaces import get_space, spec_from_dict
    from codenas.training.runtime import default_threads, set_threads

    config = _resolve(data_config, budget, samples)
    data = load_dataset(config.data)
    built = [s if isinstance(s, Spec) else spec_from_dict(_as_written(s, data)) for s in specs]
    for spec in built:
        space_cls = get_space(spec.space)
        space_cls(space_cls.config_model(name=spec.space)).check_input(data.input_shape)
    set_threads(config.train.threads or default_threads())
    evaluator = Evaluator(config, data, source="rank_early")
    scores = []
    for spec in built:
        adapted = spec.adapt(data.input_shape, data.n_outputs)
        scores.append(float(evaluator.evaluate(adapted, seed=seed).metrics["early_score"]))
    return scores


__all__ = ["DERIVED", "Derived", "derived_needs", "early_score", "layer_values", "rank_early"]
