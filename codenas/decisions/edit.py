"""Inject a rule into a trained classifier by a closed-form change of one layer's weights.

``edit(source, rule)`` rewrites what a trained network predicts for the rows a rule names
("rows whose factor ``f1`` is 2 should be classified as class 4", "class 3 must never be
predicted for rows with ``f1 = 0``") from a few exemplar rows, with no gradient step:

1. **Keys.** The input of the network's last linear layer (the head: an MLP's last hidden
   layer, a CNN's channel means after its last block), with a constant 1 appended for the bias,
   on ``exemplars`` training rows of the rule (the keys ``K``) and on every ordinary training
   row, the rows the rule does not name (their second moment ``S = E[k k^T]``).
2. **Values.** The logits the rule asks for: the exemplars' own logits, with the rule's class
   raised (``predict``) or lowered (``never``) by one common amount ``M``, the largest the
   exemplars need for the class to win (lose) by ``margin``. One shift for every row of the
   rule is exactly what a rule that a linear head can represent needs, and it leaves the other
   classes' logits, and their order, as they were.
3. **Rewrite** (Bau et al. 2020, "Rewriting a deep generative model"; Santurkar et al. 2021,
   "Editing a classifier by rewriting its prediction rules"; Meng et al. 2022, ROME): the
   change ``D`` of the head's ``[W b]`` of least ``E[|D k|^2]`` over the ordinary rows, i.e. of
   least ``tr(D S D^T)``, that maps the exemplar keys to their values within the ``rank``
   strongest directions of the keys whitened by ``S``. With ``S_l = S + ridge tr(S)/(d+1) I``,
   ``K_w = K S_l^(-1/2) = U diag(s) V^T`` and the residual ``R = V* - K [W b]^T``::

       D = R^T U_r diag(1/s_r) V_r^T S_l^(-1/2)

   For one exemplar (``rank`` 1) this is ROME's ``(v* - W k)(S^-1 k)^T / (k^T S^-1 k)``; with
   ``rank`` the exemplars' rank and ``ridge`` 0 it maps every exemplar exactly. A key that
   ordinary rows never vary along (a direction ``S`` is null on) is where the change goes
   first: a rule the head can represent exactly is edited exactly and moves no ordinary row.
4. **Check, on held-out rows.** On the validation rows (never used to fit), before and after:
   the rule's success rate on the rule's rows, and accuracy on the rows the rule does not touch
   (plus how many of their predictions changed); the same for a **fine-tuning baseline**, what
   a user would do instead: ``finetune_steps`` gradient steps of the training config's
   optimiser on the same exemplars (relabelled to the rule's class; for ``never``, the loss
   ``-log(1 - p_class)``) plus, fairly, as many ordinary training rows per step with their own
   labels; both costs are process CPU seconds.

Why the head: its outputs have a known meaning, so the rule's values are exact statements of
the rule (the class wins by a margin), and nothing non-linear lies between the edit and the
prediction. A hidden layer's target code is a guess (e.g. the code of rows that already have
the target class), and what a later non-linearity does with it is not controlled; the head's
keys are the layer a linear probe reads factors from best (docs/editing.md), so a rule stated on
factors is linearly visible there.

``method="unit"`` (``--method unit``, :func:`rule_unit`) adds a non-linearity instead: one
unit in the last hidden layer, a logistic probe of that layer's inputs that fires on the rule's
rows, read into the rule's class only. It moves far fewer of the other rows than the head
rewrite (docs/editing.md) at the price of one more unit.

The edited network (``head``: same architecture, parameter count) is logged as an MLflow run
(``codenas.role=edit``), linked to its source like ``codenas erase``'s.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

from codenas.errors import ConfigError, DataError, first_line, unknown_name_message

if TYPE_CHECKING:
    from codenas.data import Dataset, Split
    from codenas.decisions.source import Source

from codenas.decisions.edit_defaults import (
    DEFAULT_EXEMPLARS,
    DEFAULT_FINETUNE_STEPS,
    DEFAULT_FIRE_QUANTILE,
    DEFAULT_METHOD,
    DEFAULT_RANK,
    DEFAULT_RIDGE,
    METHODS,
)

_BATCH = 1024


# ----------------------------------------------------------------------------- the rule


@dataclasses.dataclass(frozen=True)
class Rule:
    """What the network should do on some rows.

    Attributes:
        when: factor name -> the levels it must have (a row matches when every factor has one
            of its levels).
        predict: the class the matching rows should be classified as, or ``None``.
        never: the class that must never be predicted for them, or ``None`` (exactly one of
            ``predict`` and ``never`` is set).
    """

    when: tuple[tuple[str, tuple[int, ...]], ...]
    predict: int | None = None
    never: int | None = None

    @property
    def target(self) -> int:
        """The class the rule is about."""
        return int(self.predict if self.predict is not None else self.never)  # type: ignore[arg-type]

    def condition(self) -> str:
        """The rows the rule names, for people: ``f1 = 0 and f2 in [1, 2]``."""
        return " and ".join(
            f"{name} = {levels[0]}" if len(levels) == 1 else f"{name} in {list(levels)}"
            for name, levels in self.when
        )

    def describe(self) -> str:
        if self.predict is not None:
            return f"rows with {self.condition()} -> class {self.predict}"
        return f"rows with {self.condition()}: never class {self.never}"

    def matches(self, split: Split, names: Sequence[str]) -> NDArray[np.bool_]:
        """``(n,)`` mask of the split's rows the rule names."""
        assert split.factors is not None
        f = split.factors.numpy()
        mask = np.ones(len(f), dtype=bool)
        for name, levels in self.when:
            mask &= np.isin(f[:, names.index(name)], levels)
        return mask

    def follows(self, pred: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Whether each prediction follows the rule."""
        return pred == self.predict if self.predict is not None else pred != self.never

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"when": {n: (list(v) if len(v) > 1 else v[0]) for n, v in self.when}}
        out["predict" if self.predict is not None else "never"] = self.target
        return out


def _as_class(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{where}{key}: a class index (an integer), got {value!r}")
    return int(value)


def rule_from_mapping(raw: Any, where: str = "") -> Rule:
    """A rule from ``{when: {FACTOR: LEVEL or [LEVELS]}, predict: CLASS}`` (or ``never: CLASS``).

    Args:
        raw: the mapping (a rule file's YAML).
        where: prefix for error messages (the file name and ``: ``).

    Raises:
        ConfigError: a malformed rule, naming the key.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}a rule is a mapping {{when: {{FACTOR: LEVEL}}, predict: CLASS}} "
            f"(or never: CLASS), got {type(raw).__name__}"
        )
    unknown = sorted(set(raw) - {"when", "predict", "never"})
    if unknown:
        raise ConfigError(
            f"{where}unknown key(s) {', '.join(map(str, unknown))}; a rule has "
            "when, and predict or never"
        )
    if ("predict" in raw) == ("never" in raw):
        raise ConfigError(f"{where}give exactly one of predict: CLASS and never: CLASS")
    when = raw.get("when")
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(
            f"{where}when: a mapping of factor -> level(s), e.g. {{f1: 2}}, got {when!r}"
        )
    conds = []
    for name, value in when.items():
        values = value if isinstance(value, list | tuple) else [value]
        if not values or any(
            isinstance(v, bool) or not isinstance(v, int | np.integer) for v in values
        ):
            raise ConfigError(
                f"{where}when.{name}: a level (an integer) or a list of levels, got {value!r}"
            )
        conds.append((str(name), tuple(sorted({int(v) for v in values}))))
    if "predict" in raw:
        return Rule(tuple(conds), predict=_as_class(raw["predict"], "predict", where))
    return Rule(tuple(conds), never=_as_class(raw["never"], "never", where))


