"""What a user's run leaves in the directory is ignored by git (a search run from the checkout)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LEFT_BY_A_RUN = [
    "optuna.db",
    "optuna.db-wal",
    "optuna.db-shm",
    "optuna.db.lock",
    "mlflow.db",
    "mlflow.db-wal",
    "mlflow.db-shm",
    "mlartifacts/1/abc/artifacts/pareto_front.png",
    "reports/digits-mlp/trial-8/report.html",
    "report-4aad4c34fa86494c86b56812c0faa0f1/report.html",
    "spec.yaml",
]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
@pytest.mark.parametrize("path", LEFT_BY_A_RUN)
def test_gitignore_covers_what_a_run_leaves(path: str) -> None:
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
    assert result.returncode == 0, f"{path} would show in `git status`"
