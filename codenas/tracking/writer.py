"""One background thread for the tracking writes a trial's result does not wait for.

Ending a trial's MLflow run (its final tags, its status) and bringing the Pareto tags up to date
take 10 ms a trial on a local SQLite file and 40 ms against a tracking server on the same
machine: more over a real network, where the thread mostly waits on a socket and the next trial
trains meanwhile. :class:`BackgroundWriter` runs such writes in the order they were submitted,
one at a time, on a daemon thread started on first use (so a fork server never holds one).

What must reach MLflow before Optuna records a trial COMPLETE (its metrics) is never submitted
here. :meth:`BackgroundWriter.flush` waits until everything submitted is written; the tracker
calls it before the end-of-search steps (``codenas.search.study.wrap_up``, also after Ctrl-C
and SIGTERM) and an ``atexit`` hook calls it before the interpreter exits. A process killed
outright loses at most the writes still queued: the runs they would have ended stay RUNNING
and the next process of the study ends them (``MlflowTracker.reconcile``), and the Pareto tags
are recomputed from Optuna's storage on its first trial.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable
from typing import Any


class BackgroundWriter:
    """Runs submitted calls in order on one daemon thread; :meth:`flush` waits for them.

    The first exception a call raises is kept in :attr:`error` (the calls handle the errors
    they can recover from themselves); the caller decides when to raise it.
    """

    def __init__(self, name: str = "codenas-writer") -> None:
        self.name = name
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        """Queue ``call(*args)``; it runs after every call submitted before it."""
        self._ensure_thread()
        self._queue.put((call, args))

    def flush(self) -> None:
        """Wait until every call submitted so far has run."""
        if self._thread is not None:
            self._queue.join()

    @property
    def pending(self) -> int:
        """Calls submitted and not finished yet."""
        return self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _work(self) -> None:
        while True:
            call, args = self._queue.get()
            try:
                call(*args)
            except BaseException as err:  # kept for the caller, never lost in the thread
                if self.error is None:
                    self.error = err
            finally:
                self._queue.task_done()
