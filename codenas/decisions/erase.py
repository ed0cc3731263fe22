"""Erase a concept from a trained network's code, without training: LEACE folded into weights.

``erase(source, factor, layer)`` removes a known generative factor (any labelled attribute
the dataset carries per row) from hidden layer ``layer``'s code:

1. **Fit.** The LEACE eraser (Belrose et al. 2023; :mod:`codenas.metrics.erasure`) of the
   factor's one-hot levels from the layer's activations on the *training* rows, in closed
   form. For a conv layer the eraser acts on each position's channel vector (the moments are
   accumulated over every position of every training image), which also erases the factor from
   the channel means codenas reads as the layer's units (an affine map commutes with a mean).
2. **Fold.** ``r(x) = P x + c`` is folded into what reads the layer next, so the edited network
   has the same architecture and parameter count, no extra module, and needs no training:
   the next ``Linear`` becomes ``W P`` with bias ``b + W c`` (an MLP layer, or the head after a
   CNN's last block and its global mean); the next ``Conv2d`` becomes ``W P`` per kernel tap and
   its constant ``W c`` goes into the conv bias or, with batch norm, the running mean
   (``mu - W c``). Folding through a conv is exact except that the conv's zero padding sees
   ``c`` only inside the image: outputs at the border differ by the missing taps' share of
   ``W c`` (reported as the fold error). An eraser does not fold through max pooling; such a
   layer is refused.
3. **Check, on held-out rows.** On the validation rows (the test split is only reported), a
   fresh linear probe (``LogisticRegression``, 5-fold stratified cross-validation, units
   z-scored on the training folds) reads every factor before and after, at the edited layer
   (its erased code, which is exactly what the next layer now computes from), at every later
   hidden layer and at the logits, next to the constant predictor's cross-validated accuracy
   (the majority class). A probe fitted on the eraser's own rows would be constant by
   construction; one fitted on fresh rows shows what generalises, and at later layers how much
   of the concept comes back through the non-linearities. The task's validation and test
   metrics are measured before and after.

The result is logged as an MLflow run (``codenas.role=erase``) with the edited model, linked to
the source by ``codenas.source_*`` tags.

One edit in one file (about 680 lines): fitting the eraser, folding it into each kind of next
layer (Linear, Conv2d with bias or batch norm, the head), checking the fold, the before/after
probes and the run it logs are one procedure; the pure closed form is ``metrics/erasure.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from codenas.errors import ConfigError, DataError, unknown_name_message
from codenas.metrics.erasure import (
    AffineEraser,
    leace_from_moments,
    orthogonal_from_moments,
    permuted_cross,
    probe_accuracy_split,
    probe_scores_cv,
    shrink_covariance,
)
from codenas.spaces import fold_affine, layer_sizes, space_of

METHODS = ("leace", "orthogonal")

if TYPE_CHECKING:
    from codenas.data import Dataset
    from codenas.decisions.source import Source
    from codenas.spaces import Spec

PROBE_FOLDS = 5
_BATCH = 512


# ----------------------------------------------------------------------------- checks


def label_factors(data_config: Any, names: Sequence[str]) -> tuple[str, ...]:
    """The factors the task's target is computed from (``data.task`` of generated data, e.g.
    ``{classify: f0}``); empty when the target is not a factor (a user's label column)."""
    from codenas.data.base import FactorTask

    task = getattr(data_config, "task", None)
    if not isinstance(task, FactorTask):
        return ()
    try:
        return tuple(names[c] for c in task.factor_columns(tuple(names)))
    except ValueError:
        return ()


def check_request(spec: Spec, data: Dataset, factor: str, layer: int | None) -> int:
    """Validate an erase request before any work; return the layer index.

    Raises:
        DataError: the dataset has no known factors.
        ConfigError: an unknown factor, a layer out of range, a space or layer the eraser
            cannot be folded into.
    """
    if not data.has_factors:
        raise DataError(
            f"dataset {data.name!r} has no known factors to erase; erase needs one that has "
            "(`codenas datasets`: factors, shapes, or your file with factor columns)"
        )
    if factor not in data.factor_names:
        raise ConfigError("--factor: " + unknown_name_message("factor", factor, data.factor_names))
    n = len(_widths(spec))
    k = n - 1 if layer is None else int(layer)
    if not 0 <= k < n:
        raise ConfigError(f"--layer {layer}: the network has hidden layers 0..{n - 1}")
    space = space_of(spec)
    if not space.foldable(spec, k):
        allowed = [str(i) for i in range(n) if space.foldable(spec, i)]
        raise ConfigError(
            f"--layer {k}: block {k} is followed by 2x2 max pooling, through which an affine "
            f"eraser cannot be folded; erasable layers of this network: {', '.join(allowed)}"
        )
    return k


def _widths(spec: Spec) -> list[int]:
    return list(layer_sizes(spec))


# ----------------------------------------------------------------------------- fit


def _units(out: torch.Tensor) -> torch.Tensor:
    """A layer output as rows of unit vectors: ``(N, C)`` stays, ``(N, C, H, W)`` becomes
    ``(N*H*W, C)`` (every position's channel vector)."""
    if out.dim() == 2:
        return out
    return out.movedim(1, -1).reshape(-1, out.shape[1])


@dataclasses.dataclass(frozen=True)
class Moments:
    """Moments of a layer's outputs and a concept, as LEACE needs them.

    Attributes:
        mean: ``(d,)`` mean of the rows; cov: ``(d, d)`` their covariance; cross: ``(d, k)``
            their cross-covariance with the one-hot concept.
        rows: rows seen (for a conv layer, positions); samples: inputs seen.
        units: ``(samples, d)`` per-input units (a conv layer's channel means; the rows
            themselves for a dense layer), whose cross-covariance with the concept is
            ``cross``: what the permutation null is computed from.
    """

    mean: NDArray[np.float64]
    cov: NDArray[np.float64]
    cross: NDArray[np.float64]
    rows: int
    samples: int
    units: NDArray[np.float64]


@torch.no_grad()
def layer_moments(model: nn.Module, layer: int, x: torch.Tensor, z: NDArray[np.integer]) -> Moments:
    """Mean, covariance and cross-covariance (with one-hot ``z``) of a hidden layer's outputs.

    Args:
        model: the network (``hidden_layers``); run in eval mode.
        layer: the hidden layer.
        x: ``(n_samples, *input_shape)`` inputs.
        z: ``(n_samples,)`` integer levels of the concept.

    Returns:
        The :class:`Moments`; for a conv layer every position is a row (carrying its image's
        level), so ``cross`` equals the cross-covariance of the channel means.
    """
    levels, codes = np.unique(np.asarray(z), return_inverse=True)
    k = len(levels)
    module = model.hidden_layers[layer]
    sums: dict[str, Any] = {}

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        sums["out"] = out

    handle = module.register_forward_hook(hook)
    was = model.training
    model.eval()
    n = m = 0
    acc: dict[str, torch.Tensor] = {}
    per_input: list[torch.Tensor] = []

    def add(name: str, value: torch.Tensor) -> None:
        acc[name] = value if name not in acc else acc[name] + value

    try:
        for start in range(0, len(x), _BATCH):
            model(x[start : start + _BATCH])
            out = sums.pop("out")
            per = 1 if out.dim() == 2 else int(math.prod(out.shape[2:]))
            rows = _units(out).double().cpu()
            units = (out if out.dim() == 2 else out.flatten(2).mean(2)).double().cpu()
            zc = torch.zeros(len(out), k, dtype=torch.float64)
            zc[torch.arange(len(out)), torch.as_tensor(codes[start : start + len(out)])] = 1.0
            zc = zc.repeat_interleave(per, dim=0)
            add("x", rows.sum(0))
            add("xx", rows.T @ rows)
            add("z", zc.sum(0))
            add("xz", rows.T @ zc)
            per_input.append(units)
            n += len(rows)
            m += len(out)
    finally:
        handle.remove()
        model.train(was)
    mean = acc["x"] / n
    cov = (acc["xx"] - n * torch.outer(mean, mean)) / (n - 1)
    cross = (acc["xz"] - n * torch.outer(mean, acc["z"] / n)) / (n - 1)
    units_all = torch.cat(per_input).numpy()
    return Moments(mean.numpy(), cov.numpy(), cross.numpy(), n, m, units_all)


# ----------------------------------------------------------------------------- fold


def fold_eraser(model: nn.Module, spec: Spec, layer: int, eraser: AffineEraser) -> nn.Module:
    """A copy of ``model`` whose layer after ``layer`` computes from ``eraser(layer's output)``.

    Same modules, same parameter count; only the next ``Linear``/``Conv2d``'s weight and bias
    (or its batch norm's running mean) change (:func:`codenas.spaces.fold_affine`). See the
    module docstring for the conv border.
    """
    return fold_affine(model, spec, layer, eraser.matrix, eraser.bias)


def with_eraser_module(
    model: nn.Module, layer: int | dict[int, AffineEraser], eraser: AffineEraser | None = None
) -> nn.Module:
    """A copy of ``model`` that applies ``eraser`` to layer ``layer``'s output (a forward hook),
    or each eraser of a ``{layer: eraser}`` mapping to its layer: the reference the folded
    network is checked against."""
    erasers = dict(layer) if isinstance(layer, dict) else {layer: eraser}
    ref = copy.deepcopy(model).cpu()
    for k, e in erasers.items():
        assert e is not None
        p = torch.as_tensor(e.matrix, dtype=torch.float32)
        c = torch.as_tensor(e.bias, dtype=torch.float32)

        def hook(
            _m: nn.Module, _i: object, out: torch.Tensor, p: torch.Tensor = p, c: torch.Tensor = c
        ) -> torch.Tensor:
            if out.dim() == 2:
                return out @ p.T + c
            moved = out.movedim(1, -1)
            return (moved @ p.T + c).movedim(-1, 1)

        ref.hidden_layers[k].register_forward_hook(hook)
    return ref


# ----------------------------------------------------------------------------- measure


@torch.no_grad()
def outputs(model: nn.Module, x: torch.Tensor) -> tuple[list[np.ndarray], np.ndarray]:
    """Hidden layers' units ``(n, n_units)`` (conv: channel means) and logits ``(n, n_out)``."""
    from codenas.metrics import capture_activations

    layers = capture_activations(model, x)
    model.eval()
    logits = torch.cat([model(x[s : s + _BATCH]) for s in range(0, len(x), _BATCH)])
    return layers, logits.float().numpy()


def task_metrics(model: nn.Module, data: Dataset, prefix: str = "") -> dict[str, float]:
    """``val_accuracy``/``test_accuracy`` (classification) or ``val_r2``/``test_r2``."""
    out: dict[str, float] = {}
    model.eval()
    with torch.no_grad():
        for name, split in (("val", data.val), ("test", data.test)):
            pred = torch.cat(
                [model(split.x[s : s + _BATCH]).float() for s in range(0, len(split), _BATCH)]
            )
            if data.task == "classification":
                out[f"{prefix}{name}_accuracy"] = float((pred.argmax(1) == split.y).float().mean())
            else:
                from sklearn.metrics import r2_score

                out[f"{prefix}{name}_r2"] = float(
                    r2_score(split.y.reshape(len(split), -1).numpy(), pred.reshape(len(split), -1))
                )
    return out


@dataclasses.dataclass(frozen=True)
class ProbeRow:
    """Linear-probe accuracy of one factor at one place, before and after the erasure.

    Two fresh probes, both scored on held-out validation rows:

    Attributes:
        where: ``"layer_k"`` or ``"logits"``.
        factor: the factor.
        before, after: a probe fitted on the training rows (those the eraser was fitted on),
            scored on the validation rows; in [0, 1].
        constant: the training rows' majority class, scored on the validation rows.
        before_cv, after_cv: a probe fitted on fresh rows: cross-validated on the validation
            rows (every row scored once by a probe that never saw it or the eraser's rows).
        constant_cv: the constant predictor, cross-validated the same way.
        gain_before_cv, gain_after_cv: the fresh-rows probe's log-loss gain over the constant
            predictor (nats; <= 0: no better than a constant in the loss the erasure's
            guarantee is about), before and after.
    """

    where: str
    factor: str
    before: float
    after: float
    constant: float
    before_cv: float
    after_cv: float
    constant_cv: float
    gain_before_cv: float = math.nan
    gain_after_cv: float = math.nan

    @property
    def excess(self) -> float:
        """``after - constant``: what a probe fitted on the training rows still reads."""
        return self.after - self.constant

    @property
    def excess_cv(self) -> float:
        """``after_cv - constant_cv``: what a probe fitted on fresh rows still reads."""
        return self.after_cv - self.constant_cv


@dataclasses.dataclass
class Erasure:
    """The outcome of :func:`erase`.

    Attributes:
        title: the source network; factor, layer: what was erased where.
        eraser: the affine eraser (``rank`` directions removed of ``width``).
        model: the edited network (same architecture, eraser folded in).
        probes: one :class:`ProbeRow` per (place, factor).
        before, after: task metrics on validation and test, source and edited network.
        fold_error: max |logit difference| of the folded network against eraser-then-network,
            relative to the largest logit, on the validation rows (0 up to round-off for an MLP).
        label_factors: the factors the label is computed from.
        rows: validation rows the probes read; fit_rows: rows (positions) the eraser saw.
        chained: with ``downstream``, the erasers of the later layers (each fitted on the
            network already edited before it), by layer.
        run_id, model_uri: the MLflow run and model (``None`` when not logged).
    """

    title: str
    factor: str
    layer: int
    width: int
    eraser: AffineEraser
    model: nn.Module
    probes: list[ProbeRow]
    before: dict[str, float]
    after: dict[str, float]
    fold_error: float
    label_factors: tuple[str, ...]
    rows: int
    fit_rows: int
    links: dict[str, str] = dataclasses.field(default_factory=dict)
    chained: dict[int, AffineEraser] = dataclasses.field(default_factory=dict)
    method: str = "leace"
    run_id: str | None = None
    model_uri: str | None = None

    def probe(self, where: str, factor: str) -> ProbeRow:
        return next(r for r in self.probes if r.where == where and r.factor == factor)

    def metrics(self) -> dict[str, float]:
        """Flat values for MLflow: the task metrics (after; ``*_before`` for the source),
        ``probe/<factor>/<where>`` (after), ``probe_before/...``, ``probe_constant/<factor>``,
        ``erased_rank``, ``fold_error``."""
        out = dict(self.after)
        out.update({f"{k}_before": v for k, v in self.before.items()})
        for r in self.probes:
            out[f"probe/{r.factor}/{r.where}"] = r.after
            out[f"probe_before/{r.factor}/{r.where}"] = r.before
            out[f"probe_constant/{r.factor}"] = r.constant
            out[f"probe_cv/{r.factor}/{r.where}"] = r.after_cv
            out[f"probe_cv_before/{r.factor}/{r.where}"] = r.before_cv
            out[f"probe_cv_constant/{r.factor}"] = r.constant_cv
            out[f"probe_cv_gain/{r.factor}/{r.where}"] = r.gain_after_cv
            out[f"probe_cv_gain_before/{r.factor}/{r.where}"] = r.gain_before_cv
        out["erased_rank"] = float(self.eraser.rank)
        for i, e in self.chained.items():
            out[f"erased_rank/layer_{i}"] = float(e.rank)
        out["fold_error"] = self.fold_error
        return out

    def summary(self) -> str:
        """The report as text: the task before and after, and the probe table."""
        lines = [
            f"erased factor {self.factor!r} from layer {self.layer} of {self.title}: the "
            f"{'orthogonal' if self.method == 'orthogonal' else 'LEACE'} eraser removed "
            f"{self.eraser.rank} of {self.width} directions (fitted on {self.fit_rows} "
            "training rows), folded into the next layer's weights and bias; max |logit "
            f"difference| against eraser-then-network: {self.fold_error:.2g} of the largest "
            "logit",
        ]
        if self.chained:
            lines.append(
                "  and, fitted on the network edited so far, from every later layer: "
                + ", ".join(f"layer {i}: {e.rank} directions" for i, e in self.chained.items())
            )
        for key, now in self.after.items():
            then = self.before.get(key, math.nan)
            lines.append(f"  {key}: {then:.4f} -> {now:.4f} ({100 * (now - then):+.2f} pp)")
        lines.append(
            f"linear-probe accuracy on {self.rows} validation rows, before -> after: a probe "
            f"fitted on the training rows, and one fitted on fresh rows ({PROBE_FOLDS}-fold "
            "CV on the validation rows); [the constant predictor]:"
        )
        label = set(self.label_factors)
        table = [["where", "factor", "probe (train rows)", "probe (fresh rows)"]]
        for r in self.probes:
            tag = " (erased)" if r.factor == self.factor else ""
            tag += " (label)" if r.factor in label else ""
            where = r.where + (" (edited)" if r.where == f"layer_{self.layer}" else "")
            table.append(
                [
                    where,
                    r.factor + tag,
                    f"{r.before:.3f} -> {r.after:.3f} [{r.constant:.3f}]",
                    f"{r.before_cv:.3f} -> {r.after_cv:.3f} [{r.constant_cv:.3f}]",
                ]
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        ]
        edited = self.probe(f"layer_{self.layer}", self.factor)
        lines.append(
            f"  erased factor at the edited layer: {100 * edited.excess:+.1f} pp over the "
            f"constant predictor (train-rows probe), {100 * edited.excess_cv:+.1f} pp "
            f"(fresh-rows probe); before: {100 * (edited.before - edited.constant):+.1f} / "
            f"{100 * (edited.before_cv - edited.constant_cv):+.1f} pp"
        )
        lines.append(
            f"  fresh-rows probe's log-loss gain over the constant predictor: "
            f"{edited.gain_before_cv:+.3f} -> {edited.gain_after_cv:+.3f} nats (<= 0: no better "
            "than a constant in log loss, what the erasure guarantees)"
        )
        later = [r for r in self.probes if r.factor == self.factor and r.where != edited.where]
        if later:
            back = max(later, key=lambda r: r.excess_cv)
            lines.append(
                f"  downstream: up to {100 * back.excess_cv:+.1f} pp (fresh-rows probe) comes "
                f"back, at {back.where} (before: {100 * (back.before_cv - back.constant_cv):+.1f}"
                " pp)"
            )
        return "\n".join(lines)


def _probe_rows(
    places: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    f_train: np.ndarray,
    f_val: np.ndarray,
    names: Sequence[str],
    seed: int,
) -> list[ProbeRow]:
    """Probe every factor at every place ``(where, train before, train after, val before,
    val after)``."""
    rows = []
    for where, tr_b, tr_a, va_b, va_a in places:
        for j, name in enumerate(names):
            before, constant = probe_accuracy_split(tr_b, f_train[:, j], va_b, f_val[:, j])
            after, _ = probe_accuracy_split(tr_a, f_train[:, j], va_a, f_val[:, j])
            cv_b = probe_scores_cv(va_b, f_val[:, j], folds=PROBE_FOLDS, seed=seed)
            cv_a = probe_scores_cv(va_a, f_val[:, j], folds=PROBE_FOLDS, seed=seed)
            rows.append(
                ProbeRow(
                    where,
                    name,
                    before,
                    after,
                    constant,
                    cv_b.accuracy,
                    cv_a.accuracy,
                    cv_b.constant,
                    cv_b.gain,
                    cv_a.gain,
                )
            )
    return rows


def probe_rows_of(n: int, samples: int, seed: int) -> torch.Tensor:
    """A seeded sample of at most ``samples`` of ``n`` rows (the rows the probes read)."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.permutation(n)[: min(n, samples)])


def erase(
    source: Source,
    factor: str,
    *,
    layer: int | None = None,
    log: bool = True,
    experiment: str | None = None,
    samples: int | None = None,
    downstream: bool = False,
    method: str = "leace",
) -> Erasure:
    """Erase ``factor`` from hidden layer ``layer`` (default: the last) of ``source``'s network.

    Args:
        source: the trained network (:mod:`codenas.decisions.source`).
        factor: a factor name of the dataset (``Dataset.factor_names``).
        layer: the hidden layer, 0-based (default: the last, the one the head reads).
        log: log the edited network to MLflow (when the source has a tracking store).
        experiment: the MLflow experiment (default: the source's).
        samples: validation rows the probes read (default: ``metrics.samples``).
        downstream: also erase the factor from every later hidden layer, in order, each eraser
            fitted on the network edited so far (what a later non-linearity re-creates is
            erased again); layers an eraser cannot fold out of (CNN max pooling) are skipped.
        method: ``"leace"`` (default: LEACE on the shrunk covariance, the least change of the
            code) or ``"orthogonal"`` (project out the factor's mean-difference directions in
            the units' own coordinates: no whitening, but it moves the code far more and cost
            55-72 pp of task accuracy on factors; docs/editing.md).

    Returns:
        The :class:`Erasure`.

    Raises:
        DataError, ConfigError: see :func:`check_request` (raised before any work).
    """
    data = source.data
    k = check_request(source.spec, data, factor, layer)
    j = data.factor_names.index(factor)
    model = source.model()
    assert data.train.factors is not None and data.val.factors is not None
    # Positions of one image share its level: the independent rows are the images, and the
    # noise of the cross-covariance is that of their channel means under shuffled levels.
    z_train = data.train.factors[:, j].numpy()

    if method not in METHODS:
        raise ConfigError(f"--method: one of {', '.join(METHODS)}, got {method!r}")

    def fit_on(net: nn.Module, i: int) -> tuple[AffineEraser, int]:
        m = layer_moments(net, i, data.train.x, z_train)
        null = permuted_cross(m.units, z_train, seed=source.config.data.seed)
        if method == "orthogonal":
            return orthogonal_from_moments(m.mean, m.cross), m.rows
        cov = shrink_covariance(m.cov, m.rows)
        return leace_from_moments(m.mean, cov, m.cross, null_cross=null), m.rows

    eraser, fit_rows = fit_on(model, k)
    edited = fold_eraser(model, source.spec, k, eraser)
    chained: dict[int, AffineEraser] = {}
    n_layers = len(_widths(source.spec))
    for i in range(k + 1, n_layers if downstream else k + 1):
        if not space_of(source.spec).foldable(source.spec, i):
            continue
        chained[i] = fit_on(edited, i)[0]
        edited = fold_eraser(edited, source.spec, i, chained[i])
    n_rows = samples or source.config.metrics.samples
    seed = source.config.data.seed
    rows = probe_rows_of(len(data.val), n_rows, seed)
    fit = probe_rows_of(len(data.train), max(n_rows, 4096), seed)
    x_val, x_train = data.val.x[rows], data.train.x[fit]
    f_val, f_train = data.val.factors[rows].numpy(), data.train.factors[fit].numpy()
    before, after = outputs(model, x_val), outputs(edited, x_val)
    before_tr, after_tr = outputs(model, x_train), outputs(edited, x_train)
    reference = outputs(with_eraser_module(model, {k: eraser, **chained}), x_val)[1]
    scale = max(float(np.abs(reference).max()), 1e-12)
    fold_error = float(np.abs(after[1] - reference).max()) / scale
    places = [
        (
            f"layer_{k}",
            before_tr[0][k],
            eraser(before_tr[0][k]),
            before[0][k],
            eraser(before[0][k]),
        )
    ]
    for i in range(k + 1, len(before[0])):
        # An erased later layer is read as its erased code, which is what the next one reads.
        e = chained.get(i)
        tr_a = after_tr[0][i] if e is None else e(after_tr[0][i])
        va_a = after[0][i] if e is None else e(after[0][i])
        places.append((f"layer_{i}", before_tr[0][i], tr_a, before[0][i], va_a))
    places.append(("logits", before_tr[1], after_tr[1], before[1], after[1]))
    probes = _probe_rows(places, f_train, f_val, data.factor_names, seed)
    result = Erasure(
        title=source.title,
        factor=factor,
        layer=k,
        width=int(before[0][k].shape[1]),
        eraser=eraser,
        model=edited,
        probes=probes,
        before=task_metrics(model, data),
        after=task_metrics(edited, data),
        fold_error=fold_error,
        label_factors=label_factors(source.config.data, data.factor_names),
        rows=len(rows),
        fit_rows=fit_rows,
        links=dict(source.links),
        chained=chained,
        method=method,
    )
    if log and source.tracking_uri is not None:
        result.run_id, result.model_uri = _log(result, source, experiment)
    return result


def _log(result: Erasure, source: Source, experiment: str | None) -> tuple[str, str]:
    from codenas.search.pareto import spec_summary
    from codenas.tracking.editing import log_edit

    assert source.tracking_uri is not None
    tags = source.run_tags(
        source.spec,
        f"`codenas erase`: factor {result.factor!r} erased ({result.method}) from layer "
        f"{result.layer} of {source.title} ({spec_summary(source.spec.to_dict())}), "
        "folded into the next layer's weights. erase.txt has the probe table.",
        **{"codenas.erased_factor": result.factor, "codenas.erased_layer": str(result.layer)},
    )
    report = {
        "factor": result.factor,
        "layer": result.layer,
        "rank": result.eraser.rank,
        "width": result.width,
        "fold_error": result.fold_error,
        "before": result.before,
        "after": result.after,
        "label_factors": list(result.label_factors),
        "probes": [dataclasses.asdict(r) for r in result.probes],
    }
    texts = {
        **source.run_files(
            source.spec, f"{source.title} with factor {result.factor!r} erased (codenas erase)"
        ),
        "erase.txt": result.summary() + "\n",
        "erase.json": json.dumps(report, indent=2),
    }
    return log_edit(
        source.tracking_uri,
        experiment or source.experiment,
        role="erase",
        run_name=f"erase-{result.factor}-layer{result.layer}",
        model=result.model,
        input_example=source.data.val.x[:2].numpy(),
        params={
            "factor": result.factor,
            "layer": result.layer,
            "method": result.method,
            "downstream": sorted(result.chained),
        },
        metrics=result.metrics(),
        tags=tags,
        texts=texts,
    )
