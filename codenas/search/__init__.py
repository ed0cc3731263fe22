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
    "Evaluator": "codenas.evaluation.evaluate",
    "Evaluation": "codenas.evaluation.evaluate",
    "FrontRow": "codenas.search.pareto",
    "load_dataset": "codenas.data",
    "BriefTrainer": "codenas.training.loop",
    "rank_early": "codenas.evaluation.early_score",
    "pick": "codenas.decisions.picking",
    "Pick": "codenas.decisions.picking",
    "Requirement": "codenas.decisions.picking",
    "NoFeasibleTrial": "codenas.decisions.picking",
    "propose_rightsize": "codenas.decisions.rightsize",
    "enqueue_rightsize": "codenas.decisions.rightsize",
    "Proposal": "codenas.decisions.rightsize",
    "train": "codenas.decisions.transfer",
    "train_config": "codenas.decisions.transfer",
    "Trained": "codenas.decisions.transfer",
    "load_spec_file": "codenas.decisions.transfer",
    "write_spec_file": "codenas.decisions.transfer",
    "seed_search": "codenas.decisions.transfer",
    "seeds_from": "codenas.decisions.transfer",
    "report_run": "codenas.decisions.report",
    "report_trial": "codenas.decisions.report",
    "report_front": "codenas.decisions.report",
    "Report": "codenas.decisions.report",
}

# Names exported under another name than the one they have in their module.
_ALIASES = {"propose_rightsize": "propose", "enqueue_rightsize": "enqueue"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), _ALIASES.get(name, name))
    raise AttributeError(f"module 'codenas.search' has no attribute {name!r}")
