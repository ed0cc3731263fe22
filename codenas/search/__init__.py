"""The Optuna layer: storages and studies, the objective, samplers, early stopping, workers
and the Pareto front. It knows nothing of MLflow (trackers plug in through
:mod:`codenas.search.tracker`) nor of what comes after a search (:mod:`codenas.decisions`).

Public API (imported lazily, so ``import codenas.search`` stays cheap)::

    run(config, n_trials=None, progress=False, enqueue=()) -> optuna.Study
    run_workers(config, n_trials=None, workers=2) -> optuna.Study    (several processes)
    front(study=None, study_name=None, storage="sqlite:///optuna.db") -> list[FrontRow]
    load_study(study_name, storage_url) -> optuna.Study;  open_study;  stored_config

Names that lived here in 0.1 and moved up the layers still resolve, with a
``DeprecationWarning`` naming their new home (removed in 0.3): ``pick``, ``propose_rightsize``,
``train``, ``seed_search``, ``report_run`` ... from :mod:`codenas.decisions`, ``Evaluator`` and
``rank_early`` from :mod:`codenas.evaluation`, ``load_dataset`` from :mod:`codenas.data`,
``BriefTrainer`` from :mod:`codenas.training`.
"""

from __future__ import annotations

from codenas.lazy import lazy_getattr

# The search layer's own names.
_EXPORTS = {
    "run": "codenas.search.study",
    "front": "codenas.search.study",
    "load_study": "codenas.search.storage",
    "open_study": "codenas.search.storage",
    "stored_config": "codenas.search.storage",
    "run_workers": "codenas.search.parallel",
    "FrontRow": "codenas.search.pareto",
}

# 0.1 names that moved to other layers: resolved by name (never imported by this layer), with
# a DeprecationWarning. Kept for one release.
_MOVED = {
    "Evaluator": "codenas.evaluation",
    "Evaluation": "codenas.evaluation",
    "rank_early": "codenas.evaluation",
    "load_dataset": "codenas.data",
    "BriefTrainer": "codenas.training",
    "pick": "codenas.decisions",
    "Pick": "codenas.decisions",
    "Requirement": "codenas.decisions",
    "NoFeasibleTrial": "codenas.decisions",
    "propose_rightsize": "codenas.decisions",
    "enqueue_rightsize": "codenas.decisions",
    "Proposal": "codenas.decisions",
    "train": "codenas.decisions",
    "train_config": "codenas.decisions",
    "Trained": "codenas.decisions",
    "load_spec_file": "codenas.decisions",
    "write_spec_file": "codenas.decisions",
    "seed_search": "codenas.decisions",
    "seeds_from": "codenas.decisions",
    "report_run": "codenas.decisions",
    "report_trial": "codenas.decisions",
    "report_front": "codenas.decisions",
    "Report": "codenas.decisions",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, moved=_MOVED)


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, *_MOVED, *globals()])
