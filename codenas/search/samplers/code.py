"""``CodeSampler``: an Optuna sampler whose moves are chosen by the neural code of past trials.

For each new trial, in ``before_trial``, the sampler decides one of:

1. **warm start** (the first ``warm_start_trials`` trial numbers, when a zero-cost score is
   given): the trial takes the parameters of the best-scored of ``warm_start_candidates``
   candidates drawn at random from the space and scored at initialisation (Abdelfattah et al.,
   ICLR 2021, "Zero-cost proxies for lightweight NAS": warm-up);
2. **a move** (with probability ``move_probability``, once some COMPLETE trial recorded its
   per-layer code): a rule of :mod:`codenas.neuralcode.rules` applied to a parent,
   Pareto-front members first, that gives an architecture no trial has had yet;
3. otherwise nothing: every parameter comes from the ``base`` sampler (TPE by default). With
   no code signal the sampler *is* its base sampler, draw for draw.

A decision is written to the trial's user attributes before the objective runs, and read back
from them when the objective suggests its parameters, so nothing lives only in this process:
any number of workers, on any storage and any number of machines, share one study.

User attributes (the contract, documented in docs/sampler.md):

- read, on COMPLETE trials: ``code.layers`` (:data:`LAYERS_ATTR`), one mapping per hidden layer
  ``{"width", "dead_fraction", "effective_rank", "cka_previous"}`` (``report_layers`` writes it);
- written, on the trials it proposes: ``code.rule`` (``warm_start``, ``shrink``, ``drop``,
  ``widen``, ``deepen``), ``code.parent`` (trial number, moves only), ``code.reason`` (the code
  values and arithmetic, for people), ``code.values`` (the same values by name),
  ``code.params`` (the parameters it fixes) and, for moves, the exact hidden widths under
  ``widths_attr`` (default ``widths``: what the objective must build).

One sampler in one file (about 570 lines): the decision of each trial (warm start, move,
base sampler), the option checks and the storage contract it reads and writes belong
together; the pure rules and Pareto ranking are apart in :mod:`codenas.neuralcode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from codenas import neuralcode as rules
from codenas.errors import ConfigError, unknown_name_message
from codenas.neuralcode import (
    LayerUsage,
    Move,
    domination_counts,
    select_spread,
    usage_from_attr,
)
from codenas.search._optuna_private import (
    StudyView,
    best_trials,
    queued_params,
    set_trial_user_attrs,
)
from codenas.search.samplers.modelled import built_from_params

if TYPE_CHECKING:
    from optuna.study import Study

_LOG = optuna.logging.get_logger(__name__)

LAYERS_ATTR = "code.layers"
RULE_ATTR = "code.rule"
PARENT_ATTR = "code.parent"
REASON_ATTR = "code.reason"
VALUES_ATTR = "code.values"
PARAMS_ATTR = "code.params"
WARM_START_ATTR = "code.warm_start"  # study user attribute: the ranked warm-start candidates
WARM_START = "warm_start"

WIDTHS_ATTR = "widths"
"""The user attribute a move writes its exact layer sizes to, unless told another
(``widths_attr``): the plain-Optuna contract of docs/sampler.md. codenas's own driver passes
the space's ``layers_field``."""

ScoreFn = Callable[[optuna.Trial], "float | Sequence[float]"]
"""A zero-cost score: suggests parameters on the trial it is given, returns a score (higher
is better), or a tuple of scores, each higher-better (candidates are then ranked by Pareto
rank, spread along each front)."""


def make_base_sampler(
    name: str, seed: int | None, options: Mapping[str, Any] | None = None
) -> BaseSampler:
    """A registered sampler other than ``code`` by name (``tpe``, ``nsga2``, ``random``, ...)."""
    from codenas.search.samplers.registry import base_sampler_names, get_sampler

    if name not in base_sampler_names():
        raise ConfigError(unknown_name_message("base sampler", name, base_sampler_names()))
    return get_sampler(name).make(seed, dict(options or {}))


