"""Shared fixtures: a temporary working directory and small, fast search configs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import codenas
from codenas.config import Config


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside an empty temporary directory (where optuna.db/mlflow.db land)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tiny_overrides(tmp_path: Path, study: str = "tiny") -> list[str]:
    """Overrides that make the default search tiny: few trials, one epoch, narrow nets."""
    return [
        f"study.name={study}",
        "study.trials=3",
        f"study.storage=sqlite:///{tmp_path / 'optuna.db'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "train.epochs=1",
        "train.threads=1",
        "space.width={min: 4, max: 32, log: true}",
        "space.depth={min: 1, max: 3}",
        "metrics.samples=200",
        "tracking.report=false",  # reports have their own tests (tests/search/test_report.py)
    ]


@pytest.fixture
def tiny_config(tmp_path: Path) -> Config:
    """The default digits MLP config, shrunk to run in seconds, stores in ``tmp_path``."""
    return codenas.load_config(None, tiny_overrides(tmp_path))


def make_config(tmp_path: Path, extra: Sequence[str] = (), path: str | None = None) -> Config:
    return codenas.load_config(path, [*tiny_overrides(tmp_path), *extra])
