"""Optional ablation: a moved child starts from its parent's trained weights.

With ``study.sampler_options.inherit: true`` every trial's trained weights are kept (the
study's :class:`~codenas.search.weights.WeightStore` under ``inherit_store``, a directory every
worker must see, with no pruning), and a trial the code sampler proposed by a move starts from
its parent's weights, transformed by the move, before its brief training:

- ``shrink`` keeps, in each layer, the units that carry most of the parent's code: the largest
  ``std(activation) x ||outgoing weights||`` on the evaluation rows (a dead unit scores 0, so
  cutting dead units leaves the function unchanged);
- ``drop`` folds the removed layer's linear map into the next one
  (``W' = W_next W_k``, ``b' = W_next b_k + b_next``), exact where the removed layer's units
  stayed in their linear region, which a CKA near 1 with the layer before suggests;
- ``widen`` is Net2WiderNet (Chen, Goodfellow & Shlens, ICLR 2016): new units copy randomly
  chosen old ones and the outgoing weights of each copied unit are divided among its copies,
  which preserves the function; a small noise on the copies' incoming weights breaks the
  symmetry;
- ``deepen`` is Net2DeeperNet: the new layer starts as the identity, exact for ReLU (its
  inputs are non-negative), approximate for other activations.

The surgery is the space's (:mod:`codenas.spaces.surgery`): ``mlp`` networks can do all four
moves; ``cnn`` networks keep and widen channels (batch norm statistics travel with them) but
cannot fold or insert a conv block, so their ``drop`` and ``deepen`` children train from
scratch. The spec stays the unit of reproducibility: what was inherited is recorded on the
trial (``code.inherited``, ``code.inherit_reason``), and the benchmark judges architectures by
full training from scratch. A move the space cannot do, a warm-start or base-sampler trial, or a
parent without stored weights trains from scratch as always.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from codenas.search.samplers.code import PARENT_ATTR, RULE_ATTR, VALUES_ATTR
from codenas.search.weights import WEIGHTS_ATTR  # noqa: F401  (re-exported: its old home)

if TYPE_CHECKING:
    import optuna
    from torch import nn

    from codenas.spaces import Spec

INHERITED_ATTR = "code.inherited"
INHERIT_REASON_ATTR = "code.inherit_reason"


def unit_scores(model: nn.Module, spec: Spec, acts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per hidden unit: ``std(activation) x ||outgoing weights||``, how much code it passes on."""
    from codenas.spaces import space_of

    space = space_of(spec)
    out = []
    for k, a in enumerate(acts):
        w = space.unit_reader(model, k)[0].weight.detach().cpu()
        outgoing = w.transpose(0, 1).reshape(w.shape[1], -1).norm(dim=1)
        out.append(np.std(a, axis=0) * outgoing.numpy())
    return out


def transform(
    model: nn.Module,
    spec: Spec,
    rule: str,
    widths: Sequence[int],
    *,
    acts: Sequence[np.ndarray] | None = None,
    values: Mapping[str, Any] | None = None,
    rng: np.random.Generator | None = None,
    noise: float = 0.01,
) -> tuple[Spec, nn.Module]:
    """The parent network turned into the child by ``rule`` (module docstring), through the
    surgery its space offers (:mod:`codenas.spaces.surgery`).

    Args:
        model: the parent's trained module.
        spec: the parent's spec.
        rule: ``shrink``, ``drop``, ``widen`` or ``deepen``.
        widths: the child's hidden layer sizes.
        acts: the parent's hidden activations, ``(n_samples, n_units)`` per layer (shrink).
        values: the move's ``code.values`` (drop reads which layer went).
        rng: for the units Net2WiderNet copies.
        noise: relative noise on the copied units' incoming weights (widen).

    Returns:
        ``(child spec, child module)``.

    Raises:
        ValueError: the move cannot be read from this network, or its space cannot do it
            (:class:`~codenas.spaces.SurgeryError`).
    """
    from codenas.spaces import keep_units, layer_sizes, space_of, widen_units

    rng = rng if rng is not None else np.random.default_rng(0)
    space = space_of(spec)
    sizes = layer_sizes(spec)
    depth = len(sizes)
    if rule == "shrink":
        if acts is None or len(widths) != depth:
            raise ValueError("shrink needs the parent's activations and the same depth")
        scores = unit_scores(model, spec, acts)
        for k, width in enumerate(widths):
            if width < sizes[k]:
                keep = np.argsort(-scores[k], kind="stable")[:width]
                spec, model = keep_units(model, spec, k, keep.tolist())
        return spec, model
    if rule == "drop":
        removed = [int(key.rsplit("_", 1)[1]) for key in (values or {}) if "layer_" in key]
        if len(removed) != 1 or len(widths) != depth - 1:
            raise ValueError(f"drop: cannot tell which layer went from {dict(values or {})}")
        return space.remove_layer(model, spec, removed[0])
    if rule == "widen":
        for k, width in enumerate(widths):
            if width > sizes[k]:
                spec, model = widen_units(model, spec, k, width, rng, noise)
        return spec, model
    if rule == "deepen":
        return space.insert_identity(model, spec, depth - 1)
    raise ValueError(f"no weights to inherit for rule {rule!r}")


