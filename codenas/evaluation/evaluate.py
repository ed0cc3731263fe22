"""Spec -> module -> brief training -> activations -> metrics, without Optuna or MLflow.

:class:`Evaluator` is what a trial runs; it is also what ``rank_early`` and ``codenas train``
use, so every path measures an architecture the same way.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Container, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from codenas.config import Config
from codenas.config.objectives import check_against_dataset
from codenas.data import Dataset
from codenas.metrics import capture_layers, compute_metrics, layer_code, reads_codes
from codenas.metrics.capacity import shared_spectra
from codenas.spaces import Spec, build_model
from codenas.training.loop import BriefTrainer, EpochCallback, TrainResult, count_parameters


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
        code_layers: per hidden layer, ``{"width", "dead_fraction", "effective_rank",
            "cka_previous"}`` (:func:`codenas.metrics.layer_code`), measured whatever
            ``metrics.log`` lists: what the code-guided sampler reads.
    """

    metrics: dict[str, float]
    train: TrainResult
    layers: list[np.ndarray]
    code_layers: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class Evaluator:
    """Evaluates specs on one dataset with one config.

    Args:
        config: the search config (``train``, ``metrics``, ``objectives``, ``constraints``).
        data: the loaded dataset.
        source: where the config came from, for error messages.
        check: refuse metrics the dataset cannot feed (a search has checked them already,
            with everything else, before its first trial: ``codenas.search.study.check_data``).
    """

    def __init__(
        self, config: Config, data: Dataset, source: str = "config", *, check: bool = True
    ) -> None:
        self.config = config
        self.data = data
        self.names = metric_names(config)
        if check:
            check_against_dataset(
                self.names, task=data.task, has_factors=data.has_factors, source=source
            )
        self.trainer = BriefTrainer(data, config.train)
        # A fixed, seeded sample of validation rows on which every trial's activations are read.
        n = len(data.val)
        rng = np.random.default_rng(config.data.seed)
        # In seeded random order, not sorted: the split-based metrics (DCI, SAP, probes) fit
        # on the first 90% of rows, which must not follow the order of the user's file.
        rows = rng.permutation(n)[: min(n, config.metrics.samples)]
        self.sample_rows = torch.as_tensor(rows)
        self.sample_x = self.trainer.val_split.x[self.sample_rows.to(self.trainer.device)]
        self.context = {"task": data.task, "n_outputs": data.n_outputs}
        # Labels and factors of those rows, whenever the dataset has them: ``measure`` may be
        # asked for metrics beyond the config's (benchmarks, checkpoints).
        self.labels = (
            data.val.y[self.sample_rows].cpu().numpy() if data.task == "classification" else None
        )
        self.factors = (
            data.val.factors[self.sample_rows].cpu().numpy()
            if data.val.factors is not None
            else None
        )

    def evaluate(
        self,
        spec: Spec,
        *,
        seed: int,
        on_epoch_end: EpochCallback | None = None,
        checkpoint_metrics: Sequence[str] = (),
        checkpoint_epochs: Container[int] | None = None,
        init: Callable[[nn.Module], None] | None = None,
    ) -> Evaluation:
        """Build ``spec`` under ``seed``, train it briefly, and compute every metric.

        Args:
            spec: the architecture.
            seed: seeds the initialisation, dropout and the batch order.
            on_epoch_end: called after each epoch with ``(epoch, values)``: the validation
                metrics, ``params``, ``time/checkpoints`` (seconds spent in these callbacks so
                far) and, at ``checkpoint_epochs``, the ``checkpoint_metrics`` measured on the
                model as it is at that epoch. It may raise ``StopTraining`` (training ends there
                and the model is measured) or ``optuna.TrialPruned`` (propagates).
            checkpoint_metrics: metric names to measure at checkpoints; keep them cheap
                (``codenas.config.objectives.CHECKPOINT_METRICS``).
            checkpoint_epochs: the epochs at which to measure them (default: every epoch).
            init: called with the freshly built module before training, to set its weights
                (the code sampler's optional weight inheritance); default: the seeded
                initialisation.

        The returned metrics include ``time/checkpoints`` when ``on_epoch_end`` is given; that
        time is also part of ``time/train``, as the callbacks run inside the training loop.
        """
        torch.manual_seed(seed)
        model = build_model(spec)
        if init is not None:
            init(model)
        params = count_parameters(model)
        callback = on_epoch_end
        spent = [0.0]
        if on_epoch_end is not None:
            names = list(checkpoint_metrics)

            def callback(epoch: int, val: dict[str, float]) -> None:
                start = time.perf_counter()
                values = {**val, "params": float(params)}
                if names and (checkpoint_epochs is None or epoch in checkpoint_epochs):
                    values = self.measure(model, names, values)[0]
                values["time/checkpoints"] = spent[0] + time.perf_counter() - start
                try:
                    on_epoch_end(epoch, values)
                finally:
                    spent[0] += time.perf_counter() - start

        result = self.trainer.fit(model, seed=seed, on_epoch_end=callback)
        run_values = dict(result.metrics)
        run_values["params"] = float(params)
        start = time.perf_counter()
        with shared_spectra():  # layer_code reuses the spectra effective_rank computed
            values, layers = self.measure(result.model, self.names, run_values)
            try:
                code_layers = layer_code(layers)
            except ValueError:  # non-finite activations: no code signal, not a failed trial
                code_layers = []
        metrics_time = time.perf_counter() - start
        values["epochs"] = float(result.epochs)
        values["steps"] = float(result.steps)
        values["time/train"] = result.seconds
        values["time/metrics"] = metrics_time
        if on_epoch_end is not None:
            values["time/checkpoints"] = spent[0]
        return Evaluation(metrics=values, train=result, layers=layers, code_layers=code_layers)

    def measure(
        self, model: nn.Module, names: Sequence[str], run_values: dict[str, float]
    ) -> tuple[dict[str, float], list[np.ndarray]]:
        """The metrics ``names`` of ``model`` as it is now, with the training's ``run_values``.

        Reads the hidden activations on the fixed validation rows, computes the coding metrics,
        adds ``run_values`` (``val_loss``, ``params``, ...) and then the derived metrics
        (``early_score``), which combine both. The model's mode is left as it was.

        Returns:
            ``(values, layers)``: the flat metric dict and the ``(n_samples, n_units)`` arrays.
        """
        from codenas.metrics.derived import DERIVED, derived_needs

        # One pass: channel-mean units for most metrics, per-position codes for NASWOT.
        wanted = [*names, *derived_needs(names)]
        captured = capture_layers(model, self.sample_x, codes=reads_codes(wanted))
        layers = captured.units
        values: dict[str, float] = compute_metrics(
            wanted,
            layers,
            labels=self.labels,
            factors=self.factors,
            codes=captured.codes or None,
        )
        values.update(run_values)
        for name in names:
            if name in DERIVED:
                values[name] = DERIVED[name].compute(values, self.context)
        return values, layers
