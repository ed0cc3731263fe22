"""A person at a terminal sees a line while a command loads its libraries; a pipe or a file
(scripts, these tests' other checks of exact stderr) gets no such line."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from codenas.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOADING = "codenas: loading torch, Lightning, Optuna and MLflow..."


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_terminal_sees_the_loading_line_first(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    path = os.environ.get("PYTHONPATH")
    proc = subprocess.Popen(
        [sys.executable, "-m", "codenas.cli", "train", "missing.yaml"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)},
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the command ended and closed the terminal's last slave
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 2
    lines = shown.decode().splitlines()
    assert lines[0] == LOADING, lines
    assert lines[1].startswith("codenas: error: "), lines


def test_no_loading_line_off_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "missing.yaml"]) == 2
    err = capsys.readouterr().err
    assert LOADING not in err and err.count("\n") == 1