class Inheritance:
    """Stores every trial's weights and initialises a moved child from its parent's.

    Args:
        store_dir: the directory of the trials' :class:`~codenas.search.weights.WeightStore`
            (shared by all workers); every trial's weights are kept, none pruned.
    """

    def __init__(self, store_dir: str) -> None:
        from codenas.search.weights import WeightStore

        self.weights = WeightStore(store_dir, keep_all=True)

    def save(self, trial: optuna.Trial, model: nn.Module) -> None:
        """Store ``model``'s weights as an artifact of ``trial`` (id in ``code.weights``)."""
        self.weights.save(trial, model)

    def initialiser(
        self, trial: optuna.Trial, spec: Spec, x: torch.Tensor
    ) -> Callable[[nn.Module], None] | None:
        """The function that loads the transformed parent weights into the child, or ``None``.

        Records ``code.inherited`` (and why not, in ``code.inherit_reason``) on the trial.
        """
        from codenas.metrics import capture_activations
        from codenas.spaces import build_model, layer_sizes, spec_from_dict

        attrs = trial.user_attrs
        rule, parent_no = attrs.get(RULE_ATTR), attrs.get(PARENT_ATTR)
        if rule is None or parent_no is None:
            return None  # not a move: nothing to inherit, nothing to record

        def refuse(why: str) -> None:
            trial.set_user_attr(INHERITED_ATTR, False)
            trial.set_user_attr(INHERIT_REASON_ATTR, why)

        parent = trial.study.get_trials(deepcopy=False)[int(parent_no)]
        stored = self.weights.load(parent.user_attrs)
        if stored is None or "spec" not in parent.user_attrs:
            refuse(f"trial {parent_no} stored no weights")
            return None
        parent_spec = spec_from_dict(parent.user_attrs["spec"])
        parent_model = build_model(parent_spec)
        parent_model.load_state_dict(stored)
        acts = capture_activations(parent_model, x.cpu()) if rule == "shrink" else None
        try:
            _, child = transform(
                parent_model,
                parent_spec,
                str(rule),
                layer_sizes(spec),
                acts=acts,
                values=attrs.get(VALUES_ATTR),
                rng=np.random.default_rng(trial.number),
            )
        except ValueError as err:
            refuse(str(err))
            return None
        state = child.state_dict()

        def init(model: nn.Module) -> None:
            own = model.state_dict()
            if {k: tuple(v.shape) for k, v in state.items()} != {
                k: tuple(own[k].shape) for k in state
            }:
                refuse("the transformed weights do not fit the child")
                return
            model.load_state_dict({k: v.to(own[k].device) for k, v in state.items()})
            trial.set_user_attr(INHERITED_ATTR, True)
            trial.set_user_attr(INHERIT_REASON_ATTR, f"{rule} of trial {parent_no}'s weights")

        return init
