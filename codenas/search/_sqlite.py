"""Fast, crash-safe SQLite settings for codenas's own database files.

A commit on SQLite's default rollback journal costs two or three ``fsync`` calls: 18 ms each on
the machines codenas was measured on, and a trial makes about forty commits across Optuna and
MLflow. In WAL mode with ``synchronous=NORMAL`` a commit costs no ``fsync`` and stays durable
when a process is killed (SQLite: "transactions are durable across application crashes"); only
a power loss or OS crash can roll back the last commits. WAL also lets readers (the MLflow UI,
optuna-dashboard, other workers) read while a worker writes.

The settings apply only to the files codenas opens as its stores (``tune(url)``), never to
other SQLite databases in the same process.

In WAL mode the commits live in ``<file>-wal`` until a checkpoint copies them into the file
itself; SQLite does that when the last connection closes, which a process that exits with its
connection pools open never does (a search left a 4 KB ``optuna.db`` beside a 3.9 MB
``optuna.db-wal``: the ``.db`` file copied alone had no tables). So every file :func:`tune`
saw is checkpointed when the process exits (:func:`checkpoint`, an ``atexit`` hook): after a
command ends, the ``.db`` file alone is the whole store and may be copied or mailed alone.

:func:`file_lock` serialises one read-then-write across the processes of one machine: Python's
``sqlite3`` reads outside any transaction and opens one only at the next write, so without it
two workers can both read a queued (WAITING) Optuna trial as free and both claim it (seen here:
"Cannot tell a COMPLETE trial"); PostgreSQL's ``SELECT ... FOR UPDATE`` does this itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna

_PATHS: set[str] = set()
_INSTALLED = False
_AT_EXIT = False


def path_of(url: str) -> str | None:
    """The real path of the SQLite file of ``url`` (``None``: not a SQLite file URL)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return os.path.realpath(path)


def not_a_database(url: str) -> str | None:
    """Why the existing SQLite file of ``url`` is no database (``None``: it is one, it does not
    exist yet or is empty, or ``url`` names no SQLite file).

    A client told to open such a file may retry for minutes first (MLflow's engine creation
    backs off for about two); this reads the file's header, read-only, at once. A file merely
    busy or locked is not refused here.
    """
    path = path_of(url)
    if path is None or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    try:
        uri = f"{Path(path).as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=2.0)) as con:
            con.execute("PRAGMA schema_version").fetchone()
    except sqlite3.OperationalError:  # busy, locked or unopenable: the client says why
        return None
    except sqlite3.DatabaseError as err:  # not a database, or a malformed one
        return f"{path}: {err}"
    return None


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
    path = path_of(url)
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
    global _INSTALLED, _AT_EXIT
    path = path_of(url)
    if path is None:
        return
    _PATHS.add(path)
    if not _AT_EXIT:
        atexit.register(checkpoint_all)
        _AT_EXIT = True
    if not _INSTALLED:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "connect", _on_connect)
        _INSTALLED = True


def checkpoint(path: str, timeout: float = 2.0) -> bool:
    """Copy the WAL of the SQLite file ``path`` into the file and empty it
    (``PRAGMA wal_checkpoint(TRUNCATE)``), so that the file alone is the whole database.

    A file not in WAL mode (its commits are in the file already) or missing is left alone.
    Another process still reading or writing it may keep the checkpoint from finishing within
    ``timeout`` seconds: the WAL is then kept (nothing is lost; that process checkpoints it
    in turn when it ends).

    Returns:
        Whether the file is in WAL mode and its WAL is now empty.
    """
    if not os.path.isfile(path):
        return False
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=timeout)) as con:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                return False
            busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return bool(busy == 0)
    except sqlite3.Error:
        return False


def checkpoint_all() -> None:
    """:func:`checkpoint` every file :func:`tune` saw in this process (at exit)."""
    for path in sorted(_PATHS):
        checkpoint(path)


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
