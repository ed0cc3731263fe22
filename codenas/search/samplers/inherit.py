"""Optional ablation: a moved child starts from its parent's trained weights (MLPs only).

With ``study.sampler_options.inherit: true`` every trial's trained weights are stored as an
Optuna artifact (``optuna.artifacts.FileSystemArtifactStore`` under ``inherit_store``, a
directory every worker must see), and a trial the code sampler proposed by a move starts from
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

The spec stays the unit of reproducibility: what was inherited is recorded on the trial
(``code.inherited``, ``code.inherit_reason``), and the benchmark judges architectures by full
training from scratch. A CNN child, a warm-start or base-sampler trial, or a parent without
stored weights trains from scratch as always.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from codenas.search.samplers.code import PARENT_ATTR, RULE_ATTR, VALUES_ATTR

if TYPE_CHECKING:
    import optuna
    from torch import nn

    from codenas.spaces import Spec

WEIGHTS_ATTR = "code.weights"
"""Trial user attribute: the artifact id of the trial's trained ``state_dict``."""
INHERITED_ATTR = "code.inherited"
INHERIT_REASON_ATTR = "code.inherit_reason"

Layers = list[tuple[torch.Tensor, torch.Tensor]]
"""``[(W_0, b_0), ..., (W_head, b_head)]``: each hidden layer's ``Linear``, then the head."""


def mlp_layers(state: Mapping[str, torch.Tensor], depth: int) -> Layers:
    """The ``(weight, bias)`` pairs of an ``mlp`` space network's ``state_dict``."""
    out = [
        (state[f"hidden_layers.{k}.0.weight"].clone(), state[f"hidden_layers.{k}.0.bias"].clone())
        for k in range(depth)
    ]
    out.append((state["head.weight"].clone(), state["head.bias"].clone()))
    return out


def mlp_state(layers: Layers) -> dict[str, torch.Tensor]:
    """The inverse of :func:`mlp_layers`."""
    state = {}
    for k, (w, b) in enumerate(layers[:-1]):
        state[f"hidden_layers.{k}.0.weight"] = w
        state[f"hidden_layers.{k}.0.bias"] = b
    state["head.weight"], state["head.bias"] = layers[-1]
    return state


def keep_units(layers: Layers, k: int, keep: Sequence[int]) -> Layers:
    """Hidden layer ``k`` reduced to the units ``keep`` (rows of ``W_k``, columns of ``W_k+1``)."""
    idx = torch.as_tensor(sorted(keep), dtype=torch.long)
    out = list(layers)
    w, b = out[k]
    out[k] = (w[idx], b[idx])
    w_next, b_next = out[k + 1]
    out[k + 1] = (w_next[:, idx], b_next)
    return out


def fold_layer(layers: Layers, k: int) -> Layers:
    """Hidden layer ``k`` removed, its linear map folded into the next layer (or the head)."""
    out = list(layers)
    w, b = out[k]
    w_next, b_next = out[k + 1]
    out[k + 1] = (w_next @ w, w_next @ b + b_next)
    del out[k]
    return out


def widen_units(
    layers: Layers, k: int, width: int, rng: np.random.Generator, noise: float = 0.0
) -> Layers:
    """Net2WiderNet: hidden layer ``k`` widened to ``width`` by copying random units."""
    out = list(layers)
    w, b = out[k]
    old = w.shape[0]
    mapping = np.concatenate([np.arange(old), rng.integers(0, old, size=width - old)])
    counts = np.bincount(mapping, minlength=old)
    idx = torch.as_tensor(mapping, dtype=torch.long)
    w_new, b_new = w[idx].clone(), b[idx].clone()
    if noise > 0 and width > old:
        scale = noise * float(w.std()) if w.numel() > 1 else noise
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        w_new[old:] += scale * torch.randn(w_new[old:].shape, generator=gen, dtype=w.dtype)
    out[k] = (w_new, b_new)
    w_next, b_next = out[k + 1]
    share = torch.as_tensor(1.0 / counts[mapping], dtype=w_next.dtype)
    out[k + 1] = (w_next[:, idx] * share, b_next)
    return out


def add_identity(layers: Layers, after: int) -> Layers:
    """Net2DeeperNet: an identity layer inserted after hidden layer ``after``."""
    width = layers[after][0].shape[0]
    dtype = layers[after][0].dtype
    out = list(layers)
    out.insert(after + 1, (torch.eye(width, dtype=dtype), torch.zeros(width, dtype=dtype)))
    return out