def load_rule(path: str | Path) -> Rule:
    """Read a rule file (YAML, see :func:`rule_from_mapping`).

    Raises:
        ConfigError: a missing or unreadable file, or a malformed rule, naming the file.
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the rule: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {first_line(err, None)}") from None
    return rule_from_mapping(raw, f"{path}: ")


def rule_from_flags(
    when: Sequence[str], predict: int | None = None, never: int | None = None
) -> Rule:
    """A rule from ``--when FACTOR=LEVEL[,LEVEL...]`` (repeatable) and ``--predict``/``--never``.

    Raises:
        ConfigError: a malformed ``--when``, or not exactly one of ``predict`` and ``never``.
    """
    if (predict is None) == (never is None):
        raise ConfigError("give exactly one of --predict CLASS and --never CLASS")
    conds: dict[str, list[int]] = {}
    for item in when:
        name, sep, levels = item.partition("=")
        try:
            values = [int(v) for v in levels.split(",")] if sep else []
        except ValueError:
            values = []
        if not name.strip() or not values:
            raise ConfigError(f"--when {item!r}: FACTOR=LEVEL or FACTOR=LEVEL,LEVEL,..., e.g. f1=2")
        conds.setdefault(name.strip(), []).extend(values)
    if not conds:
        raise ConfigError("the rule needs --when FACTOR=LEVEL (or --rule FILE)")
    raw: dict[str, Any] = {"when": conds}
    raw["predict" if predict is not None else "never"] = predict if predict is not None else never
    return rule_from_mapping(raw, "")


def check_rule(rule: Rule, data: Dataset, *, exemplars: int, rank: int) -> None:
    """Validate a rule against the data before any work.

    Raises:
        DataError: the dataset has no known factors, or is not a classification task.
        ConfigError: an unknown factor, a class out of range, a level no row has (no matching
            rows in the training or validation split), fewer exemplars than the rank.
    """
    if data.task != "classification":
        raise DataError(f"dataset {data.name!r} is a {data.task} task; edit rewrites a classifier")
    if not data.has_factors:
        raise DataError(
            f"dataset {data.name!r} has no known factors to state a rule on; edit needs one that "
            "has (`codenas datasets`: factors, shapes, or your file with factor columns)"
        )
    for name, _ in rule.when:
        if name not in data.factor_names:
            raise ConfigError(
                f"rule: when.{name}: " + unknown_name_message("factor", name, data.factor_names)
            )
    key = "predict" if rule.predict is not None else "never"
    if not 0 <= rule.target < data.n_outputs:
        raise ConfigError(
            f"rule: {key}: class {rule.target} is out of range; the network has classes "
            f"0..{data.n_outputs - 1}"
        )
    if rank < 1:
        raise ConfigError(f"--rank: at least 1, got {rank}")
    if exemplars < rank:
        raise ConfigError(
            f"--exemplars {exemplars} is fewer than the edit's rank {rank}; a rank-r edit "
            "needs at least r exemplar rows"
        )
    names = list(data.factor_names)
    for split_name, split in (("training", data.train), ("validation", data.val)):
        n = int(rule.matches(split, names).sum())
        if n == 0:
            occur = "; ".join(
                f"{n}: {sorted(set(split.factors[:, names.index(n)].tolist()))}"  # type: ignore[index]
                for n, _ in rule.when
            )
            raise ConfigError(
                f"rule: no {split_name} row has {rule.condition()} (levels that occur: {occur})"
            )
        if split_name == "training" and n < rank:
            raise ConfigError(
                f"rule: only {n} training rows match, fewer than the edit's rank {rank}"
            )
    if int((~rule.matches(data.train, names)).sum()) < 2:
        raise ConfigError("rule: it names (almost) every training row; nothing is left to keep")


# ----------------------------------------------------------------------------- closed form


def rewrite_linear(
    weight: ArrayLike,
    bias: ArrayLike,
    keys: ArrayLike,
    values: ArrayLike,
    second_moment: ArrayLike,
    *,
    rank: int = DEFAULT_RANK,
    ridge: float = DEFAULT_RIDGE,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The least-change rewrite of a linear layer ``y = W k + b`` (module docstring, step 3).

    Args:
        weight: ``(n_out, d)``, ``W``.
        bias: ``(n_out,)``, ``b``.
        keys: ``(m, d)``, the exemplars' inputs to the layer.
        values: ``(m, n_out)``, the outputs they should get.
        second_moment: ``(d + 1, d + 1)``, ``E[k k^T]`` of the ordinary rows' inputs with a
            constant 1 appended (the bias's input), the rows whose outputs are to be kept.
        rank: directions of the whitened exemplar keys the change may use, ``1 <= rank <= m``.
        ridge: added to the second moment, times its mean eigenvalue, before it is inverted.

    Returns:
        ``(new weight, new bias, singular values of the whitened keys)``.

    Raises:
        ValueError: shapes that do not agree, or a rank above the exemplars' numerical rank.
    """
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    k = np.asarray(keys, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    s2 = np.asarray(second_moment, dtype=np.float64)
    n_out, d = w.shape
    m = k.shape[0] if k.ndim == 2 else -1
    shapes_agree = (
        b.shape == (n_out,) and k.shape == (m, d) and v.shape == (m, n_out)
    ) and s2.shape == (d + 1, d + 1)
    if not shapes_agree:
        raise ValueError(
            "rewrite: shapes weight (o, d), bias (o,), keys (m, d), values (m, o), "
            f"second_moment (d+1, d+1) must agree, got {w.shape}, {b.shape}, {k.shape}, "
            f"{v.shape}, {s2.shape}"
        )
    if not 1 <= rank <= m:
        raise ValueError(f"rewrite: 1 <= rank <= number of exemplars must hold, got {rank=}, {m=}")
    full = np.hstack([w, b[:, None]])
    ka = np.hstack([k, np.ones((m, 1))])
    s2 = (s2 + s2.T) / 2.0
    s2 = s2 + ridge * max(float(np.trace(s2)) / (d + 1), 1e-12) * np.eye(d + 1)
    eigval, eigvec = np.linalg.eigh(s2)
    inv_root = (eigvec / np.sqrt(np.clip(eigval, 1e-300, None))) @ eigvec.T
    kw = ka @ inv_root
    u, s, vt = np.linalg.svd(kw, full_matrices=False)
    if s[rank - 1] <= s[0] * 1e-9:
        raise ValueError(
            f"rewrite: the exemplars' keys span {int(np.sum(s > s[0] * 1e-9))} directions, "
            f"fewer than rank {rank}"
        )
    residual = v - ka @ full.T  # (m, n_out)
    delta = residual.T @ u[:, :rank] @ np.diag(1.0 / s[:rank]) @ vt[:rank] @ inv_root
    new = full + delta
    return new[:, :d], new[:, d], s


def second_moment(keys: ArrayLike) -> NDArray[np.float64]:
    """``(d + 1, d + 1)`` mean of ``[k 1] [k 1]^T`` over rows ``keys`` of shape ``(n, d)``."""
    k = np.asarray(keys, dtype=np.float64)
    ka = np.hstack([k, np.ones((k.shape[0], 1))])
    return ka.T @ ka / k.shape[0]


def rule_values(logits: ArrayLike, rule: Rule, margin: float) -> tuple[NDArray[np.float64], float]:
    """The logits the rule asks for: ``logits`` with the rule's class moved by one common ``M``.

    ``M >= 0`` is the least shift after which, on every row, the class beats (``predict``) or
    trails (``never``) the best other class by ``margin``.

    Args:
        logits: ``(m, n_classes)``, the exemplars' logits.
        rule: the rule.
        margin: the required gap, >= 0.

    Returns:
        ``(values (m, n_classes), M)``.
    """
    z = np.asarray(logits, dtype=np.float64)
    c = rule.target
    others = np.delete(z, c, axis=1).max(axis=1)
    if rule.predict is not None:
        shift = max(float(np.max(others - z[:, c])) + margin, 0.0)
    else:
        shift = -max(float(np.max(z[:, c] - others)) + margin, 0.0)
    out = z.copy()
    out[:, c] += shift
    return out, abs(shift)


def head_keys(model: nn.Module, x: torch.Tensor) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The head's inputs ``(n, d)`` and the logits ``(n, n_out)`` on inputs ``x`` (eval mode)."""
    return _run_capturing(model.head, model, x)


def set_head(model: nn.Module, weight: ArrayLike, bias: ArrayLike) -> nn.Module:
    """A copy of ``model`` whose head (the last ``Linear``) has ``weight`` and ``bias``."""
    edited = copy.deepcopy(model).cpu()
    head = edited.head
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(np.asarray(weight), dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(np.asarray(bias), dtype=head.bias.dtype))
    return edited


# ----------------------------------------------------------------------------- rule unit


@torch.no_grad()
def _run_capturing(
    module: nn.Module, model: nn.Module, x: torch.Tensor, *, outputs: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``model`` (eval mode) run on ``x`` in batches: what ``module`` receives (or, with
    ``outputs``, returns), ``(n, d)``, and the model's outputs ``(n, n_out)``."""
    got: list[torch.Tensor] = []
    if outputs:
        handle = module.register_forward_hook(lambda _m, _a, out: got.append(out.detach()))
    else:
        handle = module.register_forward_pre_hook(lambda _m, args: got.append(args[0].detach()))
    was = model.training
    model.eval()
    try:
        out = torch.cat([model(x[s : s + _BATCH]).float() for s in range(0, len(x), _BATCH)])
    finally:
        handle.remove()
        model.train(was)
    return torch.cat(got).flatten(1).double().numpy(), out.double().numpy()


def _inputs_of(
    module: nn.Module, model: nn.Module, x: torch.Tensor, *, outputs: bool = False
) -> NDArray[np.float64]:
    """What ``module`` receives (or, with ``outputs``, returns) when ``model`` runs on ``x``."""
    return _run_capturing(module, model, x, outputs=outputs)[0]


@dataclasses.dataclass
class RuleUnit:
    """What ``--method unit`` added: the layer, the detector, where it fires.

    Attributes:
        layer: the hidden layer that got the units (the last; the head reads it).
        detector: ``linear`` (one unit: a probe that tells the rule's rows apart) or ``band``
            (three ReLU units: a triangle along the axis of the rule's factor, for one level
            inside the factor's range).
        units: how many units were added (1 or 3).
        threshold, full: ``linear``: the probe scores where the unit starts firing (the
            ``quantile`` of the ordinary training rows') and where it reaches 1 (the exemplars'
            median); ``band``: the edges of the band's half-width and its centre, on the
            factor's axis (in levels).
        weight: the head's weight from the detector to the rule's class.
        fires_exemplars, fires_ordinary: fraction of exemplar and ordinary training rows on
            which the detector is above its resting value.
    """

    layer: int
    detector: str
    units: int
    quantile: float
    threshold: float
    full: float
    weight: float
    fires_exemplars: float
    fires_ordinary: float


#: ``band``: the half-width of the band on the factor's axis, in levels, and the least
#: activation (of 1 at the centre) an exemplar needs to count in the head weight's fit
#: (chosen on the dev network, seed 0, and four rules on interior levels).
BAND_HALF_WIDTH = 0.5
BAND_FLOOR = 0.25


def _band_axis(
    keys: NDArray[np.float64], level: NDArray[np.float64], rows: NDArray[np.integer]
) -> tuple[NDArray[np.float64], float]:
    """The factor's axis: a ridge regression of its level on the centred ``keys`` over
    ``rows`` (ridge 1e-3 of the centred second moment's mean eigenvalue; the intercept not
    penalised); ``(direction, offset)`` with ``level ~ keys @ direction + offset``."""
    k, y = keys[rows], level[rows]
    mean = k.mean(axis=0)
    centred = k - mean
    gram = centred.T @ centred
    ridge = max(1e-3 * float(np.trace(gram)) / gram.shape[0], 1e-12)
    direction = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), centred.T @ (y - y.mean()))
    return direction, float(y.mean() - mean @ direction)


