"""The rules of the neural code: per-layer code in, a new list of widths out.

Nothing here knows Optuna: every function takes the per-layer values of one trained network
(:class:`~codenas.neuralcode.usage.LayerUsage`, one per hidden layer, first to last) and returns
a :class:`Move` (or ``None`` when the rule does not apply). The code-guided sampler
(:mod:`codenas.search.samplers.code`) turns a move into a trial; ``codenas rightsize`` applies
:func:`plan_layers` by hand.

Rules and sources (defaults in brackets; none was tuned on a test split):

- **shrink** (the right-size rule, :func:`plan_layers` without the CKA step): each layer is cut
  to ``clamp(ceil(margin x effective_rank), min_width, alive)`` [margin 1.5]. A unit that never
  fires contributes nothing; a layer narrower than its effective rank cannot carry the same
  code. MorphNet (Gordon et al., CVPR 2018) shrinks widths from activation statistics the same
  way (there: batch-norm scales).
- **drop**: a layer whose linear CKA with the layer before is at least ``cka_threshold``
  [0.95] repeats it up to rotation and scale, and is removed (the most similar one per move).
  Nguyen, Raghu & Kornblith (ICLR 2021) find such "block structure" in networks deeper or
  wider than the data need, and that removing layers inside a block costs little accuracy.
- **widen**: a layer whose effective rank is at least ``saturation`` [0.9] of its live units
  uses every direction it has: it is a bottleneck, and its width is multiplied by
  ``grow_factor`` [2]. MorphNet's expand step and LEMONADE's (Elsken et al., ICLR 2019)
  network morphisms grow a network the same way, but choose where at random or uniformly.
- **deepen**: when the last hidden layer is saturated, a layer of its width is added after
  it (Net2DeeperNet, Chen et al. 2016, inserts it as an identity); the sampler proposes it only
  where accuracy is the limiting objective (the front's most accurate member).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from codenas.errors import ConfigError
from codenas.neuralcode.usage import LayerUsage

DEFAULT_MARGIN = 1.5
DEFAULT_CKA_THRESHOLD = 0.95
DEFAULT_SATURATION = 0.9
DEFAULT_GROW_FACTOR = 2.0
RULES: tuple[str, ...] = ("shrink", "drop", "widen", "deepen")


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """What the right-size rule does with one layer.

    Attributes:
        index: the layer (0 = first hidden layer).
        usage: its measured usage.
        new_width: its proposed width, or ``None`` if it is removed.
        cka_previous: linear CKA with the last layer kept before it (``None`` for layer 0 or
            when unknown).
        reason: the rule's arithmetic, for people.
    """

    index: int
    usage: LayerUsage
    new_width: int | None
    cka_previous: float | None
    reason: str


def plan_layers(
    usage: Sequence[LayerUsage],
    cka: NDArray[np.floating] | None = None,
    *,
    margin: float = DEFAULT_MARGIN,
    cka_threshold: float | None = DEFAULT_CKA_THRESHOLD,
    min_width: int = 1,
) -> list[LayerPlan]:
    """The right-size rule of ``codenas rightsize``: remove near-copies, cut to what is used.

    Walking from the first layer, a layer whose CKA with the last layer kept is at least
    ``cka_threshold`` is removed; each kept layer becomes
    ``clamp(ceil(margin * effective_rank), min_width, alive)`` wide (never wider than before).

    Args:
        usage: one :class:`LayerUsage` per hidden layer, first to last.
        cka: the ``(n_layers, n_layers)`` linear CKA matrix of the layers, or ``None`` (no
            layer is removed).
        margin: factor above the effective rank, >= 1.
        cka_threshold: a layer whose CKA with the last kept layer is at least this is removed;
            ``None`` keeps every layer.
        min_width: the narrowest width proposed.

    Returns:
        One :class:`LayerPlan` per layer; at least the first is kept.
    """
    if margin < 1.0 or not math.isfinite(margin):
        raise ConfigError(f"--margin: margin >= 1 must hold, got {margin}")
    if cka_threshold is not None and not 0.0 < cka_threshold <= 1.0:
        raise ConfigError(f"--cka-threshold: 0 < threshold <= 1 must hold, got {cka_threshold}")
    if cka is not None and np.shape(cka) != (len(usage), len(usage)):
        raise ValueError(f"cka must have shape ({len(usage)}, {len(usage)}), got {np.shape(cka)}")
    plans: list[LayerPlan] = []
    kept = 0
    for k, u in enumerate(usage):
        similar = None if cka is None or k == 0 else float(cka[kept, k])
        if similar is not None and cka_threshold is not None and similar >= cka_threshold:
            plans.append(
                LayerPlan(
                    k,
                    u,
                    None,
                    similar,
                    f"removed: CKA with layer {kept} = {similar:.3f} >= {cka_threshold:g}",
                )
            )
            continue
        kept = k
        wanted = math.ceil(margin * u.effective_rank - 1e-9)
        cap = max(min_width, u.alive)
        new = int(min(max(wanted, min_width), cap, u.width))
        why = f"ceil({margin:g} x erank {u.effective_rank:.2f}) = {wanted}"
        if u.alive < u.width:
            why += f"; {u.alive} of {u.width} alive"
        if new == cap and wanted > cap:
            why += f" -> capped at the {cap} alive"
        elif new == min_width and wanted < min_width:
            why += f" -> raised to min_width {min_width}"
        if u.alive == 0:
            why += "; every unit is dead: nothing reaches the later layers"
        plans.append(LayerPlan(k, u, new, similar, why))
    return plans


# ----------------------------------------------------------------------------- moves


@dataclasses.dataclass(frozen=True)
class Move:
    """A new architecture proposed from one network's code.

    Attributes:
        rule: one of :data:`RULES`.
        widths: the new hidden widths, first to last.
        reason: the values that triggered the rule and its arithmetic, for people.
        values: those values by name (layer-indexed), for machines.
    """

    rule: str
    widths: tuple[int, ...]
    reason: str
    values: dict[str, float]


def shrink(
    usage: Sequence[LayerUsage], *, margin: float = DEFAULT_MARGIN, min_width: int = 1
) -> Move | None:
    """Cut every layer to what its code uses (:func:`plan_layers` without removals).

    Returns:
        The move, or ``None`` when no layer gets narrower.
    """
    plan = plan_layers(usage, None, margin=margin, cka_threshold=None, min_width=min_width)
    new = tuple(int(p.new_width) for p in plan if p.new_width is not None)
    old = tuple(u.width for u in usage)
    if new == old:
        return None
    changed = [p for p in plan if p.new_width != p.usage.width]
    reason = "; ".join(
        f"layer {p.index}: {p.usage.width} -> {p.new_width} ({p.reason})" for p in changed
    )
    values: dict[str, float] = {}
    for p in changed:
        values[f"effective_rank/layer_{p.index}"] = round(p.usage.effective_rank, 4)
        values[f"alive/layer_{p.index}"] = float(p.usage.alive)
    return Move("shrink", new, reason, values)


def drop(
    usage: Sequence[LayerUsage],
    *,
    cka_threshold: float = DEFAULT_CKA_THRESHOLD,
    min_depth: int = 1,
) -> Move | None:
    """Remove the layer most similar to the one before it, if that CKA is >= ``cka_threshold``.

    One layer per move: after a brief training consecutive layers are often all similar, and
    removing a whole block at once is a larger jump than the evidence supports; the next
    generation can remove another. The first layer is always kept.

    Returns:
        The move, or ``None`` when no layer qualifies (or the depth is already ``min_depth``).
    """
    similar = [
        (u.cka_previous, k)
        for k, u in enumerate(usage)
        if k > 0 and u.cka_previous is not None and u.cka_previous >= cka_threshold
    ]
    if not similar or len(usage) <= max(1, min_depth):
        return None
    removed = [max(similar)[1]]
    new = tuple(u.width for k, u in enumerate(usage) if k not in removed)
    reason = "; ".join(
        f"layer {k} removed: CKA with layer {k - 1} = {usage[k].cka_previous:.3f} >= "
        f"{cka_threshold:g}"
        for k in removed
    )
    values = {
        f"cka_previous/layer_{k}": round(float(usage[k].cka_previous or 0.0), 4) for k in removed
    }
    return Move("drop", new, reason, values)


def _saturated(u: LayerUsage, saturation: float) -> bool:
    return u.alive > 0 and u.effective_rank >= saturation * u.alive


def widen(
    usage: Sequence[LayerUsage],
    *,
    saturation: float = DEFAULT_SATURATION,
    grow_factor: float = DEFAULT_GROW_FACTOR,
    max_width: int | None = None,
) -> Move | None:
    """Widen each saturated layer (effective rank >= ``saturation`` x live units).

    A saturated layer becomes ``ceil(grow_factor * width)`` wide, at most ``max_width``.

    Returns:
        The move, or ``None`` when no layer is saturated or none can grow.
    """
    new = []
    grown = []
    for k, u in enumerate(usage):
        w = u.width
        if _saturated(u, saturation):
            w = math.ceil(grow_factor * u.width)
            if max_width is not None:
                w = min(w, max_width)
            if w > u.width:
                grown.append(k)
        new.append(max(w, u.width))
    if not grown:
        return None
    reason = "; ".join(
        f"layer {k}: {usage[k].width} -> {new[k]} (erank {usage[k].effective_rank:.2f} >= "
        f"{saturation:g} x {usage[k].alive} alive)"
        for k in grown
    )
    values: dict[str, float] = {}
    for k in grown:
        values[f"effective_rank/layer_{k}"] = round(usage[k].effective_rank, 4)
        values[f"alive/layer_{k}"] = float(usage[k].alive)
    return Move("widen", tuple(new), reason, values)


def deepen(
    usage: Sequence[LayerUsage],
    *,
    saturation: float = DEFAULT_SATURATION,
    max_depth: int | None = None,
) -> Move | None:
    """Add a layer as wide as the last hidden one when the last hidden layer is saturated.

    Returns:
        The move, or ``None`` when the last layer is not saturated or the depth is at
        ``max_depth``.
    """
    last = usage[-1]
    if not _saturated(last, saturation) or (max_depth is not None and len(usage) >= max_depth):
        return None
    k = len(usage) - 1
    new = (*(u.width for u in usage), last.width)
    reason = (
        f"last layer {k} saturated (erank {last.effective_rank:.2f} >= {saturation:g} x "
        f"{last.alive} alive): a layer of {last.width} added after it"
    )
    values = {
        f"effective_rank/layer_{k}": round(last.effective_rank, 4),
        f"alive/layer_{k}": float(last.alive),
    }
    return Move("deepen", new, reason, values)