def unit_scores(layers: Layers, acts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per hidden unit: ``std(activation) x ||outgoing weights||``, how much code it passes on."""
    return [np.std(a, axis=0) * layers[k + 1][0].norm(dim=0).numpy() for k, a in enumerate(acts)]


def transform(
    layers: Layers,
    rule: str,
    widths: Sequence[int],
    *,
    acts: Sequence[np.ndarray] | None = None,
    values: Mapping[str, Any] | None = None,
    rng: np.random.Generator | None = None,
    noise: float = 0.01,
) -> Layers:
    """The parent's layers turned into the child's by ``rule`` (module docstring).

    Args:
        layers: the parent's :data:`Layers`.
        rule: ``shrink``, ``drop``, ``widen`` or ``deepen``.
        widths: the child's hidden widths.
        acts: the parent's hidden activations, ``(n_samples, n_units)`` per layer (shrink).
        values: the move's ``code.values`` (drop reads which layer went).
        rng: for the units Net2WiderNet copies.
        noise: relative noise on the copied units' incoming weights (widen).

    Raises:
        ValueError: the move cannot be read from these layers.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    depth = len(layers) - 1
    if rule == "shrink":
        if acts is None or len(widths) != depth:
            raise ValueError("shrink needs the parent's activations and the same depth")
        scores = unit_scores(layers, acts)
        for k, width in enumerate(widths):
            if width < layers[k][0].shape[0]:
                keep = np.argsort(-scores[k], kind="stable")[:width]
                layers = keep_units(layers, k, keep.tolist())
        return layers
    if rule == "drop":
        removed = [int(key.rsplit("_", 1)[1]) for key in (values or {}) if "layer_" in key]
        if len(removed) != 1 or len(widths) != depth - 1:
            raise ValueError(f"drop: cannot tell which layer went from {dict(values or {})}")
        return fold_layer(layers, removed[0])
    if rule == "widen":
        for k, width in enumerate(widths):
            if width > layers[k][0].shape[0]:
                layers = widen_units(layers, k, width, rng, noise)
        return layers
    if rule == "deepen":
        return add_identity(layers, depth - 1)
    raise ValueError(f"no weights to inherit for rule {rule!r}")


class Inheritance:
    """Stores every trial's weights and initialises a moved child from its parent's.

    Args:
        store_dir: the directory of the ``FileSystemArtifactStore`` (shared by all workers).
    """

    def __init__(self, store_dir: str) -> None:
        from optuna.artifacts import FileSystemArtifactStore

        os.makedirs(store_dir, exist_ok=True)
        self.store = FileSystemArtifactStore(store_dir)

    def save(self, trial: optuna.Trial, model: nn.Module) -> None:
        """Store ``model``'s weights as an artifact of ``trial`` (id in ``code.weights``)."""
        from optuna.artifacts import upload_artifact

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"trial-{trial.number}.pt")
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
            artifact = upload_artifact(
                artifact_store=self.store, file_path=path, study_or_trial=trial
            )
        trial.set_user_attr(WEIGHTS_ATTR, artifact)

    def _load(self, artifact: str) -> dict[str, torch.Tensor]:
        with self.store.open_reader(artifact) as f:
            data = f.read()
        import io

        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def initialiser(
        self, trial: optuna.Trial, spec: Spec, x: torch.Tensor
    ) -> Callable[[nn.Module], None] | None:
        """The function that loads the transformed parent weights into the child, or ``None``.

        Records ``code.inherited`` (and why not, in ``code.inherit_reason``) on the trial.
        """
        from codenas.metrics import capture_activations
        from codenas.spaces import build_model, spec_from_dict

        attrs = trial.user_attrs
        rule, parent_no = attrs.get(RULE_ATTR), attrs.get(PARENT_ATTR)
        if rule is None or parent_no is None:
            return None  # not a move: nothing to inherit, nothing to record

        def refuse(why: str) -> None:
            trial.set_user_attr(INHERITED_ATTR, False)
            trial.set_user_attr(INHERIT_REASON_ATTR, why)

        if spec.space != "mlp":
            refuse(f"weights are inherited by mlp networks only, not {spec.space}")
            return None
        parent = trial.study.get_trials(deepcopy=False)[int(parent_no)]
        artifact = parent.user_attrs.get(WEIGHTS_ATTR)
        if artifact is None or "spec" not in parent.user_attrs:
            refuse(f"trial {parent_no} stored no weights")
            return None
        parent_spec = spec_from_dict(parent.user_attrs["spec"])
        parent_model = build_model(parent_spec)
        parent_model.load_state_dict(self._load(artifact))
        layers = mlp_layers(parent_model.state_dict(), len(parent_spec.widths))  # type: ignore[attr-defined]
        acts = capture_activations(parent_model, x.cpu()) if rule == "shrink" else None
        widths = list(spec.widths)  # type: ignore[attr-defined]
        try:
            new = transform(
                layers,
                str(rule),
                widths,
                acts=acts,
                values=attrs.get(VALUES_ATTR),
                rng=np.random.default_rng(trial.number),
            )
        except ValueError as err:
            refuse(str(err))
            return None
        state = mlp_state(new)

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