@torch.no_grad()
def rule_unit(
    model: nn.Module,
    spec: Any,
    data: Dataset,
    rule: Rule,
    ex_rows: NDArray[np.integer],
    ordinary_rows: NDArray[np.integer],
    margin: float,
    *,
    quantile: float = DEFAULT_FIRE_QUANTILE,
) -> tuple[Any, nn.Module, RuleUnit]:
    """The network with a detector of the rule's rows added to its last hidden layer, wired to
    the rule's class (``--method unit``).

    1. **Linear detector** (one unit). A logistic probe (balanced classes) of the last hidden
       layer's *inputs*, exemplar rows against every ordinary training row; its score
       ``p(h) = w.h + c``. The unit's input weights and bias are the probe's, rescaled so that
       its pre-activation is 0 at the ``quantile`` of the ordinary rows' scores and 1 at the
       exemplars' median: it rests (0 under ReLU) on nearly every ordinary row.
    2. **Band detector** (three units), where the rule names one level ``L`` of one factor
       strictly inside the range of its levels (two sides to cut off, which one half-space
       cannot; an extreme level gets the linear detector): the factor's axis ``t(h)`` is a
       ridge regression of its level on the layer's inputs (exemplars and ordinary rows, whose
       levels the data carries), and three ReLU units at ``t = L - 1/2, L, L + 1/2`` make the
       triangle ``r(t + 1/2) - 2 r(t) + r(t - 1/2)`` (scaled to 1 at ``L``, 0 beyond half a
       level from it). Needs ReLU units (checked on the layer's own outputs).
    3. **Wiring.** The head reads the detector into the rule's class only, with the least
       weight after which every exemplar on which it is active (above :data:`BAND_FLOOR` for a
       band) obeys the rule by ``margin``; the class's bias takes off what the detector gives
       at rest, so a row on which it rests keeps its logits exactly.

    The spec's last hidden layer is one (or three) units wider; the rest is unchanged.

    Raises:
        ConfigError: a network whose last hidden layer is not one ``Linear`` the head reads
            directly (a CNN's, for instance); rows the linear probe cannot isolate; a band
            on a layer whose units are not ReLU.
    """
    from sklearn.linear_model import LogisticRegression

    from codenas.spaces import add_unit, layer_sizes, space_of

    space = space_of(spec)
    layer = len(layer_sizes(spec)) - 1
    producers = space.unit_producers(model, layer)
    reader, norm = space.unit_reader(model, layer)
    if not (
        len(producers) == 1
        and isinstance(producers[0], nn.Linear)
        and reader is model.head
        and norm is None
    ):
        raise ConfigError(
            f"--method unit: needs a last hidden layer made by one Linear that the head reads "
            f"directly; this {space.name} network's is not (use --method head)"
        )
    keys = _inputs_of(producers[0], model, data.train.x)
    interior = _interior_level(rule, data)
    if interior is None:  # one unit: 0 at the threshold, 1 at the exemplars' median
        x = np.vstack([keys[ex_rows], keys[ordinary_rows]])
        y = np.r_[np.ones(len(ex_rows)), np.zeros(len(ordinary_rows))]
        probe = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x, y)
        w, c = probe.coef_[0], float(probe.intercept_[0])
        threshold = float(np.quantile(keys[ordinary_rows] @ w + c, quantile))
        full = float(np.median(keys[ex_rows] @ w + c))
        if full <= threshold:
            raise ConfigError(
                f"--method unit: a linear probe of layer {layer}'s inputs does not tell the "
                f"rule's exemplars from the other rows (their median score is below the "
                f"{quantile:g} quantile of the others'); try more --exemplars, or --method head"
            )
        detector, floor = "linear", 1e-6
        scale = 1.0 / (full - threshold)
        rows_w = [w * scale]
        rows_b = [(c - threshold) * scale]
        mix = np.array([1.0])
    else:  # three ReLU units: a triangle around the level on the factor's axis
        factor, level = interior
        levels = data.train.factors[:, factor].numpy().astype(np.float64)
        axis, offset = _band_axis(keys, levels, np.r_[ex_rows, ordinary_rows])
        detector, floor = "band", BAND_FLOOR
        half = BAND_HALF_WIDTH
        threshold, full = level - half, float(level)
        rows_w = [axis / half] * 3
        rows_b = [(offset - (level + shift)) / half for shift in (-half, 0.0, half)]
        mix = np.array([1.0, -2.0, 1.0])
    n = len(mix)
    new_spec, edited = add_unit(model, spec, layer, n)
    producer = space.unit_producers(edited, layer)[0]
    for j in range(n):
        producer.weight[j - n] = torch.as_tensor(rows_w[j], dtype=producer.weight.dtype)
        producer.bias[j - n] = float(rows_b[j])
    units = _inputs_of(edited.head, edited, data.train.x)[:, -n:]
    pre = _inputs_of(producer, edited, data.train.x, outputs=True)[:, -n:]
    if detector == "band" and not np.allclose(units, np.maximum(pre, 0.0), atol=1e-5):
        raise ConfigError(
            f"--method unit: the rule's rows need a band detector along "
            f"{rule.when[0][0]!r}, which needs ReLU units in layer {layer}; use --method head"
        )
    signal = units @ mix
    rest = float(np.median(signal[ordinary_rows]))
    lift = signal[ex_rows] - rest
    _, logits = head_keys(model, data.train.x[torch.as_tensor(ex_rows)])
    cls = rule.target
    others = np.delete(logits, cls, axis=1).max(axis=1)
    need = others - logits[:, cls] if rule.predict is not None else logits[:, cls] - others
    need = need + margin
    fires = lift > floor
    if not fires.any():
        raise ConfigError(
            f"--method unit: the rule's detector fires on none of the {len(ex_rows)} "
            "exemplars; try more --exemplars, or --method head"
        )
    gain = max(float(np.max(need[fires] / lift[fires])), 0.0)
    gain = gain if rule.predict is not None else -gain
    edited.head.weight[cls, -n:] = torch.as_tensor(gain * mix, dtype=edited.head.weight.dtype)
    edited.head.bias[cls] -= gain * rest
    info = RuleUnit(
        layer=layer,
        detector=detector,
        units=n,
        quantile=quantile,
        threshold=threshold,
        full=full,
        weight=gain,
        # Where it fires: above its threshold (pre-activation > 0: GELU and tanh units are
        # not 0 below it, so "above the median" would read half of any rows), and for the
        # band, where the triangle is up.
        fires_exemplars=_firing(detector, pre[ex_rows], lift),
        fires_ordinary=_firing(detector, pre[ordinary_rows], signal[ordinary_rows] - rest),
    )
    return new_spec, edited.eval(), info


