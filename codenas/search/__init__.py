"""The driver: config, data, Lightning training, objectives, the Optuna study, the Pareto front,
MLflow tracking and picking. The only part of codenas that ties spaces and metrics together.

Public API (imported lazily, so ``import codenas.search`` stays cheap)::

    run(config, n_trials=None, progress=False) -> optuna.Study
    front(study=None, study_name=None, storage="sqlite:///optuna.db") -> list[FrontRow]
    load_study(study_name, storage_url) -> optuna.Study
    Evaluator(config, data).evaluate(spec, seed=0) -> Evaluation
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run": "codenas.search.study",
    "front": "codenas.search.study",
    "load_study": "codenas.search.study",
    "open_study": "codenas.search.study",
    "stored_config": "codenas.search.study",
    "Evaluator": "codenas.search.evaluate",
    "Evaluation": "codenas.search.evaluate",
    "FrontRow": "codenas.search.pareto",
    "load_dataset": "codenas.search.datasets",
    "BriefTrainer": "codenas.search.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'codenas.search' has no attribute {name!r}")
