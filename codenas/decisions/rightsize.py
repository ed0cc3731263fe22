"""Right-size a trial's architecture from its neural code, and queue the smaller one.

The rule, per hidden layer ``k`` of width ``w_k`` (units of an MLP layer, channels of a CNN
block), read on the validation sample the search measures every trial on:

1. **Remove near-copies.** Walking from the first layer, a layer whose linear CKA with the last
   layer kept is at least ``cka_threshold`` (default 0.95) is removed: its representation is,
   up to rotation and scale, the one before it, so the layer before can feed the next one
   directly. Nguyen, Raghu & Kornblith (2021, "Do wide and deep networks learn the same
   things?") find such runs of near-identical consecutive layers (their "block structure") in
   networks with more depth or width than the data need, and that removing layers inside a
   block costs little accuracy. The first layer is always kept.
2. **Cut each kept layer to what it uses.** ::

       new_width_k = clamp(ceil(margin * erank_k), min_width, alive_k)

   ``erank_k`` is the effective rank of the layer's centred activations (Roy & Vetterli 2007:
   the exponential of the entropy of the normalised singular values), the number of
   directions the layer's variance actually spreads over; a layer narrower than that cannot
   carry the same code. ``margin`` (default 1.5) leaves room above it: effective rank is
   measured after a brief training, and a ReLU layer needs more units than dimensions to carry
   a code of both signs. ``alive_k = round((1 - dead_fraction_k) * w_k)`` is the cap: a unit
   that never fires contributes nothing, so dropping it cannot change the network's function,
   and a layer needs no more units than it had alive. ``min_width`` is the space's
   ``min_width``. A layer never grows.

The participation ratio (Gao et al. 2017), a second, more conservative count of the dominant
dimensions, is shown beside the effective rank but does not enter the rule. For a CNN, a
channel's activity is its spatial mean (as everywhere in codenas), which can understate how
much a channel carries; and removing a block moves the pooling that follows every
``pool_every``-th block.

The values come from the trial's recorded metrics where the search logged them
(``effective_rank/layer_k``, ``dead_fraction/layer_k``). CKA between layer pairs is never
logged by a search (``layer_redundancy`` is a mean), so for a network of two or more layers
the spec is rebuilt and trained again with the study's config and the trial's seed, which on
the same device gives the same weights; the recomputed values are checked against the recorded
ones and added to the trial's MLflow run.

The proposal is queued into the same study (``study.enqueue_trial``) with the trial's own
parameters (``depth`` = the new number of layers, ``width`` = the widest new layer, clipped
into the space's range) and the exact widths in the trial user attribute ``widths`` (``mlp``)
or ``channels`` (``cnn``), which the space's ``sample`` honours. Running it puts the smaller
network on the same front as the original.

One rule and its inputs in one file (about 500 lines): the per-layer usage, where it is read
from (recorded metrics, or the network re-trained), the plan, and the proposal queued.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from codenas.errors import ConfigError
from codenas.neuralcode import (
    DEFAULT_CKA_THRESHOLD,
    DEFAULT_MARGIN,
    LayerPlan,
    LayerUsage,
    plan_layers,
)
from codenas.spaces import Spec, layer_sizes, layers_field, narrowest_width, spec_from_dict

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config
    from codenas.evaluation.neural_code import NeuralCode

_AGREE = 1e-3  # relative difference under which recomputed and recorded values agree


def usage_from_code(code: NeuralCode) -> tuple[list[LayerUsage], NDArray[np.float64]]:
    """Per-layer usage and the CKA matrix of a network's activations."""
    from codenas.metrics import cka_matrix, dead_fraction, effective_rank, participation_ratio

    usage = [
        LayerUsage(
            width=int(a.shape[1]),
            effective_rank=effective_rank(a),
            dead_fraction=dead_fraction(a),
            participation_ratio=participation_ratio(a),
        )
        for a in code.layers
    ]
    return usage, cka_matrix(code.layers)


def usage_from_metrics(
    metrics: Mapping[str, float], widths: Sequence[int]
) -> list[LayerUsage] | None:
    """Per-layer usage from a trial's recorded metrics, or ``None`` if any value is missing."""
    out = []
    for k, width in enumerate(widths):
        erank = metrics.get(f"effective_rank/layer_{k}")
        dead = metrics.get(f"dead_fraction/layer_{k}")
        if erank is None or dead is None:
            return None
        pr = metrics.get(f"participation_ratio/layer_{k}")
        out.append(LayerUsage(int(width), float(erank), float(dead), pr))
    return out


