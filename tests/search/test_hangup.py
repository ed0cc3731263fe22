"""SIGHUP with ``--workers``: a hang-up stops every process codenas started, and each running
trial is recorded as interrupted, as with SIGTERM. Real signals, a real pseudo-terminal; the
results are read through Optuna's and MLflow's APIs."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import optuna
import pytest

from tests.search.test_distributed import ROOT, check_tracking, wait_for_trial, write_config
from tests.search.test_trust_workers import (
    _exits_130_and_leaves_no_process,
    _group_alive,
    _two_workers_in_a_trial,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals"),
]


def _interrupted_trials_recorded(storage: str, name: str, tracking: str) -> list:
    study, by_trial = check_tracking(storage, name, tracking)  # one run per trial, states agree
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "FAIL"}  # nothing RUNNING
    interrupted = [t for t in study.trials if t.state.name == "FAIL"]
    assert interrupted
    for trial in interrupted:
        assert trial.user_attrs.get("fail_reason") == "interrupted (Ctrl-C or SIGTERM)"
        assert by_trial[trial.number].info.status == "KILLED"
    return interrupted


def test_sighup_to_the_command_alone_stops_every_worker(tmp_path: Path) -> None:
    """`kill -HUP PID` of a `codenas search --workers 2`: the command (worker 0) and the
    other worker both record their trials as interrupted, and no process is left."""
    name = "sighup-workers"
    proc, storage, tracking, workers = _two_workers_in_a_trial(tmp_path, name)
    proc.send_signal(signal.SIGHUP)  # to the command only, not its group
    _exits_130_and_leaves_no_process(proc)
    interrupted = _interrupted_trials_recorded(storage, name, tracking)
    assert {t.user_attrs["worker"] for t in interrupted} <= workers


def test_a_closed_terminal_stops_every_worker(tmp_path: Path) -> None:
    """`codenas search --workers 2` in a terminal that is closed: the kernel sends SIGHUP to
    the terminal's foreground job (the command, the fork server and the worker) and writes to
    the terminal fail from then on. Every process ends and every trial is recorded."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "closed-terminal"
    cfg = write_config(tmp_path, name, storage, tracking, [])
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # runs in the child, after setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    path = os.environ.get("PYTHONPATH")
    command = ["search", str(cfg), "--trials", "50", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codenas.cli", *command],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)},
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    shown: list[bytes] = []
    closed = threading.Event()

    def terminal() -> None:
        """Show what the command writes (the progress bar) until the window is closed. The
        master side is closed here: closed while another thread reads it, it would stay open
        until that read returned."""
        while not closed.is_set():
            if select.select([master], [], [], 0.1)[0]:
                try:
                    shown.append(os.read(master, 4096))
                except OSError:
                    break
        os.close(master)

    reader = threading.Thread(target=terminal, daemon=True)
    reader.start()
    try:
        workers: set[str] = set()

        def both_in_a_trial(t: optuna.trial.FrozenTrial) -> bool:
            if t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs:
                workers.add(t.user_attrs["worker"])
            return len(workers) == 2

        wait_for_trial(storage, name, both_in_a_trial)
        closed.set()  # the terminal window is closed
        reader.join()
        proc.wait(timeout=120)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "a worker or the fork server outlived the command"
    finally:
        closed.set()
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == 130, b"".join(shown)[-2000:]
    _interrupted_trials_recorded(storage, name, tracking)