def _firing(detector: str, pre: np.ndarray, lift: np.ndarray) -> float:
    """The share of rows on which a rule unit fires: a linear detector's pre-activation above
    0 (its threshold), a band's signal above its rows' median."""
    return float(np.mean(pre[:, 0] > 0 if detector == "linear" else lift > 1e-6))


def _interior_level(rule: Rule, data: Dataset) -> tuple[int, int] | None:
    """``(factor index, level)`` when the rule names one level of one factor strictly inside
    the range the training rows take (a band detector's case), else ``None``."""
    if len(rule.when) != 1 or len(rule.when[0][1]) != 1:
        return None
    factor = list(data.factor_names).index(rule.when[0][0])
    level = int(rule.when[0][1][0])
    values = data.train.factors[:, factor]
    return (factor, level) if int(values.min()) < level < int(values.max()) else None


# ----------------------------------------------------------------------------- baseline


def finetune(
    model: nn.Module,
    data: Dataset,
    rule: Rule,
    exemplar_rows: NDArray[np.integer],
    ordinary_rows: NDArray[np.integer],
    *,
    steps: int,
    lr: float,
    optimizer: str = "adam",
    seed: int = 0,
) -> nn.Module:
    """What a user would do instead: ``steps`` gradient steps on the exemplars, with as many
    ordinary training rows per step (their own labels).

    The exemplars' loss is cross-entropy to the rule's class (``predict``) or
    ``-log(1 - p_class)`` (``never``); the whole network is trained, in train mode.
    """
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tuned = copy.deepcopy(model).cpu().train()
    params = [p for p in tuned.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(params, lr=lr, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.Adam(params, lr=lr)
    )
    x_ex = data.train.x[torch.as_tensor(exemplar_rows)]
    m = len(exemplar_rows)
    target = torch.full((m,), rule.target, dtype=torch.int64)
    for _ in range(steps):
        pick = torch.as_tensor(rng.choice(ordinary_rows, size=m, replace=len(ordinary_rows) < m))
        out = tuned(torch.cat([x_ex, data.train.x[pick]])).float()
        ordinary = F.cross_entropy(out[m:], data.train.y[pick])
        if rule.predict is not None:
            special = F.cross_entropy(out[:m], target)
        else:
            p = out[:m].softmax(1)[:, rule.target]
            special = -torch.log1p(-p.clamp(max=1 - 1e-6)).mean()
        loss = (special + ordinary) / 2.0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return tuned.eval()


# ----------------------------------------------------------------------------- measure


@dataclasses.dataclass(frozen=True)
class Scores:
    """One network judged on one split's rows (never used to fit).

    Attributes:
        rule_success: fraction of the rule's rows whose prediction follows the rule.
        untouched_accuracy: accuracy on the rows the rule does not name.
        changed: fraction of those rows whose prediction differs from the source network's.
        rule_rows, untouched_rows: how many rows of each.
    """

    rule_success: float
    untouched_accuracy: float
    changed: float
    rule_rows: int
    untouched_rows: int


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> NDArray[np.int64]:
    model.eval()
    return torch.cat([model(x[s : s + _BATCH]).argmax(1) for s in range(0, len(x), _BATCH)]).numpy()


def score(
    model: nn.Module, split: Split, rule: Rule, names: Sequence[str], reference: NDArray[np.int64]
) -> Scores:
    """:class:`Scores` of ``model`` on ``split``; ``reference``: the source's predictions."""
    mask = rule.matches(split, names)
    pred = _predict(model, split.x)
    y = split.y.numpy()
    return Scores(
        rule_success=float(rule.follows(pred[mask]).mean()),
        untouched_accuracy=float((pred[~mask] == y[~mask]).mean()),
        changed=float((pred[~mask] != reference[~mask]).mean()),
        rule_rows=int(mask.sum()),
        untouched_rows=int((~mask).sum()),
    )


@dataclasses.dataclass
class Edit:
    """The outcome of :func:`edit`.

    Attributes:
        title: the source network; rule: the rule.
        model: the edited network (``head``: same architecture, only the head's weight and
            bias differ; ``unit``: one more unit in the last hidden layer, see ``spec``).
        finetuned: the fine-tuning baseline's network (``None`` with ``finetune_steps`` 0: no
            baseline, and no ``finetune`` scores).
        scores: ``{(network, split): Scores}`` for network in ``before``/``edit``/``finetune``
            and split in ``val``/``test``.
        exemplars, ordinary: exemplar rows and ordinary rows (training split) the edit saw.
        rank, ridge, margin, shift: the edit's settings and the logit shift ``M`` it asked for.
        fit_success: the rule's success on the exemplars themselves after the edit.
        seconds: CPU seconds (``edit``, ``finetune``); finetune_steps, lr: the baseline.
        weight_change: ``|D|_F / |[W b]|_F``, the relative size of the change.
        singular_values: of the whitened exemplar keys (how many directions they span).
        method: ``head`` or ``unit``; spec: the edited network's spec (``unit``: its last
            hidden layer one unit wider); unit: what ``unit`` added (:class:`RuleUnit`).
    """

    title: str
    rule: Rule
    model: nn.Module
    finetuned: nn.Module | None
    scores: dict[tuple[str, str], Scores]
    exemplars: int
    ordinary: int
    rank: int
    ridge: float
    margin: float
    shift: float
    fit_success: float
    seconds: dict[str, float]
    finetune_steps: int
    lr: float
    weight_change: float
    singular_values: list[float]
    links: dict[str, str] = dataclasses.field(default_factory=dict)
    run_id: str | None = None
    model_uri: str | None = None
    method: str = "head"
    spec: Any = None
    unit: RuleUnit | None = None

    def metrics(self) -> dict[str, float]:
        """Flat values for MLflow: ``rule_success/<split>``, ``untouched_accuracy/<split>``,
        ``changed/<split>`` for the edit, with ``_before`` and ``finetune/`` variants."""
        out: dict[str, float] = {}
        for (net, split), s in self.scores.items():
            suffix = "_before" if net == "before" else ""
            prefix = "finetune/" if net == "finetune" else ""
            out[f"{prefix}rule_success{suffix}/{split}"] = s.rule_success
            out[f"{prefix}untouched_accuracy{suffix}/{split}"] = s.untouched_accuracy
            if net != "before":
                out[f"{prefix}changed/{split}"] = s.changed
        out.update(
            {
                "shift": self.shift,
                "fit_success": self.fit_success,
                "weight_change": self.weight_change,
                "time/edit_cpu": self.seconds["edit"],
            }
        )
        if "finetune" in self.seconds:
            out["time/finetune_cpu"] = self.seconds["finetune"]
        return out

    def summary(self) -> str:
        """The report as text."""
        tuned = self.finetuned is not None
        b, e = (self.scores[(n, "val")] for n in ("before", "edit"))
        f = self.scores[("finetune", "val")] if tuned else None
        if self.unit is not None:
            u = self.unit
            if u.detector == "band":
                what = (
                    f"added three ReLU units to hidden layer {u.layer}, a band along the axis of "
                    f"{self.rule.when[0][0]} (a ridge regression of its level on the layer's "
                    f"inputs), active within {u.full - u.threshold:g} of level {u.full:g}"
                )
            else:
                what = (
                    f"added one unit to hidden layer {u.layer}, a linear probe of its inputs "
                    f"fitted on {self.exemplars} exemplar training rows against "
                    f"{self.ordinary:,} ordinary ones, firing above the {u.quantile:g} quantile "
                    "of theirs"
                )
            first = (
                f"edited {self.title}: rule {self.rule.describe()!r}; {what} (on "
                f"{100 * u.fires_exemplars:.0f}% of the exemplars, {100 * u.fires_ordinary:.1f}% "
                f"of the ordinary rows), read into the logit of class {self.rule.target} with "
                f"weight {u.weight:+.2f} (margin {self.margin:.2f}); {self.seconds['edit']:.3f} s "
                "CPU, no gradient step"
            )
        else:
            first = (
                f"edited the head of {self.title}: rule {self.rule.describe()!r}; a "
                f"rank-{self.rank} least-squares rewrite of its weight and bias from "
                f"{self.exemplars} exemplar training rows (logit of class {self.rule.target} "
                f"{'raised' if self.rule.predict is not None else 'lowered'} by "
                f"{self.shift:.2f}, margin {self.margin:.2f}), keeping the code of "
                f"{self.ordinary:,} ordinary training rows (second moment, ridge "
                f"{self.ridge:g}); a change of {100 * self.weight_change:.1f}% of the head's "
                "weight norm, along what ordinary rows barely use; "
                f"{self.seconds['edit']:.3f} s CPU, no gradient step"
            )
        lines = [
            first,
            f"on {b.rule_rows + b.untouched_rows} validation rows never used to fit "
            f"({b.rule_rows} of the rule, {b.untouched_rows} it does not touch):",
        ]
        others = (e, f) if f is not None else (e,)
        table = [
            ["", "before", "edit"],
            ["rule success", f"{b.rule_success:.3f}", *(f"{x.rule_success:.3f}" for x in others)],
            [
                "accuracy, rows not touched",
                f"{b.untouched_accuracy:.3f}",
                *(
                    f"{x.untouched_accuracy:.3f} "
                    f"({100 * (x.untouched_accuracy - b.untouched_accuracy):+.1f} pp)"
                    for x in others
                ),
            ],
            ["predictions changed there", "-", *(f"{100 * x.changed:.1f}%" for x in others)],
            ["CPU seconds", "-", f"{self.seconds['edit']:.3f}"],
        ]
        if tuned:
            table[0].append(f"fine-tune ({self.finetune_steps} steps)")
            table[-1].append(f"{self.seconds['finetune']:.2f}")
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        ]
        bt, et = (self.scores[(n, "test")] for n in ("before", "edit"))
        test = (
            f"  test rows ({bt.rule_rows} of the rule): rule success {bt.rule_success:.3f} -> "
            f"{et.rule_success:.3f}"
        )
        if tuned:
            ft = self.scores[("finetune", "test")]
            test += (
                f" (fine-tune {ft.rule_success:.3f}); accuracy not touched "
                f"{bt.untouched_accuracy:.3f} -> {et.untouched_accuracy:.3f} (fine-tune "
                f"{ft.untouched_accuracy:.3f})"
            )
        else:
            test += (
                f"; accuracy not touched {bt.untouched_accuracy:.3f} -> "
                f"{et.untouched_accuracy:.3f} (no fine-tuning baseline: --finetune-steps 0)"
            )
        lines.append(test)
        return "\n".join(lines)


