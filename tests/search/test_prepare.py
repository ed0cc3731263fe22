"""One pass of checks before any work, and one preparation per process for run and
run_workers (issue 19's "one preparation for a search")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import codenas
import codenas.data
import codenas.search.tracker
from codenas.errors import ConfigError
from codenas.search.parallel import run_workers
from tests.conftest import make_config


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # Refused when the sampler was built, after the study had been created.
        (["study.sampler_options={bogus: 1}"], r"study\.sampler_options: .*bogus"),
        (
            ["study.sampler=code", "study.sampler_options={accuracy_objective: params_x}"],
            "accuracy_objective",
        ),
        (["search.schedule={min_epochs: 2}", "train.epochs=2"], r"search\.schedule\.min_epochs"),
        (["objectives=[dci_forest, params]"], "needs known generative factors"),
    ],
)
def test_every_check_runs_before_a_study_is_created(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    config = make_config(tmp_path, extra)
    with pytest.raises(ConfigError, match=message):
        codenas.search.run(config)
    assert not (tmp_path / "optuna.db").exists(), "nothing is written before the checks pass"
    assert not (tmp_path / "mlflow.db").exists()


def _count(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count this process's calls of the real dataset loader and tracker factory."""
    calls = {"load_dataset": 0, "make_tracker": 0}
    real_load, real_tracker = codenas.data.load_dataset, codenas.search.tracker.make_tracker

    def load(*args: Any, **kwargs: Any) -> Any:
        calls["load_dataset"] += 1
        return real_load(*args, **kwargs)

    def tracker(*args: Any, **kwargs: Any) -> Any:
        calls["make_tracker"] += 1
        return real_tracker(*args, **kwargs)

    monkeypatch.setattr(codenas.data, "load_dataset", load)
    monkeypatch.setattr(codenas.search.tracker, "make_tracker", tracker)
    return calls


@pytest.mark.slow
def test_run_and_run_workers_prepare_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count(monkeypatch)
    config = make_config(tmp_path, ["study.trials=1"])
    codenas.search.run(config)
    assert calls == {"load_dataset": 1, "make_tracker": 1}
    # The coordinator of --workers is worker 0: it runs its trials on its own preparation
    # (this made the data and the tracker twice in that process before).
    study = run_workers(config, n_trials=1, workers=1)
    assert calls == {"load_dataset": 2, "make_tracker": 2}
    assert len(study.trials) == 2
    assert all(t.state.name == "COMPLETE" for t in study.trials)
