"""What a search may spend: a trial budget shared by workers, and a deadline (``study.timeout``).

A search stops *starting* trials once either is spent; a trial already running finishes, so a
timed search ends by its deadline plus at most one trial per worker, its reports and front
written as after any other search. The deadline is an absolute wall-clock time
(``time.time()``), so the worker processes of ``--workers`` share it exactly; it is measured
from the start of the command (:func:`command_clock`), or from the call of
:func:`codenas.search.run` when no command set one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

# A trial budget with no bound (``study.trials: null`` beside a ``study.timeout``): the largest
# value a shared ``multiprocessing.Value("i")`` holds, never reached in practice.
UNLIMITED = 2**31 - 1

_command_started: float | None = None


@contextlib.contextmanager
def command_clock(started: float) -> Iterator[None]:
    """Within this block, a search's ``study.timeout`` counts from ``started`` (``time.time()``
    at the start of the command), not from the call of :func:`codenas.search.run`: the
    command's imports, checks and data loading are part of the time the user gave it."""
    global _command_started
    before = _command_started
    _command_started = started
    try:
        yield
    finally:
        _command_started = before


def deadline_for(timeout: float | None, *, started: float | None = None) -> float | None:
    """The absolute time (``time.time()``) at which a search with ``timeout`` seconds stops
    starting trials, counted from ``started``, else the command's start
    (:func:`command_clock`), else now; ``None`` without a timeout."""
    if timeout is None:
        return None
    origin = started if started is not None else _command_started
    return (origin if origin is not None else time.time()) + float(timeout)


def passed(deadline: float | None) -> bool:
    """Whether ``deadline`` (``time.time()`` seconds, ``None``: none) has passed."""
    return deadline is not None and time.time() >= deadline


class Budget:
    """How many more trials to start; shared between workers when ``value`` is shared.

    A trial that re-runs one whose worker died (a retry) gives its ticket back: the budget
    counts evaluations the user asked for, and a killed trial has already used one.

    Args:
        value: an ``int`` (``None`` or :data:`UNLIMITED`: no bound), or a
            ``multiprocessing.Value("i")`` shared by several workers.
        deadline: ``time.time()`` after which no trial starts (``None``: none); shared by
            passing the same number to every worker.
    """

    def __init__(self, value: Any, deadline: float | None = None) -> None:
        self._value = UNLIMITED if value is None else value
        self.deadline = deadline

    @property
    def left(self) -> int:
        return int(self._value if isinstance(self._value, int) else self._value.value)

    @property
    def unlimited(self) -> bool:
        """Whether only the deadline bounds the trials (the count is :data:`UNLIMITED`)."""
        return self.left >= UNLIMITED - 1_000_000

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return passed(self.deadline)

    def take(self) -> bool:
        """One more trial may start: take its ticket (false once spent or past the deadline)."""
        if self.expired:
            return False
        if isinstance(self._value, int):
            if self._value <= 0:
                return False
            self._value -= 1
            return True
        with self._value.get_lock():
            if self._value.value <= 0:
                return False
            self._value.value -= 1
            return True

    def give_back(self) -> None:
        if isinstance(self._value, int):
            self._value += 1
            return
        with self._value.get_lock():
            self._value.value += 1
