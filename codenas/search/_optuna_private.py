"""The one place codenas reaches what Optuna keeps without a public API.

Optuna stores the parameters of a queued (WAITING) trial, given to ``study.enqueue_trial``,
in the trial's system attribute ``"fixed_params"``; ``FrozenTrial.params`` stays empty until
the trial runs, and no public accessor exists (Optuna 5.1). codenas needs them to recognise an
architecture that is already queued (right-sizing, seeding). Every such read goes through
:func:`queued_params`; ``tests/search/test_trust.py`` checks on a real study that the key still
means this, so an Optuna release that moves it fails that test instead of silently queueing
duplicates.

:func:`set_trial_user_attrs` is the other gap: a sampler's ``before_trial`` gets a
``FrozenTrial`` and no public way to write to the live trial (for the code-guided sampler,
``search/samplers/code.py``, whose own copy of this function can import this one).

Two reads on every trial's path are cheaper here than through the public API, with the same
result: :func:`best_trials` is ``study.best_trials`` without its deep copy of every trial
(which made each trial's bookkeeping grow with the study: 13 ms a trial at 30 trials, on two
cores), and :func:`stored_trial` is the frozen form Optuna already holds for a live trial,
where the public way re-reads every running trial from the storage.
``tests/search/test_trust.py`` checks both against the public API on real studies.

:func:`stale_trial_callback` is the storage's public ``get_heartbeat_stale_trial_callback``,
reached through ``study._storage``: a worker found dead on this machine is re-queued by the
same callback as one whose heartbeat went stale.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import optuna

_FIXED_PARAMS = "fixed_params"  # optuna/study/study.py enqueue_trial, optuna/trial/_trial.py


def queued_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The parameters a WAITING trial was queued with (``{}`` if none were given)."""
    return dict(trial.system_attrs.get(_FIXED_PARAMS, {}))


def set_trial_user_attrs(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, attrs: Mapping[str, Any]
) -> None:
    """Write user attributes of a running trial from inside a sampler.

    The storage's ``set_trial_user_attr`` is public; reaching the storage (``study._storage``)
    and the trial's id (``trial._trial_id``) is not. The values are also set on ``trial``
    itself, the object Optuna then hands to ``optuna.Trial`` as its cache.

    Raises:
        RuntimeError: this Optuna lacks either attribute.
    """
    import optuna

    storage = getattr(study, "_storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    if storage is None or trial_id is None:
        raise RuntimeError(
            "codenas needs optuna.Study._storage and FrozenTrial._trial_id, which this Optuna "
            f"({optuna.__version__}) lacks; pin the version the tests pass with"
        )
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)
        trial.set_user_attr(key, value)


def stale_trial_callback(study: optuna.Study) -> Any:
    """The callback the storage calls for a trial whose heartbeat went stale (None if none)."""
    getter = getattr(getattr(study, "_storage", None), "get_heartbeat_stale_trial_callback", None)
    return None if getter is None else getter()


_FRONTS: weakref.WeakKeyDictionary[Any, tuple[int, list[Any]]] = weakref.WeakKeyDictionary()


_AFTER: weakref.WeakKeyDictionary[Any, tuple[int, list[Any]]] = weakref.WeakKeyDictionary()


def trials_after(
    study: optuna.Study, trial: optuna.trial.FrozenTrial
) -> list[optuna.trial.FrozenTrial]:
    """Every trial of ``study`` (not deep-copied), read once after ``trial`` ended and shared
    by the callbacks of that end: the tracker, the progress bar and the weight store each read
    the whole study there, one storage read each (about 5 ms on local SQLite).

    What a callback of trial N sees is the study as it was when the first of them ran, after N
    was stored; a trial another worker finished in those milliseconds shows at the next end.
    A read that must see every trial (the end of the search) reads afresh.
    """
    cached = _AFTER.get(study)
    if cached is not None and cached[0] == trial.number:
        return cached[1]
    trials = study.get_trials(deepcopy=False)
    _AFTER[study] = (trial.number, trials)
    return trials


def best_trials(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None
) -> list[optuna.trial.FrozenTrial]:
    """``study.best_trials`` (feasible non-dominated COMPLETE trials), read once and not
    deep-copied: the trials are the storage's own, not to be modified.

    The front changes only when a trial becomes COMPLETE (a finished trial cannot change), so
    it is computed once per new COMPLETE trial and shared by everything that reads it after a
    trial: the tracker, the progress bar, the code sampler, the weight store. ``trials``: the
    study's trials as already read (:func:`trials_after`), instead of a read of its own.
    """
    from optuna.study._constrained_optimization import _is_constrained_optimization
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False) if trials is None else trials
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    cached = _FRONTS.get(study)
    if cached is not None and cached[0] == complete:
        return list(cached[1])
    front = _get_pareto_front_trials_by_trials(
        trials, study.directions, consider_constraint=_is_constrained_optimization(trials)
    )
    _FRONTS[study] = (complete, front)
    return list(front)


def stored_trial(trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    """The frozen form of the live ``trial`` as it was when it started (its system attributes:
    the retry history), without a storage read; read publicly if this Optuna has no cache."""
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:
        return cached
    import optuna

    for frozen in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if frozen.number == trial.number:
            return frozen
    raise LookupError(f"trial {trial.number} is not running")


class StudyView:
    """A study whose trials, as a sampler reads them, leave some out: what a base sampler
    models (the code sampler keeps its move children, whose recorded ``depth``/``width``/
    ``shape`` do not describe the widths they were built with, out of TPE's model).

    Everything else is the study's own. Optuna's samplers read trials through the private
    ``Study._get_trials`` (with its per-thread cache), which is why this lives here.
    """

    def __init__(self, study: Any, keep: Any) -> None:
        self._study = study
        self._keep = keep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self, deepcopy: bool = True, states: Any = None, use_cache: bool = False
    ) -> list[Any]:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return [t for t in trials if self._keep(t)]

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return [
            t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if self._keep(t)
        ]

    @property
    def trials(self) -> list[Any]:
        return self.get_trials()
