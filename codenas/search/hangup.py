"""SIGHUP stops codenas as SIGTERM does.

A closed terminal sends SIGHUP to the processes of its foreground job, ``kill -HUP PID`` to one
process. Python leaves SIGHUP at its default action, which ends a process at once: a search
stopped so leaves its running trial RUNNING, and the ``--workers`` processes of a command that
got it alone run on without it. :func:`sighup_as_sigterm` makes SIGHUP call whatever handler
SIGTERM has when it comes (the search's interrupt gate, a worker's stop, the command line's),
so a hang-up records the running trial as failed and stops every worker, as SIGTERM does.
When the hang-up is a closed terminal, the process's output that went to it goes to
``/dev/null`` from then on (a write to a hung-up terminal fails).

The ``--workers`` fork server imports :mod:`codenas.search._fork_server_signals`, which calls
:func:`for_fork_server`: the workers forked from it inherit the SIGHUP handler, while the
server itself ignores SIGHUP, as it ignores Ctrl-C. It ends when the command stops it once
its workers are joined: ended earlier, it would cut the command's view of the workers' exits
short while they still record their trials.

Only the standard library is imported here.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from typing import Any

_server_pid: int | None = None  # the fork server's pid, in the fork server and its workers


def _drop_closed_terminal() -> None:
    """Point standard output and error at ``/dev/null`` where they are a terminal that hung
    up: every write to it fails from now on (EIO), and a failed write must not break off the
    recording of the running trial. Output to a live terminal, a file or a pipe is kept."""
    try:
        import termios
    except ImportError:
        return
    for fd in (1, 2):
        try:
            termios.tcgetattr(fd)
        except termios.error as err:
            if err.args and err.args[0] == errno.EIO:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
        except (OSError, ValueError):
            pass


def _on_hangup(signum: int, frame: Any) -> None:
    _drop_closed_terminal()
    if os.getpid() == _server_pid:
        return  # the fork server: it ends when the command stops it
    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler):
        handler(signal.SIGTERM, frame)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signal.SIGTERM)
    # SIG_IGN: a process that ignores SIGTERM ignores SIGHUP too


def sighup_as_sigterm() -> bool:
    """Route SIGHUP to this process's SIGTERM handler (as it is when SIGHUP comes).

    Returns:
        Whether it was installed (not on platforms without SIGHUP, nor off the main thread,
        where signal handlers cannot be set).
    """
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGHUP, _on_hangup)
    return True


def for_fork_server() -> None:
    """In the ``--workers`` fork server: ignore SIGHUP here, handle it as SIGTERM in the
    workers forked from here."""
    global _server_pid
    _server_pid = os.getpid()
    sighup_as_sigterm()