def recorded_values(
    usage: Sequence[LayerUsage], cka: NDArray[np.floating] | None
) -> dict[str, float]:
    """Per-layer values in codenas's metric names, for the trial's MLflow run.

    ``effective_rank/layer_k``, ``dead_fraction/layer_k``, ``participation_ratio/layer_k`` and
    ``cka_previous/layer_k`` (linear CKA of layer k with layer k - 1, for k >= 1).
    """
    out: dict[str, float] = {}
    for k, u in enumerate(usage):
        out[f"effective_rank/layer_{k}"] = u.effective_rank
        out[f"dead_fraction/layer_{k}"] = u.dead_fraction
        if u.participation_ratio is not None:
            out[f"participation_ratio/layer_{k}"] = u.participation_ratio
        if cka is not None and k > 0:
            out[f"cka_previous/layer_{k}"] = float(cka[k - 1, k])
    return out


# ----------------------------------------------------------------------------- proposal


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A smaller architecture proposed for one trial.

    Attributes:
        study: the study name; trial: the trial right-sized.
        spec: the trial's spec; new_spec: the proposal.
        plan: what happened to each layer.
        params: trial parameters for ``study.enqueue_trial``.
        user_attrs: trial user attributes for ``study.enqueue_trial`` (the exact widths).
        source: where the layer usage came from, for people.
        notes: anything the user should know (disagreements, clipped parameters).
        recomputed: values measured by re-training that the trial had not recorded.
        params_before, params_after: trainable parameters of the two networks.
        values: the trial's objective values, by name.
    """

    study: str
    trial: int
    spec: Spec
    new_spec: Spec
    plan: list[LayerPlan]
    params: dict[str, Any]
    user_attrs: dict[str, Any]
    source: str
    notes: list[str]
    recomputed: dict[str, float]
    params_before: int
    params_after: int
    margin: float
    cka_threshold: float | None
    values: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.new_spec != self.spec


def _widths(spec: Spec) -> tuple[str, list[int]]:
    """The spec's layer-size field and its sizes (the space answers both)."""
    return layers_field(spec.space), list(layer_sizes(spec))


def _count(spec: Spec) -> int:
    import torch

    from codenas.spaces import build_model
    from codenas.training.loop import count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(spec))


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of ``study``; :class:`ConfigError` unless it exists and is COMPLETE."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise ConfigError(
            f"--trial {number}: study {study.study_name!r} has trials 0..{len(trials) - 1}"
        )
    trial = trials[number]
    if trial.state.name != "COMPLETE" or "spec" not in trial.user_attrs:
        raise ConfigError(
            f"--trial {number}: trial {number} of study {study.study_name!r} is "
            f"{trial.state.name}; only a COMPLETE trial with a recorded spec can be right-sized"
        )
    return trial


def propose(
    study: optuna.Study,
    number: int,
    *,
    config: Config | None = None,
    margin: float = DEFAULT_MARGIN,
    cka_threshold: float | None = DEFAULT_CKA_THRESHOLD,
    retrain: bool | None = None,
) -> Proposal:
    """Propose a right-sized architecture for trial ``number`` (module docstring).

    Args:
        study: the codenas study.
        number: the trial to right-size (COMPLETE).
        config: the study's config (default: the one stored with the study).
        margin: factor above the effective rank, >= 1.
        cka_threshold: CKA at or above which a layer is removed; ``None`` keeps the depth.
        retrain: measure the code by re-training (``True``), from the recorded metrics only
            (``False``; an error if they do not suffice), or whichever is needed (``None``).

    Returns:
        The :class:`Proposal` (not yet queued: see :func:`enqueue`).
    """
    from codenas.evaluation.neural_code import from_model, trial_seed_of
    from codenas.evaluation.neural_code import retrain as retrain_code
    from codenas.search.pareto import objective_names
    from codenas.search.storage import retried_trial_number, stored_config
    from codenas.search.weights import load_trial_network

    trial = get_trial(study, number)
    config = config if config is not None else stored_config(study)
    spec = spec_from_dict(trial.user_attrs["spec"])
    field, widths = _widths(spec)
    metrics = dict(trial.user_attrs.get("metrics", {}))
    notes: list[str] = []
    recorded = usage_from_metrics(metrics, widths)
    needs_cka = len(widths) > 1 and cka_threshold is not None
    recomputed: dict[str, float] = {}
    cka = None
    if retrain is False or (retrain is None and recorded is not None and not needs_cka):
        if recorded is None:
            raise ConfigError(
                f"trial {number} did not record effective_rank/layer_k and dead_fraction/layer_k "
                "for every layer; let rightsize re-train it (drop --no-retrain)"
            )
        usage = recorded
        source = "the trial's recorded metrics"
    else:
        seed = trial_seed_of(config, number, retried_trial_number(trial))
        title = f"trial {number} of study {study.study_name!r}"
        kept = load_trial_network(trial.user_attrs)
        if kept is not None:
            code = from_model(config, spec, kept, title=title, metrics=metrics)
        else:
            code = retrain_code(config, spec, seed=seed, title=title, recorded=metrics)
        usage, cka = usage_from_code(code)
        missing = [
            name
            for name in ("participation_ratio", "CKA between layers")
            if name == "CKA between layers" or f"{name}/layer_0" not in metrics
        ]
        how = (
            "the weights the search kept (the trial's own network)"
            if kept is not None
            else f"re-training the spec with the study's config and the trial's seed ({seed})"
        )
        source = f"{how}; the search did not record {' or '.join(missing)}"
        all_values = recorded_values(usage, cka)
        recomputed = {k: v for k, v in all_values.items() if k not in metrics}
        notes.extend(_disagreements(metrics, code.metrics, all_values))
    min_width = narrowest_width(config.space, spec.n_outputs)
    plan = plan_layers(
        usage,
        cka if needs_cka else None,
        margin=margin,
        cka_threshold=cka_threshold,
        min_width=min_width,
    )
    new_widths = [p.new_width for p in plan if p.new_width is not None]
    changes: dict[str, Any] = {field: tuple(new_widths)}
    new_spec = dataclasses.replace(spec, **changes)
    params, param_notes = enqueue_params(dict(trial.params), new_widths, config)
    notes.extend(param_notes)
    names = objective_names(study)
    return Proposal(
        study=study.study_name,
        trial=number,
        spec=spec,
        new_spec=new_spec,
        plan=plan,
        params=params,
        user_attrs={field: new_widths, "codenas.rightsized_from": number},
        source=source,
        notes=notes,
        recomputed=recomputed,
        params_before=_count(spec),
        params_after=_count(new_spec),
        margin=margin,
        cka_threshold=cka_threshold if needs_cka else None,
        values={n: float(v) for n, v in zip(names, trial.values or [], strict=False)},
    )


