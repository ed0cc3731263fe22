"""Network surgery on the modules a space builds: the operations every editor of a trained
network needs, written once over the two kinds of layer codenas builds (``Linear`` and
``Conv2d`` with an optional ``BatchNorm2d``).

A space says which modules make hidden layer ``k``'s units (:meth:`Space.unit_producers`: the
``Linear``, or the ``Conv2d`` and its batch norm) and which module reads them next
(:meth:`Space.unit_reader`: the next hidden layer's ``Linear``/``Conv2d`` or the head). The
functions here then act on any space's network through those two answers:

- :func:`keep_units`: hidden layer ``k`` reduced to some of its units (rows of what makes it,
  columns of what reads it); exact when the removed units are dead.
- :func:`widen_units`: Net2WiderNet (Chen, Goodfellow & Shlens, ICLR 2016): new units copy
  randomly chosen old ones and each copied unit's outgoing weights are divided among its
  copies, which preserves the function (a batch norm's statistics are copied with them); a
  small noise on the copies' incoming weights breaks the symmetry.
- :func:`fold_affine`: ``r(h) = P h + c`` applied to layer ``k``'s output, folded into what
  reads it: a ``Linear`` becomes ``W P`` with bias ``b + W c``; a ``Conv2d`` becomes ``W P`` per
  kernel tap, its constant ``W c`` going into the conv bias or, with a batch norm, the running
  mean (``mu - W c``). Exact for a ``Linear`` (also after a global mean or an average pool);
  through a zero-padded conv the border outputs miss ``c``'s share of the padded taps. A space
  refuses a layer it cannot fold through (:meth:`Space.foldable`, e.g. max pooling).

Each returns a new module (the input is left as it was) whose ``state_dict`` loads into the
space's ``build`` of the new spec.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from codenas.spaces.base import Spec, SurgeryError, get_space

__all__ = ["SurgeryError", "fold_affine", "keep_units", "widen_units"]


def _space(spec: Spec):
    return get_space(spec.space)


def _slice(module: nn.Module, dim: int, idx: torch.Tensor) -> None:
    """Keep the entries ``idx`` along ``dim`` of every per-unit tensor of ``module`` (in place)."""
    if isinstance(module, nn.BatchNorm2d):
        for name in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(module, name)
            if t is not None:
                setattr(module, name, _like(t, t.detach()[idx].clone()))
        module.num_features = len(idx)
        return
    weight = module.weight
    module.weight = nn.Parameter(weight.detach().index_select(dim, idx).clone())
    if dim == 0 and module.bias is not None:
        module.bias = nn.Parameter(module.bias.detach()[idx].clone())
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, nn.Conv2d):
        module.out_channels, module.in_channels = module.weight.shape[:2]


def _like(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    return nn.Parameter(new) if isinstance(old, nn.Parameter) else new


@torch.no_grad()
def keep_units(
    model: nn.Module, spec: Spec, layer: int, keep: Sequence[int]
) -> tuple[Spec, nn.Module]:
    """Hidden layer ``layer`` reduced to the units ``keep`` (in ascending order).

    Returns:
        ``(new spec, new module)``.
    """
    space = _space(spec)
    idx = torch.as_tensor(sorted(int(i) for i in keep), dtype=torch.long)
    sizes = list(space.layer_sizes(spec))
    if not len(idx) or int(idx.max()) >= sizes[layer] or int(idx.min()) < 0:
        raise SurgeryError(f"layer {layer} has units 0..{sizes[layer] - 1}, cannot keep {keep}")
    edited = copy.deepcopy(model).cpu()
    for module in space.unit_producers(edited, layer):
        _slice(module, 0, idx)
    reader, _ = space.unit_reader(edited, layer)
    _slice(reader, 1, idx)
    sizes[layer] = len(idx)
    return _rebuilt(space, spec, sizes, edited)


@torch.no_grad()
def widen_units(
    model: nn.Module,
    spec: Spec,
    layer: int,
    width: int,
    rng: np.random.Generator,
    noise: float = 0.0,
) -> tuple[Spec, nn.Module]:
    """Net2WiderNet: hidden layer ``layer`` widened to ``width`` by copying random units."""
    space = _space(spec)
    sizes = list(space.layer_sizes(spec))
    old = sizes[layer]
    if width < old:
        raise SurgeryError(f"widen: layer {layer} has {old} units, cannot widen to {width}")
    mapping = np.concatenate([np.arange(old), rng.integers(0, old, size=width - old)])
    counts = np.bincount(mapping, minlength=old)
    idx = torch.as_tensor(mapping, dtype=torch.long)
    edited = copy.deepcopy(model).cpu()
    for module in space.unit_producers(edited, layer):
        _slice(module, 0, idx)
        if noise > 0 and width > old and isinstance(module, nn.Linear | nn.Conv2d):
            w = module.weight
            scale = noise * float(w[:old].std()) if w[:old].numel() > 1 else noise
            gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
            w[old:] += scale * torch.randn(w[old:].shape, generator=gen, dtype=w.dtype)
    reader, _ = space.unit_reader(edited, layer)
    _slice(reader, 1, idx)
    share = torch.as_tensor(1.0 / counts[mapping], dtype=reader.weight.dtype)
    shape = [1, -1] + [1] * (reader.weight.dim() - 2)
    reader.weight.mul_(share.reshape(shape))
    sizes[layer] = width
    return _rebuilt(space, spec, sizes, edited)


@torch.no_grad()
def add_unit(model: nn.Module, spec: Spec, layer: int, units: int = 1) -> tuple[Spec, nn.Module]:
    """Hidden layer ``layer`` with ``units`` more units, last, that nothing feeds and nothing
    reads yet (their weights, biases and reader columns are zero): the network computes what
    it did.

    Returns:
        ``(new spec, new module)``; the new units are the layer's last.
    """
    if units < 1:
        raise SurgeryError(f"add_unit: at least one unit, got {units}")
    space = _space(spec)
    sizes = list(space.layer_sizes(spec))
    old = sizes[layer]
    idx = torch.as_tensor([*range(old), *[0] * units], dtype=torch.long)  # copies, then zeroed
    edited = copy.deepcopy(model).cpu()
    for module in space.unit_producers(edited, layer):
        _slice(module, 0, idx)
        if isinstance(module, nn.Linear | nn.Conv2d):
            module.weight[old:] = 0.0
            if module.bias is not None:
                module.bias[old:] = 0.0
    reader, _ = space.unit_reader(edited, layer)
    _slice(reader, 1, idx)
    reader.weight[:, old:] = 0.0
    sizes[layer] = old + units
    return _rebuilt(space, spec, sizes, edited)


@torch.no_grad()
def fold_affine(
    model: nn.Module, spec: Spec, layer: int, matrix: np.ndarray, bias: np.ndarray
) -> nn.Module:
    """A copy of ``model`` whose reader of hidden layer ``layer`` computes from
    ``matrix @ h + bias`` instead of ``h`` (same modules, same parameter count)."""
    space = _space(spec)
    if not space.foldable(spec, layer):
        raise SurgeryError(
            f"layer {layer}: {space.name} cannot fold an affine map through what follows it"
        )
    edited = copy.deepcopy(model).cpu()
    reader, norm = space.unit_reader(edited, layer)
    p = torch.as_tensor(matrix, dtype=torch.float64)
    c = torch.as_tensor(bias, dtype=torch.float64)
    w = reader.weight.detach().double()
    if isinstance(reader, nn.Linear):
        reader.weight.copy_((w @ p).to(reader.weight.dtype))
        reader.bias.add_((w @ c).to(reader.bias.dtype))
        return edited
    if not isinstance(reader, nn.Conv2d):
        raise SurgeryError(f"cannot fold an affine map into a {type(reader).__name__}")
    reader.weight.copy_(torch.einsum("oiuv,ij->ojuv", w, p).to(reader.weight.dtype))
    shift = torch.einsum("oiuv,i->o", w, c)
    if reader.bias is not None:
        reader.bias.add_(shift.to(reader.bias.dtype))
    elif norm is not None and norm.running_mean is not None:
        norm.running_mean.sub_(shift.to(norm.running_mean.dtype))
    else:
        raise SurgeryError("the conv after the edited layer has neither a bias nor a batch norm")
    return edited


def _rebuilt(space, spec: Spec, sizes: Sequence[int], edited: nn.Module) -> tuple[Spec, nn.Module]:
    """The space's own module of the new spec, carrying ``edited``'s weights."""
    new_spec = space.with_layer_sizes(spec, sizes)
    fresh = space.build(new_spec)
    fresh.load_state_dict(edited.state_dict())
    return new_spec, fresh
