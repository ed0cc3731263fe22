"""After a search: pick an architecture, right-size it, train or transfer it, seed a new search,
and report its neural code. Each function takes a study or an MLflow run and returns a plain
record; the CLI's commands are thin wrappers over them.

Public API (imported lazily)::

    pick(study, require=(), prefer=None, knee=False) -> Pick
    propose_rightsize(study, trial, margin=1.5, cka_threshold=0.95) -> Proposal
    enqueue_rightsize(study, proposal) -> (trial number, queued now)
    train(spec, train_config(spec_file, data=...)) -> Trained
    seed_search(config, source_study, top=None) -> (seeds, queued trial numbers)
    report_run(run_id, tracking_uri=...) -> Report;  report_front(study, config) -> [Report]
    resolve_source(run_id=... | study=, storage=, trial=... | spec=, weights=...) -> Source
    erase(source, factor, layer=None) -> Erasure;  distil(source, student=None) -> Distilled
"""

from __future__ import annotations

from codenas.lazy import lazy_getattr

_EXPORTS = {
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
    "seed_search": "codenas.decisions.seeding",
    "seeds_from": "codenas.decisions.seeding",
    "report_run": "codenas.decisions.report",
    "report_trial": "codenas.decisions.report",
    "report_front": "codenas.decisions.report",
    "Report": "codenas.decisions.report",
    "resolve_source": "codenas.decisions.source",
    "Source": "codenas.decisions.source",
    "erase": "codenas.decisions.erase",
    "Erasure": "codenas.decisions.erase",
    "distil": "codenas.decisions.distil",
    "Distilled": "codenas.decisions.distil",
    "edit": "codenas.decisions.edit",
    "Edit": "codenas.decisions.edit",
}

# Names exported under another name than the one they have in their module.
_ALIASES = {
    "propose_rightsize": "propose",
    "enqueue_rightsize": "enqueue",
    "resolve_source": "resolve",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, aliases=_ALIASES)