def _disagreements(
    recorded: Mapping[str, float], measured: Mapping[str, float], per_layer: Mapping[str, float]
) -> list[str]:
    """Notes where the re-trained network does not reproduce the trial's recorded values."""
    out = []
    checks = {**{k: measured.get(k) for k in ("val_accuracy", "val_loss")}, **per_layer}
    for name, now in checks.items():
        then = recorded.get(name)
        if then is None or now is None:
            continue
        if abs(now - then) > _AGREE * max(1.0, abs(then)):
            out.append(
                f"re-training did not reproduce the trial exactly: {name} {now:.4g} now, "
                f"{then:.4g} recorded (non-deterministic kernels or another device); the "
                "proposal uses the re-trained network's code"
            )
            break
    return out


def enqueue_params(
    params: dict[str, Any], new_widths: Sequence[int], config: Config
) -> tuple[dict[str, Any], list[str]]:
    """The trial's parameters with ``depth`` and ``width`` set for ``new_widths``.

    ``depth`` is the number of layers (the space requires it to match the widths); ``width``,
    the widest layer, is clipped into ``space.width`` (the user attribute carries the exact
    widths, so a clipped ``width`` only keeps the parameter valid for the sampler).
    """
    notes = []
    out = dict(params)
    out["depth"] = len(new_widths)
    depth_range = getattr(config.space, "depth", None)
    if depth_range is not None and not depth_range.min <= out["depth"] <= depth_range.max:
        notes.append(
            f"depth {out['depth']} is outside space.depth [{depth_range.min}, "
            f"{depth_range.max}]: Optuna records it as given (with a warning)"
        )
    widest = max(new_widths)
    width_range = getattr(config.space, "width", None)
    if width_range is not None:
        clipped = min(max(widest, width_range.min), width_range.max)
        if clipped != widest:
            notes.append(
                f"parameter width = {clipped} (the widest new layer, {widest}, clipped into "
                f"space.width [{width_range.min}, {width_range.max}]); the exact widths travel "
                "in the trial's user attributes"
            )
        widest = clipped
    out["width"] = int(widest)
    return out, notes


# ----------------------------------------------------------------------------- queue and run


def params_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's parameters; for a WAITING (queued) trial, the ones it was queued with."""
    if trial.state.name == "WAITING":
        from codenas.search._optuna_private import queued_params

        return queued_params(trial)
    return dict(trial.params)


def queued_or_done(study: optuna.Study, proposal: Proposal) -> int | None:
    """The number of a trial that already evaluates (or waits to evaluate) the proposal."""
    target = proposal.new_spec.to_dict()
    field = layers_field(proposal.new_spec.space)
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "WAITING":
            if (
                t.user_attrs.get(field) == list(proposal.user_attrs[field])
                and params_of(t) == proposal.params
            ):
                return t.number
            continue
        if t.state.name in ("COMPLETE", "RUNNING") and t.user_attrs.get("spec") == target:
            return t.number
    return None


def enqueue(study: optuna.Study, proposal: Proposal) -> tuple[int, bool]:
    """Queue the proposal into ``study`` unless a trial already has its spec.

    Returns:
        ``(trial number, queued_now)``; ``queued_now`` is false when an existing trial (run or
        waiting) already evaluates the same architecture.
    """
    from codenas.search.storage import enqueue as enqueue_trial

    existing = queued_or_done(study, proposal)
    if existing is not None:
        return existing, False
    return enqueue_trial(study, proposal.params, dict(proposal.user_attrs)), True
