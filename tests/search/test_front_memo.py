"""The front is computed once per new COMPLETE trial and shared by its readers."""

from __future__ import annotations

from pathlib import Path

import optuna

from codenas.search._optuna_private import _FRONTS, best_trials


def test_the_front_is_recomputed_only_when_a_trial_completes(tmp_path: Path) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'o.db'}", directions=["maximize", "minimize"]
    )
    study.tell(study.ask(), [0.5, 10.0])
    first = best_trials(study)
    assert _FRONTS[study][1] == first
    computed = _FRONTS[study][1]
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # no new COMPLETE trial
    study.ask()  # a running one
    again = best_trials(study)
    assert again == first and _FRONTS[study][1] is computed  # served, not recomputed
    again.clear()  # a caller's list is its own
    assert best_trials(study) == first
    study.tell(study.ask(), [0.9, 5.0])  # dominates trial 0
    assert [t.number for t in best_trials(study)] == [3]
    assert [t.number for t in study.best_trials] == [3]
