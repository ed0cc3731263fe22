"""Fast, crash-safe SQLite settings for codenas's own database files.

A commit on SQLite's default rollback journal costs two or three ``fsync`` calls: 18 ms each on
the machines codenas was measured on, and a trial makes about forty commits across Optuna and
MLflow. In WAL mode with ``synchronous=NORMAL`` a commit costs no ``fsync`` and stays durable
when a process is killed (SQLite: "transactions are durable across application crashes"); only
a power loss or OS crash can roll back the last commits. WAL also lets readers (the MLflow UI,
optuna-dashboard, other workers) read while a worker writes.

The settings apply only to the files codenas opens as its stores (``tune(url)``), never to
other SQLite databases in the same process.

:func:`file_lock` serialises one read-then-write across the processes of one machine: Python's
``sqlite3`` reads outside any transaction and opens one only at the next write, so without it
two workers can both read a queued (WAITING) Optuna trial as free and both claim it (seen here:
"Cannot tell a COMPLETE trial"); PostgreSQL's ``SELECT ... FOR UPDATE`` does this itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import optuna

_PATHS: set[str] = set()
_INSTALLED = False


def _path_of(url: str) -> str | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return os.path.realpath(path)


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    if not isinstance(dbapi_conn, sqlite3.Connection):
        return
    row = dbapi_conn.execute("PRAGMA database_list").fetchone()
    if row is None or not row[2] or os.path.realpath(row[2]) not in _PATHS:
        return
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def lock_path(url: str) -> str | None:
    """The lock file beside the SQLite database of ``url`` (``None`` for other URLs)."""
    path = _path_of(url)
    return None if path is None else f"{path}.lock"


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one worker per SQLite file is then the safe choice
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tune(url: str) -> None:
    """Use WAL and ``synchronous=NORMAL`` for connections that SQLAlchemy opens to ``url``.

    Call it before the engine is created (Optuna's storage, MLflow's client).
    """
    global _INSTALLED
    path = _path_of(url)
    if path is None:
        return
    _PATHS.add(path)
    if not _INSTALLED:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "connect", _on_connect)
        _INSTALLED = True


class LockedSQLiteStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage on a SQLite file whose trial state changes hold :func:`file_lock`.

    Claiming a queued trial reads its state, then writes RUNNING; on SQLite two worker
    processes can interleave the two and run the same trial. The lock makes the read-then-write
    one step across the machine's processes.
    """

    def __init__(self, url: str, lock: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._codenas_lock = lock

    def set_trial_state_values(
        self,
        trial_id: int,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None = None,
    ) -> bool:
        with file_lock(self._codenas_lock):
            return super().set_trial_state_values(trial_id, state, values)