def default_margin(logits: ArrayLike) -> float:
    """The median gap between the top two logits of the network's own rows: the edited rows
    are then about as confident as the network's ordinary predictions."""
    z = np.sort(np.asarray(logits, dtype=np.float64), axis=1)
    return float(np.median(z[:, -1] - z[:, -2]))


def edit(
    source: Source,
    rule: Rule,
    *,
    exemplars: int = DEFAULT_EXEMPLARS,
    rank: int = DEFAULT_RANK,
    ridge: float = DEFAULT_RIDGE,
    margin: float | None = None,
    finetune_steps: int = DEFAULT_FINETUNE_STEPS,
    seed: int = 0,
    log: bool = True,
    experiment: str | None = None,
    method: str = DEFAULT_METHOD,
    quantile: float = DEFAULT_FIRE_QUANTILE,
) -> Edit:
    """Inject ``rule`` into ``source``'s network by rewriting its head (module docstring).

    Args:
        source: the trained network (:mod:`codenas.decisions.source`).
        rule: the rule (:func:`load_rule`, :func:`rule_from_flags`).
        exemplars: training rows of the rule the edit is fitted on (at most those that match).
        rank: directions of the exemplar keys the change may use.
        ridge: the second moment's ridge, times its mean eigenvalue.
        margin: the logit gap the rule's class should win (lose) by (default:
            :func:`default_margin` of the training rows).
        finetune_steps: the fine-tuning baseline's gradient steps.
        seed: picks the exemplars and seeds the baseline.
        log: log the edited network to MLflow (when the source has a tracking store).
        experiment: the MLflow experiment (default: the source's).
        method: ``head`` (rewrite the head's weights; same architecture) or ``unit`` (add a
            unit that detects the rule's rows to the last hidden layer: :func:`rule_unit`).
        quantile: ``unit``: where the detector starts firing, as a quantile of the ordinary
            training rows' probe scores.

    Raises:
        DataError, ConfigError: see :func:`check_rule` (raised before any work).
    """
    data = source.data
    if method not in METHODS:
        raise ConfigError(f"--method: one of {', '.join(METHODS)}, got {method!r}")
    if not 0.5 <= quantile < 1.0:
        raise ConfigError(f"--quantile: 0.5 <= q < 1 must hold, got {quantile}")
    check_rule(rule, data, exemplars=exemplars, rank=rank)
    if not ridge >= 0 or (margin is not None and not margin >= 0) or finetune_steps < 0:
        raise ConfigError(
            f"--ridge >= 0, --margin >= 0 and --finetune-steps >= 0 must hold, got {ridge}, "
            f"{margin}, {finetune_steps}"
        )
    names = list(data.factor_names)
    model = source.model()
    mask = rule.matches(data.train, names)
    rng = np.random.default_rng(seed)
    ex_rows = rng.permutation(np.flatnonzero(mask))[:exemplars]
    ordinary_rows = np.flatnonzero(~mask)

    start = time.process_time()
    keys, logits = head_keys(model, data.train.x)
    margin = default_margin(logits) if margin is None else float(margin)
    head = model.head
    old = np.hstack(
        [head.weight.detach().double().numpy(), head.bias.detach().double().numpy()[:, None]]
    )
    spec, unit, singular = source.spec, None, np.zeros(0)
    if method == "unit":
        spec, edited, unit = rule_unit(
            model, source.spec, data, rule, ex_rows, ordinary_rows, margin, quantile=quantile
        )
        shift = abs(unit.weight)
        new_head = edited.head
        new = np.hstack(
            [
                new_head.weight.detach().double().numpy(),
                new_head.bias.detach().double().numpy()[:, None],
            ]
        )
        added = np.zeros((old.shape[0], new.shape[1] - old.shape[1]))
        old = np.hstack([old[:, :-1], added, old[:, -1:]])
    else:
        values, shift = rule_values(logits[ex_rows], rule, margin)
        try:
            weight, bias, singular = rewrite_linear(
                head.weight.detach().double().numpy(),
                head.bias.detach().double().numpy(),
                keys[ex_rows],
                values,
                second_moment(keys[ordinary_rows]),
                rank=rank,
                ridge=ridge,
            )
        except ValueError as err:
            raise ConfigError(f"--rank {rank}: {str(err).removeprefix('rewrite: ')}") from None
        edited = set_head(model, weight, bias)
        new = np.hstack([weight, bias[:, None]])
    seconds = {"edit": time.process_time() - start}
    change = float(np.linalg.norm(new - old) / np.linalg.norm(old))
    fit_success = float(
        rule.follows(_predict(edited, data.train.x[torch.as_tensor(ex_rows)])).mean()
    )

    tuned = None
    if finetune_steps > 0:
        start = time.process_time()
        tuned = finetune(
            model,
            data,
            rule,
            ex_rows,
            ordinary_rows,
            steps=finetune_steps,
            lr=source.config.train.lr,
            optimizer=source.config.train.optimizer,
            seed=seed,
        )
        seconds["finetune"] = time.process_time() - start

    scores: dict[tuple[str, str], Scores] = {}
    for split_name, split in (("val", data.val), ("test", data.test)):
        if split.factors is None or len(split) == 0:
            continue
        reference = _predict(model, split.x)
        for net_name, net in (("before", model), ("edit", edited), ("finetune", tuned)):
            if net is not None:
                scores[(net_name, split_name)] = score(net, split, rule, names, reference)
    result = Edit(
        title=source.title,
        rule=rule,
        model=edited,
        finetuned=tuned,
        scores=scores,
        exemplars=len(ex_rows),
        ordinary=len(ordinary_rows),
        rank=rank,
        ridge=ridge,
        margin=margin,
        shift=shift,
        fit_success=fit_success,
        seconds=seconds,
        finetune_steps=finetune_steps,
        lr=source.config.train.lr,
        weight_change=change,
        singular_values=[float(v) for v in singular],
        links=dict(source.links),
        method=method,
        spec=spec,
        unit=unit,
    )
    if log and source.tracking_uri is not None:
        result.run_id, result.model_uri = _log(result, source, experiment)
    return result


