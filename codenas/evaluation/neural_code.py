"""The neural code of one network: its hidden activations on the validation sample.

Right-sizing and reports both read a network's code after the search has finished, when its
trained weights are gone (a search keeps only metrics). :func:`retrain` rebuilds the spec and
trains it again exactly as its trial did (same config, same seed: on the same device the same
weights); :func:`from_model` reads a network that was kept (``codenas train`` logs its model).
Either way the activations are read on the same fixed, seeded validation rows as in the search.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from codenas.spaces import Spec

if TYPE_CHECKING:
    from torch import nn

    from codenas.config import Config
    from codenas.data import Dataset


@dataclasses.dataclass
class NeuralCode:
    """A network's hidden activations on the validation sample, with what is known of it.

    Attributes:
        spec: the architecture.
        layers: one ``(n_samples, n_units)`` array per hidden layer, first to last.
        labels: ``(n_samples,)`` class labels of the rows (classification), else ``None``.
        factors: ``(n_samples, n_factors)`` generative factors of the rows, else ``None``.
        factor_names: names of the factor columns.
        metrics: values measured with the network (``val_accuracy``, coding metrics ...).
        title: what the network is, for people (``"trial 7 of study 'digits-mlp'"``).
        model: the trained module (kept for reports; may be ``None``).
    """

    spec: Spec
    layers: list[np.ndarray]
    labels: np.ndarray | None
    factors: np.ndarray | None
    factor_names: tuple[str, ...]
    metrics: dict[str, float]
    title: str
    model: Any = None

    @property
    def widths(self) -> list[int]:
        return [int(a.shape[1]) for a in self.layers]


def sample_targets(data: Dataset, rows: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Labels and factors of validation ``rows`` (an index tensor), where the data has them."""
    labels = data.val.y[rows].cpu().numpy() if data.task == "classification" else None
    factors = data.val.factors[rows].cpu().numpy() if data.val.factors is not None else None
    return labels, factors


def trial_seed_of(config: Config, number: int, retry_of: int | None = None) -> int:
    """The training seed of trial ``number`` (a retry uses the seed of the trial it re-runs)."""
    from codenas.training.runtime import trial_seed

    return trial_seed(config, _Numbered(number), retry_of)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class _Numbered:
    number: int


def replay_config(config: Config, recorded: Mapping[str, float]) -> Config:
    """``config`` with the training budget the trial actually used.

    A trial may stop before ``train.epochs``: at ``train.max_time`` (wall-clock, so not
    reproducible), ``train.max_steps``, by early stopping or at a rung of the schedule. Its
    recorded ``epochs`` and ``steps`` fix the budget exactly: ``epochs`` = the epochs it
    started, ``max_steps`` = the steps it took, no time limit. ``epochs`` alone (a trial the
    schedule stopped records its values at that rung, without ``steps``) sets the epochs.
    """
    epochs, steps = recorded.get("epochs"), recorded.get("steps")
    if epochs is None:
        return config
    from codenas.config import Config

    raw = config.to_dict()
    raw["train"]["epochs"] = max(1, int(epochs))
    if steps is not None:
        raw["train"]["max_steps"] = max(1, int(steps))
    raw["train"]["max_time"] = None
    return Config.from_dict(raw, source="replay")


def retrain(
    config: Config,
    spec: Spec,
    *,
    seed: int,
    title: str,
    recorded: Mapping[str, float] | None = None,
    data: Dataset | None = None,
) -> NeuralCode:
    """Build ``spec`` and train it briefly with ``config`` and ``seed``, as a trial does.

    Args:
        config: the study's config (``data``, ``train``, ``metrics``, objectives).
        spec: the architecture; adapted to the dataset's input shape and outputs if needed.
        seed: the trial's seed (:func:`trial_seed_of`).
        title: what the network is, for people.
        recorded: the trial's recorded metrics: its ``epochs`` and ``steps`` replay the budget
            it actually trained for (see :func:`replay_config`).
        data: the loaded dataset of ``config`` (loaded here if not given).
    """
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.training.runtime import default_threads, set_threads

    set_threads(config.train.threads or default_threads())  # as the search does
    if recorded:
        config = replay_config(config, recorded)
    data = data if data is not None else load_dataset(config.data)
    spec = _fit(spec, data)
    evaluator = Evaluator(config, data)
    evaluation = evaluator.evaluate(spec, seed=seed)
    labels, factors = sample_targets(data, evaluator.sample_rows)
    return NeuralCode(
        spec=spec,
        layers=list(evaluation.layers),
        labels=labels,
        factors=factors,
        factor_names=tuple(data.factor_names),
        metrics=dict(evaluation.metrics),
        title=title,
        model=evaluation.train.model,
    )


def from_model(
    config: Config,
    spec: Spec,
    model: nn.Module,
    *,
    title: str,
    metrics: dict[str, float] | None = None,
    data: Dataset | None = None,
) -> NeuralCode:
    """Read a trained ``model``'s code on the validation sample of ``config``'s data."""
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.metrics import capture_activations

    data = data if data is not None else load_dataset(config.data)
    evaluator = Evaluator(config, data)  # its fixed, seeded validation rows
    device = next(iter(model.parameters())).device
    layers = capture_activations(model, evaluator.sample_x.to(device))
    labels, factors = sample_targets(data, evaluator.sample_rows)
    return NeuralCode(
        spec=spec,
        layers=layers,
        labels=labels,
        factors=factors,
        factor_names=tuple(data.factor_names),
        metrics=dict(metrics or {}),
        title=title,
        model=model,
    )


def _fit(spec: Spec, data: Dataset) -> Spec:
    if tuple(spec.input_shape) != tuple(data.input_shape) or spec.n_outputs != data.n_outputs:
        return spec.adapt(tuple(data.input_shape), data.n_outputs)
    return spec