def rank_candidates(
    score: ScoreFn, n_candidates: int, k: int, seed: int | None
) -> list[dict[str, Any]]:
    """Draw ``n_candidates`` parameter sets at random, score each, keep the ``k`` best.

    The candidates come from an in-memory study with a seeded ``RandomSampler``: ``score``
    suggests its parameters on that study's trials exactly as the objective does.

    Returns:
        ``k`` (or fewer) ``{"params": {...}, "score": [...]}``, the most promising first.
    """
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params: list[dict[str, Any]] = []
    scores: list[list[float]] = []
    first_error: Exception | None = None
    for _ in range(n_candidates):
        trial = scratch.ask()
        try:
            value = score(trial)
        except Exception as err:  # a candidate the score cannot build is not a candidate
            first_error = first_error or err
            continue
        row = [float(value)] if np.isscalar(value) else [float(v) for v in value]  # type: ignore[union-attr]
        if not all(math.isfinite(v) for v in row):
            continue
        params.append(dict(trial.params))
        scores.append(row)
    if first_error is not None:
        _LOG.warning(
            f"CodeSampler warm start: {n_candidates - len(scores)} of {n_candidates} candidates "
            f"could not be scored (first: {type(first_error).__name__}: {first_error})"
        )
    if not scores:
        return []
    return [{"params": params[i], "score": scores[i]} for i in select_spread(scores, k)]