def _log(result: Edit, source: Source, experiment: str | None) -> tuple[str, str]:
    import yaml

    from codenas.search.pareto import spec_summary
    from codenas.tracking.editing import log_edit

    assert source.tracking_uri is not None
    spec = result.spec if result.spec is not None else source.spec
    how = (
        f"the head of {source.title} ({spec_summary(source.spec.to_dict())}) by a "
        f"rank-{result.rank} closed-form rewrite"
        if result.unit is None
        else f"{source.title} ({spec_summary(source.spec.to_dict())}) by {result.unit.units} "
        f"added unit(s) that detect the rule's rows, a {result.unit.detector} detector "
        f"({spec_summary(spec.to_dict())})"
    )
    tags = source.run_tags(
        spec,
        f"`codenas edit`: rule {result.rule.describe()!r} injected into {how}, no gradient "
        "step. edit.txt has the report.",
        **{"codenas.rule": json.dumps(result.rule.to_dict())},
    )
    report = {
        "rule": result.rule.to_dict(),
        "rank": result.rank,
        "ridge": result.ridge,
        "margin": result.margin,
        "shift": result.shift,
        "exemplars": result.exemplars,
        "scores": {f"{n}/{s}": dataclasses.asdict(v) for (n, s), v in result.scores.items()},
        "seconds": result.seconds,
        "method": result.method,
        "unit": None if result.unit is None else dataclasses.asdict(result.unit),
    }
    texts = {
        **source.run_files(spec, f"{source.title} edited: {result.rule.describe()} (codenas edit)"),
        "edit.txt": result.summary() + "\n",
        "edit.json": json.dumps(report, indent=2),
        "rule.yaml": yaml.safe_dump(result.rule.to_dict(), sort_keys=False),
    }
    return log_edit(
        source.tracking_uri,
        experiment or source.experiment,
        role="edit",
        run_name=f"edit-class{result.rule.target}",
        model=result.model,
        input_example=source.data.val.x[:2].numpy(),
        params={
            "rule": result.rule.to_dict(),
            "method": "head-rewrite" if result.unit is None else "rule-unit",
            "rank": result.rank,
            "ridge": result.ridge,
            "margin": round(result.margin, 6),
            "exemplars": result.exemplars,
            "finetune_steps": result.finetune_steps,
        },
        metrics=result.metrics(),
        tags=tags,
        texts=texts,
    )


__all__ = [
    "Edit",
    "Rule",
    "RuleUnit",
    "check_rule",
    "edit",
    "load_rule",
    "rewrite_linear",
    "rule_from_flags",
    "rule_from_mapping",
    "rule_unit",
    "rule_values",
]
