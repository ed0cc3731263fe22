"""The preloaded fork server of ``--workers`` (codenas/search/forkserver.py): real processes.

This module imports nothing heavy itself, so a module a forked worker finds in ``sys.modules``
came from the fork server's preload, not from the test.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sys

import pytest

from codenas.search import forkserver

pytestmark = pytest.mark.skipif(not forkserver.available(), reason="no fork server here")

HEAVY = ("torch", "lightning_fabric", "optuna", "mlflow", "sqlalchemy", "sklearn")


def _report(conn) -> None:  # runs in the forked worker
    conn.send(
        {
            "heavy": sorted(m for m in HEAVY if m in sys.modules),
            "frozen": gc.get_freeze_count(),
            "ppid": os.getppid(),
            # A fork server that initialised CUDA would leave its workers unable to use it
            # ("Cannot re-initialize CUDA in forked subprocess"). Trivially false on a CPU.
            "cuda": sys.modules["torch"].cuda.is_initialized(),
        }
    )
    conn.close()


def test_preload_names_the_worker_modules_and_the_trackers_own() -> None:
    modules = forkserver.preload_modules()
    assert "codenas.search.study" in modules and "codenas.training.loop" in modules
    # The MLflow tracker is found through its entry points, not named by the search layer.
    assert "codenas.tracking.tracker" in modules and "codenas.tracking.preload" in modules
    assert modules[-1] == "codenas.search._frozen"  # last: freezes what the others imported
    assert len(set(modules)) == len(modules)


def test_a_worker_forked_from_the_server_starts_with_the_heavy_modules_imported() -> None:
    assert forkserver.warm_up()
    ctx = forkserver.context()
    assert ctx.get_start_method() == "forkserver"
    parent, child = mp.Pipe()
    proc = ctx.Process(target=_report, args=(child,))
    proc.start()
    got = parent.recv()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert got["heavy"] == sorted(HEAVY)  # imported once by the server, not by the worker
    assert got["frozen"] > 100_000  # the preloaded objects sit in the permanent generation
    assert got["cuda"] is False
    assert got["ppid"] != os.getpid()  # a child of the fork server, not of this process
    server_pid = got["ppid"]
    forkserver.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)  # stopped and reaped: nothing outlives the command


def test_stop_without_a_server_is_a_no_op() -> None:
    forkserver.stop()
    forkserver.stop()
