"""The driver: config, data, Lightning training, objectives, the Optuna study, the Pareto front,
MLflow tracking and picking. The only part of codenas that ties spaces and metrics together.

Public API (imported lazily, so ``import codenas.search`` stays cheap)::

    run(config, n_trials=None, progress=False, enqueue=()) -> optuna.Study
    run_workers(config, n_trials=None, workers=2) -> optuna.Study    (several processes)
    front(study=None, study_name=None, storage="sqlite:///optuna.db") -> list[FrontRow]
    load_study(study_name, storage_url) -> optuna.Study
    Evaluator(config, data).evaluate(spec, seed=0) -> Evaluation
    pick(study, require=(), prefer=None, knee=False) -> Pick
    propose_rightsize(study, trial, margin=1.5, cka_threshold=0.95) -> Proposal
    enqueue_rightsize(study, proposal) -> (trial number, queued now)
    train(spec, train_config(spec_file, data=...)) -> Trained
    seed_search(config, source_study, top=None) -> (seeds, queued trial numbers)
    report_run(run_id, tracking_uri=...) -> Report;  report_front(study, config) -> [Report]
    rank_early(specs, data_config, budget) -> list[float]     (the early score of each spec)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run": "codenas.search.study",
    "front": "codenas.search.study",
    "load_study": "codenas.search.study",
    "open_study": "codenas.search.study",
    "run_workers": "codenas.search.parallel",
    "stored_config": "codenas.search.study",
    "Evaluator": "codenas.search.evaluate",
    "Evaluation": "codenas.search.evaluate",
    "FrontRow": "codenas.search.pareto",
    "load_dataset": "codenas.search.datasets",
    "BriefTrainer": "codenas.search.training",
    "rank_early": "codenas.search.early_score",
    "pick": "codenas.search.picking",
    "Pick": "codenas.search.picking",
    "Requirement": "codenas.search.picking",
    "NoFeasibleTrial": "codenas.search.picking",
    "propose_rightsize": "codenas.search.rightsize",
    "enqueue_rightsize": "codenas.search.rightsize",
    "Proposal": "codenas.search.rightsize",
    "train": "codenas.search.transfer",
    "train_config": "codenas.search.transfer",
    "Trained": "codenas.search.transfer",
    "load_spec_file": "codenas.search.transfer",
    "write_spec_file": "codenas.search.transfer",
    "seed_search": "codenas.search.transfer",
    "seeds_from": "codenas.search.transfer",
    "report_run": "codenas.search.report",
    "report_trial": "codenas.search.report",
    "report_front": "codenas.search.report",
    "Report": "codenas.search.report",
}

# Names exported under another name than the one they have in their module.
_ALIASES = {"propose_rightsize": "propose", "enqueue_rightsize": "enqueue"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), _ALIASES.get(name, name))
    raise AttributeError(f"module 'codenas.search' has no attribute {name!r}")
