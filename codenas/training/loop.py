"""Brief training of one candidate with Lightning Fabric.

Fabric rather than ``lightning.Trainer``: on the tiny networks of a search the Trainer's
per-step machinery costs more than the step itself (measured in ``benchmarks/overhead.py``),
while Fabric keeps Lightning's device, precision and strategy handling on a loop codenas owns.
Data stay in memory as tensors on the device; batches are index slices of a seeded permutation,
so the loader never dominates a brief training.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from codenas.config import TrainConfig
from codenas.data import Dataset, Split
from codenas.errors import ConfigError


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class StopTraining(Exception):
    """Raised by an epoch callback to end training early (e.g. multi-objective early stopping)."""


EpochCallback = Callable[[int, dict[str, float]], None]


@dataclasses.dataclass
class TrainResult:
    """What a brief training produced.

    Attributes:
        model: the trained module (plain ``nn.Module``, on the training device).
        metrics: ``val_loss``, ``test_loss``, ``train_loss`` and, for classification,
            ``val_accuracy`` and ``test_accuracy``; for regression ``val_r2`` and ``test_r2``.
        epochs: epochs started; steps: optimisation steps taken; seconds: wall time.
        stopped_by: ``"epochs"``, ``"max_steps"``, ``"max_time"`` or ``"callback"`` (the epoch
            callback raised :class:`StopTraining`).
    """

    model: nn.Module
    metrics: dict[str, float]
    epochs: int
    steps: int
    seconds: float
    stopped_by: str


def _quiet_lightning() -> None:
    for name in ("lightning_fabric", "lightning.fabric", "lightning.pytorch", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_fabric(cfg: TrainConfig) -> Any:
    """Lightning Fabric for ``train.accelerator`` and ``train.precision`` on this machine.

    Raises:
        ConfigError: Fabric refuses them here (``cuda`` without a GPU, ``tpu`` without
            torch_xla, a precision whose package is missing), in one line naming both keys.
    """
    from codenas.training.fabric import Fabric

    _quiet_lightning()
    try:
        return Fabric(accelerator=cfg.accelerator, devices=1, precision=cfg.precision)
    except (ValueError, RuntimeError, ImportError) as err:
        reason = " ".join(str(err).split())[:300]
        raise ConfigError(
            f"train.accelerator={cfg.accelerator!r}, train.precision={cfg.precision!r}: "
            f"not usable on this machine ({reason}); the defaults (auto, 32-true) run anywhere"
        ) from None


class BriefTrainer:
    """Trains candidates on one dataset with one budget; holds the data on the device.

    Args:
        data: the loaded dataset.
        cfg: the ``train:`` config (budget, optimiser, accelerator, precision).
    """

    def __init__(self, data: Dataset, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.task = data.task
        self.fabric = make_fabric(cfg)
        device = self.fabric.device
        self.train_split = _to(data.train, device)
        self.val_split = _to(data.val, device)
        self.test_split = _to(data.test, device)

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "classification":
            return F.cross_entropy(out, y)
        return F.mse_loss(out, y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: Split, prefix: str) -> dict[str, float]:
        """Mean loss of ``model`` on ``split``, and accuracy (classification) or R² (regression)."""
        was_training = model.training
        model.eval()
        total, correct = 0.0, 0
        r2 = _R2() if self.task == "regression" else None
        for start in range(0, len(split), 4096):
            x, y = split.x[start : start + 4096], split.y[start : start + 4096]
            out = model(x).float()
            total += float(self.loss(out, y)) * len(x)
            if self.task == "classification":
                correct += int((out.argmax(dim=1) == y).sum())
            if r2 is not None:
                r2.update(out, y)
        model.train(was_training)
        n = max(1, len(split))
        result = {f"{prefix}_loss": total / n}
        if self.task == "classification":
            result[f"{prefix}_accuracy"] = correct / n
        if r2 is not None:
            result[f"{prefix}_r2"] = r2.compute()
        return result

    def fit(
        self, model: nn.Module, *, seed: int, on_epoch_end: EpochCallback | None = None
    ) -> TrainResult:
        """Train ``model`` within the budget; evaluate it on validation and test.

        Args:
            model: a freshly built module (initialised under the caller's seed).
            seed: seeds the batch order.
            on_epoch_end: called after each epoch with ``(epoch, validation metrics)``. It may
                raise :class:`StopTraining` to end training there: the model is then evaluated
                and returned as after the last epoch (``stopped_by="callback"``). Any other
                exception (``optuna.TrialPruned`` included) propagates.

        Raises:
            TrainingDiverged: the training loss became NaN or infinite.
        """
        cfg = self.cfg
        optimizer = make_optimizer(model, cfg)
        fmodel, optimizer = self.fabric.setup(model, optimizer)
        fmodel.train()
        generator = torch.Generator().manual_seed(seed)
        x_all, y_all = self.train_split.x, self.train_split.y
        n = len(x_all)
        steps, stopped_by, epoch = 0, "epochs", 0
        start = time.perf_counter()
        last_epoch_loss = math.nan
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(n, generator=generator).to(self.device)
            epoch_loss = torch.zeros((), device=self.device)
            batches = 0
            for i in range(0, n, cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = self.loss(fmodel(x_all[idx]).float(), y_all[idx])
                self.fabric.backward(loss)
                optimizer.step()
                epoch_loss += loss.detach()
                batches += 1
                steps += 1
                if cfg.max_steps is not None and steps >= cfg.max_steps:
                    stopped_by = "max_steps"
                    break
                if cfg.max_time is not None and time.perf_counter() - start >= cfg.max_time:
                    stopped_by = "max_time"
                    break
            # One check per epoch: a NaN/inf loss propagates, so the epoch sum reveals it
            # without a device sync on every step.
            last_epoch_loss = float(epoch_loss) / max(1, batches)
            if not math.isfinite(last_epoch_loss):
                raise TrainingDiverged(
                    f"training loss became {last_epoch_loss} in epoch {epoch} (step {steps})"
                )
            if on_epoch_end is not None:
                try:
                    on_epoch_end(epoch, self.evaluate(fmodel, self.val_split, "val"))
                except StopTraining:
                    stopped_by = "callback"
            if stopped_by != "epochs":
                break
        seconds = time.perf_counter() - start
        metrics = {"train_loss": last_epoch_loss}
        metrics.update(self.evaluate(fmodel, self.val_split, "val"))
        metrics.update(self.evaluate(fmodel, self.test_split, "test"))
        if not math.isfinite(metrics["val_loss"]):
            raise TrainingDiverged(f"validation loss is {metrics['val_loss']} after training")
        return TrainResult(
            model=fmodel.module if hasattr(fmodel, "module") else model,
            metrics=metrics,
            epochs=epoch,
            steps=steps,
            seconds=seconds,
            stopped_by=stopped_by,
        )


class _R2:
    """Coefficient of determination over batches: torchmetrics' ``R2Score``, uniform average.

    ``1 - SSE / SST`` per target column, averaged over the columns (as
    ``sklearn.metrics.r2_score`` with ``multioutput="uniform_average"``): 1 is perfect, 0 is
    predicting the split's mean, negative for worse. ``nan`` for fewer than two rows, where R2
    is undefined (torchmetrics raises there).
    """

    def __init__(self) -> None:
        # Imported here, on regression tasks only: ``import torchmetrics`` loads every domain's
        # metrics (about 0.5 s, with matplotlib), in front of every classification search.
        from torchmetrics.regression import R2Score

        self.n = 0
        self.metric = R2Score(multioutput="uniform_average")

    def update(self, out: torch.Tensor, y: torch.Tensor) -> None:
        # float64 on the CPU: exact enough for the sums, and MPS devices have no float64.
        out = out.detach().to("cpu", torch.float64).reshape(len(y), -1)
        y = y.detach().to("cpu", torch.float64).reshape(len(y), -1)
        self.n += len(y)
        self.metric.update(out, y)

    def compute(self) -> float:
        return float(self.metric.compute()) if self.n >= 2 else math.nan


def _to(split: Split, device: torch.device) -> Split:
    return Split(
        split.x.to(device),
        split.y.to(device),
        None if split.factors is None else split.factors,
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
