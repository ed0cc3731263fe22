"""Spec -> module -> brief training -> activations -> metrics, without Optuna or MLflow.

:class:`Evaluator` is what a trial runs; it is also what ``rank_early`` and ``codenas train``
use, so every path measures an architecture the same way.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from codenas.config import Config
from codenas.metrics import capture_activations, compute_metrics, get_metric
from codenas.search.datasets import Dataset
from codenas.search.objectives import check_against_dataset
from codenas.search.training import BriefTrainer, EpochCallback, TrainResult, count_parameters
from codenas.spaces import Spec, build_model


def metric_names(config: Config) -> list[str]:
    """Every metric a trial computes: objectives, constraints and ``metrics.log``, in order."""
    names: list[str] = []
    for name in (
        *config.objective_names,
        *(c.metric for c in config.constraints),
        *config.metrics.log,
    ):
        if name not in names:
            names.append(name)
    return names


@dataclasses.dataclass
class Evaluation:
    """The outcome of evaluating one spec.

    Attributes:
        metrics: every value, flat: ``val_accuracy``, ``params``, ``effective_rank``,
            ``effective_rank/layer_0``, ..., ``time/train``, ``time/metrics``.
        train: the training result (model included).
        layers: the captured hidden activations, one ``(n_samples, n_units)`` array per layer.
    """

    metrics: dict[str, float]
    train: TrainResult
    layers: list[np.ndarray]


class Evaluator:
    """Evaluates specs on one dataset with one config.

    Args:
        config: the search config (``train``, ``metrics``, ``objectives``, ``constraints``).
        data: the loaded dataset.
        source: where the config came from, for error messages.
    """

    def __init__(self, config: Config, data: Dataset, source: str = "config") -> None:
        self.config = config
        self.data = data
        self.names = metric_names(config)
        check_against_dataset(
            self.names, task=data.task, has_factors=data.has_factors, source=source
        )
        self.trainer = BriefTrainer(data, config.train)
        # A fixed, seeded sample of validation rows on which every trial's activations are read.
        n = len(data.val)
        rng = np.random.default_rng(config.data.seed)
        rows = np.sort(rng.choice(n, size=min(n, config.metrics.samples), replace=False))
        self.sample_rows = torch.as_tensor(rows)
        self.sample_x = self.trainer.val_split.x[self.sample_rows.to(self.trainer.device)]
        needs = {need for name in self.names for need in get_metric(name).needs}
        self.labels = (
            data.val.y[self.sample_rows].cpu().numpy()
            if "labels" in needs and data.task == "classification"
            else None
        )
        self.factors = (
            data.val.factors[self.sample_rows].cpu().numpy()
            if "factors" in needs and data.val.factors is not None
            else None
        )

    def evaluate(
        self, spec: Spec, *, seed: int, on_epoch_end: EpochCallback | None = None
    ) -> Evaluation:
        """Build ``spec`` under ``seed``, train it briefly, and compute every metric."""
        torch.manual_seed(seed)
        model = build_model(spec)
        params = count_parameters(model)
        result = self.trainer.fit(model, seed=seed, on_epoch_end=on_epoch_end)
        start = time.perf_counter()
        layers = capture_activations(result.model, self.sample_x)
        values: dict[str, Any] = compute_metrics(
            self.names, layers, labels=self.labels, factors=self.factors
        )
        metrics_time = time.perf_counter() - start
        values.update(result.metrics)
        values["params"] = float(params)
        values["epochs"] = float(result.epochs)
        values["steps"] = float(result.steps)
        values["time/train"] = result.seconds
        values["time/metrics"] = metrics_time
        return Evaluation(metrics=values, train=result, layers=layers)
