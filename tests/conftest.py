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
        "tracking.report=false",  # reports have their own tests (tests/decisions/test_report.py)
    ]


@pytest.fixture
def tiny_config(tmp_path: Path) -> Config:
    """The default digits MLP config, shrunk to run in seconds, stores in ``tmp_path``."""
    return codenas.load_config(None, tiny_overrides(tmp_path))


def make_config(tmp_path: Path, extra: Sequence[str] = (), path: str | None = None) -> Config:
    return codenas.load_config(path, [*tiny_overrides(tmp_path), *extra])


# ------------------------------------------------------------------ a clean working tree
# Tests write only to temporary directories: the suite fails if it leaves anything new in
# `git status` (a report folder, a database, a lock file) in the checkout it runs from.
_ROOT = Path(__file__).resolve().parent.parent


def _git_status() -> set[str] | None:
    import shutil
    import subprocess

    if shutil.which("git") is None or not (_ROOT / ".git").exists():
        return None
    result = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=_ROOT,
        capture_output=True,
        text=True,
    )
    return set(result.stdout.splitlines()) if result.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STATUS_KEY] = _git_status()
    # A cache of this session's own (codenas.cache: datasets, MLflow's empty database), so
    # that every run of the suite starts as a fresh machine does, whatever ~/.cache holds.
    import os
    import tempfile

    if "CODENAS_CACHE_DIR" not in os.environ:
        os.environ["CODENAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="codenas-test-cache-")
        session.config.stash[_CACHE_KEY] = os.environ["CODENAS_CACHE_DIR"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    own_cache = session.config.stash.get(_CACHE_KEY, None)
    if own_cache is not None:
        shutil.rmtree(own_cache, ignore_errors=True)
    before = session.config.stash.get(_STATUS_KEY, None)
    after = _git_status()
    if before is None or after is None or getattr(session.config, "workerinput", None):
        return
    new = sorted(after - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test suite changed the working tree (`git status`): " + ", ".join(new)
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_STATUS_KEY = pytest.StashKey["set[str] | None"]()
_CACHE_KEY = pytest.StashKey[str]()
