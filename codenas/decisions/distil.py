"""Distil a trained network into a student sized from the teacher's own code.

``distil(source)`` proceeds in three steps:

1. **Student.** By default the right-size rule (:mod:`codenas.decisions.rightsize`) is applied
   to the teacher's code read on the validation sample: layers whose linear CKA with the layer
   kept before them is at least ``cka_threshold`` are dropped, every other layer is cut to
   ``ceil(margin x effective rank)`` units (at most its live units). Student layer ``i`` *stands
   for* the teacher layer it was cut from. ``student=`` gives an architecture instead (its
   layers then stand for teacher layers at the same relative depth).
2. **Training** (a small Lightning Fabric loop, the brief-training loop's optimiser and batch
   order, same budget as the teacher's config): knowledge distillation (Hinton, Vinyals & Dean
   2015) ::

       loss = (1 - alpha) CE(s, y) + alpha T^2 KL(softmax(t / T) || softmax(s / T))

   with ``s``, ``t`` the student's and teacher's logits (for regression, the KL term is the
   squared error to the teacher's outputs). At every step a **transfer set** batch of as many
   rows adds ``alpha T^2 KL`` on rows beyond the training rows, labelled by the teacher then
   and there (``transfer``: training rows plus Gaussian noise, or random mixes of two training
   rows as in Beyer et al. 2022; or rows the caller gives, e.g. fresh draws of a generator):
   a teacher that fits its own training rows gives near one-hot targets there, off them it
   says what it knows. Optionally the student **starts from the teacher's weights** cut to
   its widths (``init="teacher"``, :func:`student_from_teacher`: removed layers folded into
   their reader, each kept layer's most-used units kept, the dropped units' means folded into
   the next bias; exact where only dead or constant units go), and ``hint`` times a
   FitNets-style representation term (Romero et al. 2015): each student layer, through a
   trained linear map, regresses the z-scored units of the teacher layer it stands for. The
   defaults (``T``, ``alpha``, ``hint``, transfer set, init) were chosen on a dev task only
   (``benchmarks/distillation.py --choose``) and are reported on others (docs/editing.md).
3. **Record.** Validation and test metrics, the student's coding metrics (as ``codenas train``
   measures them), and the linear CKA between each student layer and the teacher layer it
   stands for (``cka_teacher/layer_i``), logged as an MLflow run (``codenas.role=distil``) with
   the student model, linked to the teacher by ``codenas.source_*`` tags.

``train_student(..., teacher=None)`` trains the same student from scratch with the same loop,
budget and seed: the baseline the benchmark compares with.

One procedure in one file (about 700 lines): the student's architecture and initial weights
from the teacher's code, the distillation loss and loop, the layer-to-layer CKA and the run it
logs. :func:`brief_trial_warning` is the one line ``codenas distil`` prints before sizing a
student from a search trial's briefly trained code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from codenas.errors import ConfigError
from codenas.spaces import Spec, build_model, layer_sizes, with_layer_sizes

if TYPE_CHECKING:
    from codenas.config import Config, TrainConfig
    from codenas.data import Dataset
    from codenas.decisions.rightsize import LayerPlan
    from codenas.decisions.source import Source

from codenas.decisions.distil_defaults import (
    DEFAULT_ALPHA,
    DEFAULT_HINT,
    DEFAULT_INIT,
    DEFAULT_TEMPERATURE,
    DEFAULT_TRANSFER,
)

# ----------------------------------------------------------------------------- student


def depth_of(spec: Spec) -> int:
    return len(layer_sizes(spec))


def propose_student(
    source: Source,
    *,
    margin: float | None = None,
    cka_threshold: float | None = None,
) -> tuple[Spec, list[LayerPlan], list[int]]:
    """The right-sized student of the teacher, from the teacher's code on the validation sample.

    Returns:
        ``(student spec, the rule's plan per teacher layer, stands_for)`` where
        ``stands_for[i]`` is the teacher layer student layer ``i`` was cut from.
    """
    from codenas.decisions.rightsize import (
        DEFAULT_CKA_THRESHOLD,
        DEFAULT_MARGIN,
        plan_layers,
        usage_from_code,
    )
    from codenas.evaluation.neural_code import from_model
    from codenas.spaces import narrowest_width

    code = from_model(
        source.config, source.spec, source.model(), title=source.title, data=source.data
    )
    usage, cka = usage_from_code(code)
    plan = plan_layers(
        usage,
        cka if len(usage) > 1 else None,
        margin=DEFAULT_MARGIN if margin is None else margin,
        cka_threshold=DEFAULT_CKA_THRESHOLD if cka_threshold is None else cka_threshold,
        min_width=narrowest_width(source.config.space, source.spec.n_outputs),
    )
    kept = [p for p in plan if p.new_width is not None]
    widths = tuple(int(p.new_width) for p in kept if p.new_width is not None)
    spec = with_layer_sizes(source.spec, widths)
    return spec, plan, [p.index for p in kept]


def stands_for_by_depth(student_depth: int, teacher_depth: int) -> list[int]:
    """Teacher layer at the same relative depth as each student layer (last maps to last)."""
    if student_depth == 1:
        return [teacher_depth - 1]
    return [round(i * (teacher_depth - 1) / (student_depth - 1)) for i in range(student_depth)]


# ----------------------------------------------------------------------------- initialisation


def most_used_units(units: Any) -> list[int]:
    """Unit indices of one layer's code ``(n_samples, n_units)``, most used first (by
    variance over the rows; a dead or constant unit has variance 0 and comes last)."""
    import numpy as np

    var = np.asarray(units, dtype=np.float64).var(axis=0)
    return [int(i) for i in np.argsort(-var, kind="stable")]


def check_cut(teacher_spec: Spec, student_spec: Spec, stands_for: Sequence[int]) -> None:
    """Refuse (one line) a student that :func:`student_from_teacher` cannot cut."""
    sizes = layer_sizes(student_spec)
    kept = list(stands_for)
    t_sizes = layer_sizes(teacher_spec)
    if (
        len(kept) != len(sizes)
        or sorted(set(kept)) != kept
        or with_layer_sizes(teacher_spec, [t_sizes[j] for j in kept])
        != with_layer_sizes(student_spec, [t_sizes[j] for j in kept])
        or any(sizes[i] > t_sizes[j] for i, j in enumerate(kept))
    ):
        raise ConfigError(
            "--init teacher: the student must be a cut of the teacher (same space and settings, "
            f"each layer no wider than the teacher layer it stands for); got layers {sizes} "
            f"standing for teacher layers {kept} of {t_sizes}"
        )


@torch.no_grad()
def student_from_teacher(
    teacher: nn.Module,
    teacher_spec: Spec,
    student_spec: Spec,
    stands_for: Sequence[int],
    x: torch.Tensor,
) -> nn.Module:
    """The student initialised from the teacher's code: the rightsize rule's cut, applied to
    the teacher's weights.

    Teacher layers no student layer stands for are removed, each folded into the layer that
    reads it (``Space.remove_layer``: exact where its units stayed in their linear range);
    then each kept layer keeps its ``width`` most-used units on ``x`` (largest variance,
    :func:`most_used_units`), and the mean of every unit it drops is folded into the bias of
    what reads it (``fold_affine``). Where the dropped units are dead or constant on ``x`` the
    student computes exactly the teacher's function there.

    Args:
        teacher: the trained teacher (left unchanged).
        teacher_spec, student_spec: their architectures (same space and settings, the
            student's layers no wider than the teacher layers they stand for).
        stands_for: strictly increasing teacher layer indices, one per student layer.
        x: rows ``(n, *input_shape)`` on which the units' use is measured (training rows).

    Returns:
        A module of ``build_model(student_spec)``'s architecture holding the cut weights.

    Raises:
        ConfigError: the student cannot be cut from this teacher (the message says why).
    """
    import numpy as np

    from codenas.metrics import capture_activations
    from codenas.spaces import fold_affine, keep_units, space_of

    check_cut(teacher_spec, student_spec, stands_for)
    sizes, kept, t_sizes = layer_sizes(student_spec), list(stands_for), layer_sizes(teacher_spec)
    space = space_of(teacher_spec)
    spec, model = teacher_spec, teacher.cpu().eval()
    for j in sorted(set(range(len(t_sizes))) - set(kept), reverse=True):
        spec, model = space.remove_layer(model, spec, j)
    x = x.cpu()
    for i, width in enumerate(sizes):
        units = capture_activations(model, x)[i]
        order = most_used_units(units)
        keep, drop = sorted(order[:width]), order[width:]
        if drop:
            mask = np.zeros(units.shape[1])
            mask[keep] = 1.0
            shift = np.zeros(units.shape[1])
            shift[drop] = units[:, drop].astype(np.float64).mean(axis=0)
            model = fold_affine(model, spec, i, np.diag(mask), shift)
            spec, model = keep_units(model, spec, i, keep)
    out = build_model(student_spec)
    out.load_state_dict(model.state_dict())
    return out.eval()


# ----------------------------------------------------------------------------- training

TRANSFERS = ("none", "mixup", "noise")
"""Transfer sets beyond the training rows, labelled by the teacher at each step: ``mixup``
(each row a random convex mix of two training rows, weight ~ U(0, 1): the "function matching"
of Beyer et al. 2022) or ``noise`` (a training row plus Gaussian noise of half each input
feature's std). Given rows (``transfer_x``, e.g. fresh draws of a generator) replace them."""

INITS = ("random", "teacher")
"""``random``: the space's own initialisation; ``teacher``: :func:`student_from_teacher`."""


@dataclasses.dataclass
class StudentRun:
    """One trained student: the module, its task metrics, wall time and steps."""

    model: nn.Module
    metrics: dict[str, float]
    seconds: float
    steps: int


def _units(out: torch.Tensor) -> torch.Tensor:
    return out if out.dim() == 2 else out.flatten(2).mean(dim=2)


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's distillation term ``T^2 KL(softmax(t / T) || softmax(s / T))``, averaged over
    rows of logits ``(n, n_classes)`` (the ``T^2`` keeps its gradients' scale as T changes)."""
    return temperature**2 * F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )


def check_settings(
    temperature: float, alpha: float, hint: float, transfer: str, init: str, prefix: str = ""
) -> None:
    """Refuse invalid distillation settings in one line (``prefix`` = ``"--"`` for the CLI)."""
    if not temperature > 0 or not 0.0 <= alpha <= 1.0 or not hint >= 0.0:
        raise ConfigError(
            f"{prefix}temperature > 0, 0 <= {prefix}alpha <= 1 and {prefix}hint >= 0 must hold, "
            f"got {temperature}, {alpha}, {hint}"
        )
    if transfer not in TRANSFERS:
        raise ConfigError(f"{prefix}transfer: one of {', '.join(TRANSFERS)}, got {transfer!r}")
    if init not in INITS:
        raise ConfigError(f"{prefix}init: one of {', '.join(INITS)}, got {init!r}")


def train_student(
    spec: Spec,
    data: Dataset,
    cfg: TrainConfig,
    *,
    seed: int,
    teacher: nn.Module | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    hint: float = DEFAULT_HINT,
    stands_for: Sequence[int] | None = None,
    transfer: str = "none",
    transfer_x: torch.Tensor | None = None,
    init: nn.Module | None = None,
) -> StudentRun:
    """Train ``spec`` on ``data`` for ``cfg.epochs`` epochs, distilling ``teacher`` if given.

    Every step takes one batch of training rows (label loss, and with a teacher the KD term);
    with a transfer set (``transfer`` or ``transfer_x``) it also takes as many transfer rows,
    on which only the KD term applies. Same epochs, batches and optimiser steps either way.

    Args:
        spec: the student architecture.
        data: the dataset (train rows for training; validation and test are measured).
        cfg: the ``train:`` config (epochs, batch size, optimiser, accelerator, precision).
        seed: seeds the initialisation, the batch order and the transfer rows.
        teacher: the trained teacher, or ``None`` to train from scratch (labels only).
        temperature: ``T`` > 0 of the softened logits.
        alpha: weight in [0, 1] of the distillation term (``1 - alpha`` on the labels).
        hint: weight >= 0 of the representation term (needs ``stands_for``).
        stands_for: the teacher layer each student layer stands for.
        transfer: a generated transfer set (:data:`TRANSFERS`); needs a teacher.
        transfer_x: unlabelled rows ``(m, *input_shape)`` to use as the transfer set instead.
        init: a module of ``spec``'s architecture whose weights the student starts from
            (e.g. :func:`student_from_teacher`); ``None``: the space's initialisation.

    Returns:
        The :class:`StudentRun` (``val_*``/``test_*`` metrics, module on the CPU, eval mode).
    """
    from codenas.decisions.erase import task_metrics
    from codenas.metrics import capture_activations
    from codenas.training.fabric import Fabric
    from codenas.training.loop import make_optimizer

    check_settings(temperature, alpha, hint, transfer, "random")
    classification = data.task == "classification"
    torch.manual_seed(seed)
    student = build_model(spec)
    if init is not None:
        student.load_state_dict(init.state_dict())
    x_all, y_all = data.train.x, data.train.y
    distilling = teacher is not None and alpha > 0
    hinting = teacher is not None and hint > 0
    transferring = distilling and (transfer != "none" or transfer_x is not None)
    maps = nn.ModuleList()
    targets: list[torch.Tensor] = []
    teacher_out = None
    if teacher is not None:
        teacher = teacher.cpu().eval()
        with torch.no_grad():
            teacher_out = torch.cat(
                [teacher(x_all[s : s + 1024]).float() for s in range(0, len(x_all), 1024)]
            )
    if hinting:
        assert teacher is not None
        if stands_for is None:
            raise ConfigError("the hint term needs the teacher layer each student layer stands for")
        units = capture_activations(teacher, x_all, [teacher.hidden_layers[j] for j in stands_for])
        for i, u in enumerate(units):
            t = torch.as_tensor(u)
            t = (t - t.mean(0)) / t.std(0).clamp_min(1e-6)
            targets.append(t)
            maps.append(nn.Linear(layer_sizes(spec)[i], t.shape[1]))
    fabric = Fabric(accelerator=cfg.accelerator, devices=1, precision=cfg.precision)
    holder = nn.ModuleDict({"student": student, "maps": maps})
    optimizer = make_optimizer(holder, cfg)
    fholder, optimizer = fabric.setup(holder, optimizer)
    device = fabric.device
    x_dev, y_dev = x_all.to(device), y_all.to(device)
    t_dev = None if teacher_out is None else teacher_out.to(device)
    targets = [t.to(device) for t in targets]
    extra = None if transfer_x is None else transfer_x.to(device)
    if transferring:
        assert teacher is not None
        teacher = teacher.to(device)
    feature_std = x_dev.std(0, keepdim=True)
    captured: list[torch.Tensor] = []
    hooks = []
    if hinting:
        for block in student.hidden_layers:
            hooks.append(block.register_forward_hook(lambda _m, _i, out: captured.append(out)))
    generator = torch.Generator().manual_seed(seed)

    def transfer_batch(size: int) -> torch.Tensor:
        if extra is not None:
            return extra[torch.randint(len(extra), (size,), generator=generator).to(device)]
        rows = torch.randint(len(x_dev), (2, size), generator=generator).to(device)
        if transfer == "mixup":
            shape = (size,) + (1,) * (x_dev.dim() - 1)
            lam = torch.rand(shape, generator=generator).to(device)
            return lam * x_dev[rows[0]] + (1 - lam) * x_dev[rows[1]]
        noise = torch.randn(x_dev[rows[0]].shape, generator=generator).to(device)
        return x_dev[rows[0]] + 0.5 * feature_std * noise

    fholder.train()
    steps = 0
    start = time.perf_counter()
    n = len(x_all)
    for _epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            optimizer.zero_grad(set_to_none=True)
            captured.clear()
            # The student itself: Fabric moved its parameters to the device in setup().
            out = student(x_dev[idx]).float()
            y = y_dev[idx]
            label = F.cross_entropy(out, y) if classification else F.mse_loss(out, y)
            loss = label if not distilling else (1.0 - alpha) * label
            if distilling:
                assert t_dev is not None
                t = t_dev[idx]
                if classification:
                    loss = loss + alpha * kd_loss(out, t, temperature)
                else:
                    loss = loss + alpha * F.mse_loss(out, t)
            if hinting:
                terms = [
                    F.mse_loss(maps[k](_units(captured[k])), targets[k][idx])
                    for k in range(len(targets))
                ]
                loss = loss + hint * torch.stack(terms).mean()
            if transferring:
                assert teacher is not None
                xt = transfer_batch(len(idx))
                with torch.no_grad():
                    tt = teacher(xt).float()
                captured.clear()
                st = student(xt).float()
                if classification:
                    loss = loss + alpha * kd_loss(st, tt, temperature)
                else:
                    loss = loss + alpha * F.mse_loss(st, tt)
            fabric.backward(loss)
            optimizer.step()
            steps += 1
    seconds = time.perf_counter() - start
    for h in hooks:
        h.remove()
    if not math.isfinite(float(loss.detach())):
        from codenas.training.loop import TrainingDiverged

        raise TrainingDiverged(f"distillation loss became {float(loss.detach())}")
    student = student.cpu().eval()
    return StudentRun(student, task_metrics(student, data), seconds, steps)


# ----------------------------------------------------------------------------- distil


@dataclasses.dataclass
class Distilled:
    """The outcome of :func:`distil`.

    Attributes:
        title: the teacher; teacher_spec, student_spec: the two architectures.
        plan: the right-size rule's plan per teacher layer (``None`` for a given student).
        stands_for: the teacher layer each student layer stands for.
        model: the trained student.
        metrics: the student's values: ``val_*``, ``test_*``, ``params``, coding metrics,
            ``cka_teacher/layer_i``, ``params_ratio``, ``time/train``.
        teacher_metrics: the teacher's ``val_*``/``test_*`` and ``params``.
        temperature, alpha, hint, transfer, init: the distillation settings; epochs, seed:
            the budget.
        run_id, model_uri: the MLflow run and model (``None`` when not logged).
    """

    title: str
    teacher_spec: Spec
    student_spec: Spec
    plan: list[LayerPlan] | None
    stands_for: list[int]
    model: nn.Module
    metrics: dict[str, float]
    teacher_metrics: dict[str, float]
    temperature: float
    alpha: float
    hint: float
    transfer: str
    init: str
    epochs: int
    seed: int
    links: dict[str, str] = dataclasses.field(default_factory=dict)
    run_id: str | None = None
    model_uri: str | None = None

    def summary(self) -> str:
        from codenas.search.pareto import spec_summary

        m, t = self.metrics, self.teacher_metrics
        lines = [
            f"distilled {self.title} ({spec_summary(self.teacher_spec.to_dict())}, "
            f"{int(t['params']):,} params) into {spec_summary(self.student_spec.to_dict())} "
            f"({int(m['params']):,} params, {100 * m['params_ratio']:.0f}% of the teacher's)",
            f"  KD: T={self.temperature:g}, alpha={self.alpha:g}, hint={self.hint:g}, "
            f"transfer set {self.transfer}, init {self.init}; "
            f"{self.epochs} epochs, seed {self.seed}, {m['time/train']:.1f} s",
        ]
        if self.plan is not None:
            for p in self.plan:
                new = "removed" if p.new_width is None else str(p.new_width)
                lines.append(f"  teacher layer {p.index}: {p.usage.width} -> {new}  ({p.reason})")
        for key in ("val_accuracy", "test_accuracy", "val_r2", "test_r2"):
            if key in m:
                lines.append(
                    f"  {key}: student {m[key]:.4f}, teacher {t[key]:.4f} "
                    f"({100 * (m[key] - t[key]):+.2f} pp)"
                )
        cka = ", ".join(
            f"layer {i} ~ teacher {j}: {m[f'cka_teacher/layer_{i}']:.3f}"
            for i, j in enumerate(self.stands_for)
        )
        lines.append(f"  linear CKA with the teacher layer each student layer stands for: {cka}")
        return "\n".join(lines)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def distil(
    source: Source,
    *,
    student: Spec | None = None,
    margin: float | None = None,
    cka_threshold: float | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    hint: float = DEFAULT_HINT,
    transfer: str = DEFAULT_TRANSFER,
    init: str = DEFAULT_INIT,
    epochs: int | None = None,
    seed: int = 0,
    log: bool = True,
    experiment: str | None = None,
) -> Distilled:
    """Distil ``source``'s network into a right-sized (or given) student (module docstring).

    Args:
        source: the teacher (:mod:`codenas.decisions.source`).
        student: the student architecture (default: the right-size rule on the teacher).
        margin, cka_threshold: the rule's parameters (defaults: the rule's).
        temperature, alpha, hint: the distillation settings.
        transfer: the transfer set (:data:`TRANSFERS`).
        init: the student's initialisation (:data:`INITS`).
        epochs: training epochs (default: the teacher config's ``train.epochs``).
        seed: the student's seed.
        log: log the student to MLflow (when the source has a tracking store).
        experiment: the MLflow experiment (default: the source's).

    Raises:
        ConfigError: a student of another space or input/output size than the teacher's, or
            invalid settings (checked before any training).
    """
    from codenas.config import Config
    from codenas.decisions.transfer import code_metric_names
    from codenas.evaluation.evaluate import Evaluator
    from codenas.metrics import capture_activations, linear_cka

    check_settings(temperature, alpha, hint, transfer, init, prefix="--")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs: must be at least 1, got {epochs}")
    teacher_spec = source.spec
    layer_sizes(teacher_spec)
    if student is not None:
        if student.space != teacher_spec.space:
            raise ConfigError(
                f"--student: a {student.space!r} student for a {teacher_spec.space!r} teacher; "
                "give a spec of the teacher's space"
            )
        from codenas.decisions.transfer import adapt_to

        student = adapt_to(student, source.data)[0]
    if student is not None:
        stands_for = stands_for_by_depth(depth_of(student), depth_of(teacher_spec))
        if init == "teacher":
            check_cut(teacher_spec, student, stands_for)
    teacher = source.model()
    plan = None
    if student is None:
        student, plan, stands_for = propose_student(
            source, margin=margin, cka_threshold=cka_threshold
        )
    raw = source.config.to_dict()
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    raw["train"]["max_steps"] = None
    raw["train"]["max_time"] = None
    raw["metrics"]["log"] = code_metric_names(source.config, source.data)
    config = Config.from_dict(raw, source="codenas distil")
    start = None
    if init == "teacher":
        start = student_from_teacher(
            teacher, teacher_spec, student, stands_for, source.data.train.x
        )
    run = train_student(
        student,
        source.data,
        config.train,
        seed=seed,
        teacher=teacher,
        temperature=temperature,
        alpha=alpha,
        hint=hint,
        stands_for=stands_for,
        transfer=transfer,
        init=start,
    )
    evaluator = Evaluator(config, source.data)
    values, layers = evaluator.measure(
        run.model, config.metrics.log, {**run.metrics, "params": float(_count(run.model))}
    )
    sample = evaluator.sample_x.cpu()
    teacher_layers = capture_activations(teacher, sample)
    for i, j in enumerate(stands_for):
        values[f"cka_teacher/layer_{i}"] = linear_cka(layers[i], teacher_layers[j])
    teacher_metrics = {**task_metrics_of(teacher, source.data), "params": float(_count(teacher))}
    values["params_ratio"] = values["params"] / teacher_metrics["params"]
    values["time/train"] = run.seconds
    values["steps"] = float(run.steps)
    result = Distilled(
        title=source.title,
        teacher_spec=teacher_spec,
        student_spec=student,
        plan=plan,
        stands_for=list(stands_for),
        model=run.model,
        metrics={k: float(v) for k, v in values.items()},
        teacher_metrics=teacher_metrics,
        temperature=temperature,
        alpha=alpha,
        hint=hint,
        transfer=transfer,
        init=init,
        epochs=config.train.epochs,
        seed=seed,
        links=dict(source.links),
    )
    if log and source.tracking_uri is not None:
        result.run_id, result.model_uri = _log(result, source, config, experiment)
    return result


def brief_trial_warning(source: Source, student: Spec | None, margin: float | None) -> str | None:
    """One line when the student would be sized by the rule from a search trial's code.

    A search trains each trial briefly; the right-size rule, read on such a code, cut
    students 31-35 pp below their teacher (docs/editing.md). ``None`` when a student or a
    margin is given, or the source is not a trial.
    """
    if source.kind != "trial" or student is not None or margin is not None:
        return None
    return (
        f"warning: {source.title} was trained for the search's brief budget "
        f"({source.config.train.epochs} epochs); a student sized from its code by the right-size "
        "rule can end far below it (-31 to -35 pp measured, docs/editing.md): pass --margin 4 "
        "(or --student SPEC), or distil a fully trained run"
    )


def task_metrics_of(model: nn.Module, data: Dataset) -> dict[str, float]:
    from codenas.decisions.erase import task_metrics

    return task_metrics(model, data)


def _log(
    result: Distilled, source: Source, config: Config, experiment: str | None
) -> tuple[str, str]:
    from codenas.search.pareto import spec_summary
    from codenas.tracking.editing import log_edit

    assert source.tracking_uri is not None
    tags = source.run_tags(
        result.student_spec,
        f"`codenas distil`: {spec_summary(result.student_spec.to_dict())} distilled from "
        f"{source.title} ({spec_summary(result.teacher_spec.to_dict())}); distil.txt has "
        "the summary.",
        **{
            "codenas.teacher_spec": result.teacher_spec.to_json(),
            "codenas.stands_for": json.dumps(result.stands_for),
        },
    )
    texts = {
        **source.run_files(
            result.student_spec, f"student distilled from {source.title} (codenas distil)", config
        ),
        "distil.txt": result.summary() + "\n",
    }
    metrics = dict(result.metrics)
    metrics.update({f"teacher/{k}": v for k, v in result.teacher_metrics.items()})
    return log_edit(
        source.tracking_uri,
        experiment or source.experiment,
        role="distil",
        run_name=f"distil-{result.student_spec.space}-{source.data.name}",
        model=result.model,
        input_example=source.data.val.x[:2].numpy(),
        params={
            "student": result.student_spec.to_dict(),
            "temperature": result.temperature,
            "alpha": result.alpha,
            "hint": result.hint,
            "transfer": result.transfer,
            "init": result.init,
            "epochs": result.epochs,
            "seed": result.seed,
        },
        metrics=metrics,
        tags=tags,
        texts=texts,
    )


def parse_student(text: str) -> Spec:
    """``--student``: a spec file, or inline YAML/JSON of a spec mapping."""
    from pathlib import Path

    import yaml

    from codenas.decisions.transfer import load_spec_file
    from codenas.spaces import spec_from_dict

    if Path(text).is_file():
        return load_spec_file(text).spec
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None
    if not isinstance(raw, dict):
        raise ConfigError(f"--student {text!r}: neither a spec file nor a spec mapping")
    try:
        return spec_from_dict(raw)
    except KeyError as err:
        raise ConfigError(f"--student: {err}") from None
