"""A preloaded fork server for ``--workers``: extra workers start warm, not from scratch.

A worker process needs torch, Lightning, Optuna and the tracker's client (MLflow), which take
about 5 s to import on two cores. A spawned worker imports them afresh; a worker forked from
the fork server of :mod:`multiprocessing` gets them from a parent that imported them once and
ran nothing else (no OpenMP pool, no database connection, no thread), which is what makes the
fork safe. :func:`warm_up` starts that server early, before the command's own imports, so that
on a machine with a spare core its imports run beside the command's instead of after them.

This module imports only the standard library: the command line calls :func:`warm_up` before it
imports anything heavy.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.forkserver as _forkserver
import os
import signal
from importlib import metadata
from typing import Any

from codenas.search.tracker import ENTRY_POINT_GROUP

#: What a worker imports before its first trial (``codenas.search.study`` pulls in the
#: objective, the evaluator, training and the metrics); the modules of the trackers registered
#: under :data:`codenas.search.tracker.ENTRY_POINT_GROUP` are added to it.
PRELOAD = (
    "codenas.search.study",
    "codenas.search.storage",
    "codenas.evaluation.evaluate",
    "codenas.training.loop",
    "codenas.training.fabric",  # imported by the trainer on its first use, the largest of all
    "codenas.data",
    "codenas.spaces",
    "optuna.storages",
    "optuna.samplers",
    "sklearn.model_selection",
    "sklearn.datasets",
    # SIGHUP: ignored by the server, SIGTERM's handler in each worker (codenas.search.hangup)
    "codenas.search._fork_server_signals",
)

#: The entry-point group of further modules to preload (a tracker's client, for instance:
#: ``codenas.tracking.preload`` imports MLflow's).
PRELOAD_GROUP = "codenas.preload"


def available() -> bool:
    """Whether this platform has a fork server (Linux and macOS; not Windows)."""
    return "forkserver" in mp.get_all_start_methods()


def preload_modules() -> list[str]:
    """:data:`PRELOAD`, the module of every tracker registered as an entry point, the
    modules of the :data:`PRELOAD_GROUP` entry points, and last :mod:`codenas.search._frozen`
    (``gc.freeze()`` over all of them)."""
    modules = list(PRELOAD)
    for group in (ENTRY_POINT_GROUP, PRELOAD_GROUP):
        for entry in metadata.entry_points(group=group):
            module = entry.value.split(":", 1)[0].strip()
            if module not in modules:
                modules.append(module)
    return [*modules, "codenas.search._frozen"]  # last: freezes what the others imported


def context() -> Any:
    """The multiprocessing context workers start from: the preloaded fork server if the
    platform has one (its preload list set, for a server not yet started), else ``spawn``."""
    if not available():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload_modules())
    return ctx


def warm_up() -> bool:
    """Start the fork server now (it imports :func:`preload_modules` in the background).

    Idempotent; a server already running is kept. Returns whether a fork server is in use.
    """
    if not available():
        return False
    context()
    _forkserver.ensure_running()
    return True


def stop() -> None:
    """Stop this process's fork server, if it started one (the command line calls this before
    it exits, so no process outlives the command). Workers already joined are unaffected."""
    server = getattr(_forkserver, "_forkserver", None)
    stop_server = getattr(server, "_stop", None)  # CPython's own clean-up; absent elsewhere
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or not pid or stop_server is None:
        return
    # The server holds nothing to write (it only forks), and its workers are joined: end it at
    # once rather than wait out its interpreter's teardown (0.2 s), then let CPython reap it
    # and remove its socket.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    stop_server()