class CodeSampler(BaseSampler):
    """Code-guided sampler: warm start, moves from the per-layer code, else a base sampler.

    Args:
        base: the sampler every undecided parameter comes from (default
            ``TPESampler(seed=seed)``).
        seed: seeds the sampler's own draws (whether a trial moves, which parent and rule);
            each trial's draws depend only on ``seed`` and the trial number.
        margin: shrink: widths become ``ceil(margin x effective rank)``, >= 1.
        cka_threshold: drop: a layer with CKA with the previous one at least this goes, in (0, 1].
        saturation: widen/deepen: a layer is saturated when its effective rank is at least this
            share of its live units, in (0, 1].
        grow_factor: widen: a saturated layer's width is multiplied by this, > 1.
        move_probability: chance that a trial after the warm start is a move (when one is
            available), in [0, 1]; 0 makes the sampler its base sampler after the warm start.
        moves: the rules in use, a subset of ``shrink``, ``drop``, ``widen``, ``deepen``.
        min_change: a shrink or widen must change the total number of hidden units by at
            least this share, in [0, 1) (no trials spent on one-unit steps).
        accuracy_objective: index or name of the objective whose limit ``deepen`` answers
            (default: the first maximised objective); deepening is proposed only from the
            front member best on it.
        min_width: the narrowest layer a move proposes.
        min_depth, max_depth, max_width: bounds on moves (default: from the parent's
            ``depth`` and ``width`` distributions where it has them).
        widths_attr: the user attribute the exact widths of a move are written to.
        depth_param, width_param: the parameters holding the number of hidden layers and the
            widest layer's width (``width`` is clipped into its distribution).
        layout_params: parameters that only shape the widths (``shape``): ignored when
            comparing architectures, since a move fixes the widths exactly.
        warm_start: a zero-cost score function (:data:`ScoreFn`), or ``None`` for no warm start.
        warm_start_candidates: candidates scored, >= 1.
        warm_start_trials: trial numbers ``0 .. warm_start_trials - 1`` take the best ones.
        warm_start_seed: seeds the candidates (default ``seed``); workers must share it.
    """

    def __init__(
        self,
        base: BaseSampler | None = None,
        *,
        seed: int | None = None,
        margin: float = rules.DEFAULT_MARGIN,
        cka_threshold: float = rules.DEFAULT_CKA_THRESHOLD,
        saturation: float = rules.DEFAULT_SATURATION,
        grow_factor: float = rules.DEFAULT_GROW_FACTOR,
        move_probability: float = 0.5,
        moves: Sequence[str] = rules.RULES,
        min_change: float = 0.1,
        accuracy_objective: int | str | None = None,
        min_width: int = 1,
        min_depth: int | None = None,
        max_depth: int | None = None,
        max_width: int | None = None,
        widths_attr: str = WIDTHS_ATTR,
        depth_param: str = "depth",
        width_param: str = "width",
        layout_params: Sequence[str] = ("shape",),
        warm_start: ScoreFn | None = None,
        warm_start_candidates: int = 64,
        warm_start_trials: int = 4,
        warm_start_seed: int | None = None,
    ) -> None:
        check_options(
            {
                "margin": margin,
                "cka_threshold": cka_threshold,
                "saturation": saturation,
                "grow_factor": grow_factor,
                "move_probability": move_probability,
                "moves": moves,
                "min_change": min_change,
                "min_width": min_width,
                "warm_start_candidates": warm_start_candidates,
                "warm_start_trials": warm_start_trials,
            },
            prefix="",
        )
        self._base = base if base is not None else optuna.samplers.TPESampler(seed=seed)
        self._seed = seed if seed is not None else int(np.random.SeedSequence().entropy % 2**32)
        self.margin = float(margin)
        self.cka_threshold = float(cka_threshold)
        self.saturation = float(saturation)
        self.grow_factor = float(grow_factor)
        self.move_probability = float(move_probability)
        self.moves = tuple(moves)
        self.min_change = float(min_change)
        self.accuracy_objective = accuracy_objective
        self.min_width = int(min_width)
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.max_width = max_width
        self.widths_attr = widths_attr
        self.depth_param = depth_param
        self.width_param = width_param
        self.layout_params = frozenset((depth_param, width_param, *layout_params))
        self.warm_start = warm_start
        self.warm_start_candidates = int(warm_start_candidates)
        self.warm_start_trials = int(warm_start_trials) if warm_start is not None else 0
        self.warm_start_seed = self._seed if warm_start_seed is None else int(warm_start_seed)

    @property
    def base(self) -> BaseSampler:
        return self._base

    # ------------------------------------------------------------------ Optuna's interface

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._seed = int(np.random.SeedSequence().entropy % 2**32)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(self._modelled(study), trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if PARAMS_ATTR in trial.user_attrs:
            return {}  # a decided trial: its parameters come from sample_independent
        return self._base.sample_relative(self._modelled(study), trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        fixed = trial.user_attrs.get(PARAMS_ATTR)
        if isinstance(fixed, Mapping) and param_name in fixed:
            value = _fit(fixed[param_name], param_distribution)
            if value is not None:
                return value
        return self._base.sample_independent(
            self._modelled(study), trial, param_name, param_distribution
        )

    @staticmethod
    def _modelled(study: Study) -> Study:
        """The study as the base sampler models it: without the move children, whose recorded
        ``depth``/``width``/``shape`` (the parent's, clipped) are not the widths they were built
        with, nor any other trial whose widths a user attribute fixed (a right-sized or seeded
        one); warm-start and base-sampler trials are built from their parameters."""
        return StudyView(study, _built_from_params)  # type: ignore[return-value]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)
        if queued_params(trial) or RULE_ATTR in trial.user_attrs:
            return  # enqueued by the user (or a retry): its parameters are already decided
        try:
            attrs = self.decide(study, trial)
        except Exception as err:  # a broken score or odd stored values must not stop a search
            _LOG.warning(
                f"CodeSampler: trial {trial.number} uses the base sampler: could not decide a "
                f"move or warm start ({type(err).__name__}: {err})"
            )
            return
        if attrs:
            set_trial_user_attrs(study, trial, attrs)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    # ------------------------------------------------------------------ decisions

    def decide(self, study: Study, trial: FrozenTrial) -> dict[str, Any] | None:
        """The user attributes of trial ``trial``'s decision, or ``None`` (base sampler)."""
        if trial.number < self.warm_start_trials:
            attrs = self._warm_start(study, trial.number)
            if attrs is not None:
                return attrs
        rng = np.random.default_rng([self._seed & 0xFFFFFFFF, trial.number])
        if self.move_probability <= 0.0 or rng.random() >= self.move_probability:
            return None
        return self._move(study, rng)

    def _warm_start(self, study: Study, number: int) -> dict[str, Any] | None:
        ranking = study.user_attrs.get(WARM_START_ATTR)
        if ranking is None:
            assert self.warm_start is not None
            ranking = rank_candidates(
                self.warm_start,
                self.warm_start_candidates,
                self.warm_start_trials,
                self.warm_start_seed,
            )
            # Every worker computes the same ranking from the same seed; storing it lets a
            # later worker (or machine) read it instead of scoring again.
            study.set_user_attr(WARM_START_ATTR, ranking)
        if number >= len(ranking):
            return None
        pick = ranking[number]
        score = ", ".join(f"{s:.4g}" for s in pick["score"])
        return {
            RULE_ATTR: WARM_START,
            REASON_ATTR: (
                f"zero-cost score ({score}) ranked {number + 1} of "
                f"{self.warm_start_candidates} candidates scored at initialisation"
            ),
            VALUES_ATTR: {f"score_{i}": s for i, s in enumerate(pick["score"])},
            PARAMS_ATTR: dict(pick["params"]),
        }

    def _accuracy_index(self, study: Study) -> int | None:
        directions = study.directions
        wanted = self.accuracy_objective
        if isinstance(wanted, int):
            return wanted if 0 <= wanted < len(directions) else None
        if isinstance(wanted, str):
            names = study.metric_names or study.user_attrs.get("codenas.objectives") or []
            return list(names).index(wanted) if wanted in names else None
        for i, d in enumerate(directions):
            if d == optuna.study.StudyDirection.MAXIMIZE:
                return i
        return None

    def _parents(
        self, study: Study, rng: np.random.Generator
    ) -> tuple[list[tuple[FrozenTrial, list[LayerUsage]]], set[int], int | None]:
        """COMPLETE trials with code, front members first (shuffled), then by dominance."""
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        coded = [(t, u) for t in done if (u := usage_from_attr(t.user_attrs.get(LAYERS_ATTR)))]
        if not coded:
            return [], set(), None
        front = {t.number for t in best_trials(study)}
        signs = [
            -1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0 for d in study.directions
        ]
        points = [[s * v for s, v in zip(signs, t.values, strict=True)] for t, _ in coded]
        dominated_by = domination_counts(points)
        order = list(rng.permutation(len(coded)))
        order.sort(key=lambda i: (coded[i][0].number not in front, dominated_by[i]))
        acc = self._accuracy_index(study)
        best = None
        if acc is not None:
            members = [t for t, _ in coded if t.number in front]
            if members:
                best = max(members, key=lambda t: signs[acc] * -t.values[acc]).number
        return [coded[i] for i in order], front, best

    def _arch_key(self, params: Mapping[str, Any], widths: Sequence[int]) -> tuple[Any, ...]:
        rest = tuple(sorted((k, repr(v)) for k, v in params.items() if k not in self.layout_params))
        return (tuple(int(w) for w in widths), rest)

    def _tried(self, study: Study) -> set[tuple[Any, ...]]:
        seen = set()
        for t in study.get_trials(deepcopy=False):
            widths = t.user_attrs.get(self.widths_attr)
            if widths is None:
                usage = usage_from_attr(t.user_attrs.get(LAYERS_ATTR))
                widths = [u.width for u in usage] if usage else None
            if widths is None:
                continue
            params = t.params or dict(t.user_attrs.get(PARAMS_ATTR) or {})
            seen.add(self._arch_key(params, widths))
        return seen

    def _move(self, study: Study, rng: np.random.Generator) -> dict[str, Any] | None:
        parents, front, best = self._parents(study, rng)
        if not parents:
            return None
        tried = self._tried(study)
        for parent, usage in parents:
            for rule in rng.permutation(self.moves):
                move = self._apply(str(rule), parent, usage, best)
                if move is None or not self._big_enough(usage, move):
                    continue
                params = self._params(parent, move.widths)
                if params is None:
                    continue
                key = self._arch_key(params, move.widths)
                if key in tried:
                    continue
                where = "front member" if parent.number in front else "trial"
                return {
                    RULE_ATTR: move.rule,
                    PARENT_ATTR: parent.number,
                    REASON_ATTR: f"{move.rule} of {where} {parent.number}: {move.reason}",
                    VALUES_ATTR: move.values,
                    PARAMS_ATTR: params,
                    self.widths_attr: list(move.widths),
                }
        return None

    def _big_enough(self, usage: Sequence[LayerUsage], move: Move) -> bool:
        if len(move.widths) != len(usage):
            return True  # a layer removed or added
        before = sum(u.width for u in usage)
        return abs(sum(move.widths) - before) >= self.min_change * before

    def _bounds(self, parent: FrozenTrial) -> tuple[int, int | None, int | None]:
        depth = parent.distributions.get(self.depth_param)
        width = parent.distributions.get(self.width_param)
        low = self.min_depth if self.min_depth is not None else getattr(depth, "low", 1)
        high = self.max_depth if self.max_depth is not None else getattr(depth, "high", None)
        wide = self.max_width if self.max_width is not None else getattr(width, "high", None)
        return int(low), None if high is None else int(high), None if wide is None else int(wide)

    def _apply(
        self, rule: str, parent: FrozenTrial, usage: list[LayerUsage], best: int | None
    ) -> Move | None:
        min_depth, max_depth, max_width = self._bounds(parent)
        if rule == "shrink":
            return rules.shrink(usage, margin=self.margin, min_width=self.min_width)
        if rule == "drop":
            return rules.drop(usage, cka_threshold=self.cka_threshold, min_depth=min_depth)
        if rule == "widen":
            return rules.widen(
                usage, saturation=self.saturation, grow_factor=self.grow_factor, max_width=max_width
            )
        if rule == "deepen" and (best is None or parent.number == best):
            return rules.deepen(usage, saturation=self.saturation, max_depth=max_depth)
        return None

    def _params(self, parent: FrozenTrial, widths: Sequence[int]) -> dict[str, Any] | None:
        """The parent's parameters with depth and width set for ``widths`` (``None``: outside)."""
        params = dict(parent.params)
        dists = parent.distributions
        if self.depth_param in dists:
            depth = _fit(len(widths), dists[self.depth_param])
            if depth is None or depth != len(widths):
                return None
            params[self.depth_param] = depth
        if self.width_param in dists:
            dist = dists[self.width_param]
            widest = max(widths)
            low, high = getattr(dist, "low", widest), getattr(dist, "high", widest)
            clipped = _fit(min(max(widest, low), high), dist)
            if clipped is None:
                return None
            params[self.width_param] = clipped
        return params


def _built_from_params(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was built from its recorded parameters (not a move's child, nor a trial
    whose widths a space's layer-field attribute fixed)."""
    return trial.user_attrs.get(RULE_ATTR) not in rules.RULES and built_from_params(trial)


def _fit(value: Any, dist: BaseDistribution) -> Any:
    """``value`` if ``dist`` contains it (ints snapped to the step), else ``None``."""
    try:
        if isinstance(dist, optuna.distributions.IntDistribution):
            value = int(value)
            if dist.step != 1:
                value = dist.low + round((value - dist.low) / dist.step) * dist.step
        elif isinstance(dist, optuna.distributions.FloatDistribution):
            value = float(value)
        internal = dist.to_internal_repr(value)
    except (TypeError, ValueError):
        return None
    return value if dist._contains(internal) else None


# ----------------------------------------------------------------------------- options


def _is_base_sampler(v: Any) -> bool:
    from codenas.search.samplers.registry import base_sampler_names

    return isinstance(v, str) and v in base_sampler_names()


_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "margin": (lambda v: _num(v) and v >= 1.0, "margin >= 1 must hold"),
    "cka_threshold": (lambda v: _num(v) and 0.0 < v <= 1.0, "0 < cka_threshold <= 1 must hold"),
    "saturation": (lambda v: _num(v) and 0.0 < v <= 1.0, "0 < saturation <= 1 must hold"),
    "grow_factor": (lambda v: _num(v) and v > 1.0, "grow_factor > 1 must hold"),
    "move_probability": (
        lambda v: _num(v) and 0.0 <= v <= 1.0,
        "0 <= move_probability <= 1 must hold",
    ),
    "moves": (
        lambda v: isinstance(v, (list, tuple)) and all(m in rules.RULES for m in v),
        f"a list of rules from {', '.join(rules.RULES)}",
    ),
    "min_change": (lambda v: _num(v) and 0.0 <= v < 1.0, "0 <= min_change < 1 must hold"),
    "min_width": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "warm_start": (lambda v: isinstance(v, bool), "true or false"),
    "warm_start_candidates": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "warm_start_trials": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "accuracy_objective": (
        lambda v: v is None or (isinstance(v, (int, str)) and not isinstance(v, bool)),
        "an objective name or index",
    ),
    "inherit": (lambda v: isinstance(v, bool), "true or false"),
    "inherit_store": (lambda v: isinstance(v, str) and bool(v.strip()), "a directory path"),
    "base": (_is_base_sampler, "a registered sampler other than code (tpe, nsga2, random, gp)"),
    "base_options": (lambda v: isinstance(v, Mapping), "a mapping of the base sampler's options"),
}
OPTIONS: tuple[str, ...] = tuple(_OPTION_CHECKS)
"""The keys of ``study.sampler_options`` for ``study.sampler: code``."""


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_options(options: Mapping[str, Any], prefix: str = "study.sampler_options.") -> None:
    """Raise a one-line :class:`ConfigError` naming the first bad key of ``options``."""
    for key, value in options.items():
        if key not in _OPTION_CHECKS:
            raise ConfigError(
                f"{prefix.rstrip('.') or 'CodeSampler'}: "
                + unknown_name_message("option of the code sampler", key, OPTIONS)
            )
        ok, rule = _OPTION_CHECKS[key]
        if not ok(value):
            raise ConfigError(f"{prefix}{key}: {rule}, got {value!r}")
