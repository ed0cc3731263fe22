"""``codenas ui``: start the MLflow UI on the tracking store (localhost only).

``mlflow server`` is a tree of about ten processes (the server, uvicorn, a job runner and its
huey consumers). Ctrl-C in a terminal reaches the terminal's whole process group, but a signal
to this command alone (``kill PID``, a service manager's SIGTERM, a closed terminal's SIGHUP)
does not, and a server left behind keeps the port: the next ``codenas ui`` on it would fail or
show the old server. So the server runs in a session of its own, and on SIGINT, SIGTERM,
SIGHUP or any exit this command ends that whole tree itself (:func:`stop_tree`): SIGTERM to
the session's process group and to every descendant seen, SIGKILL to what is left after a
grace period. On Linux this process is also the "subreaper" of the tree, so a process whose
parent ended first is re-parented here, not to init, and is found and ended too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from codenas.cli._common import DEFAULT_TRACKING, err, existing_sqlite
from codenas.errors import ConfigError
from codenas.urls import is_server

HOST = "127.0.0.1"
#: Seconds the server's processes get to end after SIGTERM before they are killed.
GRACE = 5.0
#: Seconds a starting server may take to answer on its port.
START_TIMEOUT = 180.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ui",
        help="start the MLflow UI on the tracking store (localhost only)",
        description="Start `mlflow server` on the tracking URI, bound to 127.0.0.1. Ctrl-C, "
        "SIGTERM or SIGHUP to this command stops the server and every process it started.",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=DEFAULT_TRACKING,
        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING})",
    )
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    uri = args.tracking_uri
    if is_server(uri):
        print(f"{uri} is already a tracking server: open it in a browser")
        return 0
    existing_sqlite(uri, "MLflow database", "--tracking-uri")
    check_port(args.port)
    import shutil

    mlflow = shutil.which("mlflow")
    cmd = [mlflow] if mlflow else [sys.executable, "-m", "mlflow"]
    # One worker process: a local UI for one user, and it starts in half the time.
    cmd += ["server", "--backend-store-uri", uri, "--host", HOST, "--port", str(args.port)]
    cmd += ["--workers", "1"]
    base = f"http://{HOST}:{args.port}"
    print(f"starting the MLflow UI on {base} ...", file=sys.stderr, flush=True)

    _become_subreaper()
    gate = _Gate()
    with gate.installed():
        # Its own session (and process group): a terminal's Ctrl-C does not reach it, this
        # process ends it, and a signal to the group reaches every process of the tree.
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            gate.arm()
            from codenas.tracking import front_links

            links = list(front_links(uri, base))  # imports MLflow while the server starts
            if not _wait_until_serving(proc, args.port):
                err(
                    f"mlflow server exited with status {proc.returncode} before serving port "
                    f"{args.port} (its messages are above)"
                )
                return 1
            print(
                f"MLflow UI on {base} (Ctrl-C to stop); the Pareto front of each codenas study:",
                file=sys.stderr,
            )
            for experiment, study, url in links:
                print(f"  {study or experiment}: {url}", file=sys.stderr)
            sys.stderr.flush()
            status = proc.wait()
            gate.disarm()
            return status
        except _Stopped as stop:
            gate.disarm()
            left = stop_tree(proc)
            with contextlib.suppress(OSError):  # a closed terminal's stderr
                print(
                    f"\ncodenas: {signal.Signals(stop.signum).name}: stopped the MLflow UI and "
                    f"its {left} processes; port {args.port} is free",
                    file=sys.stderr,
                )
            return 130
        finally:
            gate.disarm()
            stop_tree(proc)  # on any exit: nothing of the tree outlives the command
            _checkpoint(uri)


def _checkpoint(uri: str) -> None:
    """The server's processes were stopped with their connections open: copy the database's
    WAL into its file, so the ``.db`` file alone is complete again."""
    from codenas.search._sqlite import checkpoint, path_of

    path = path_of(uri)
    if path is not None:
        checkpoint(path)


def check_port(port: int) -> None:
    """Refuse a port outside 1..65535 or one something on this machine already listens on."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port: must be in 1..65535, got {port}")
    with socket.socket() as s:
        # SO_REUSEADDR as the server sets it: a port left in TIME_WAIT is free, a listening
        # socket (on 127.0.0.1 or on every address) is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as e:
            raise ConfigError(
                f"--port {port}: {HOST}:{port} is already in use ({e.strerror}); another "
                "`codenas ui` or MLflow server may be running there: stop it or pass --port N"
            ) from None


def _wait_until_serving(proc: subprocess.Popen[Any], port: int) -> bool:
    """Wait until something accepts connections on ``port``; ``False`` if ``proc`` exited."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex((HOST, port)) == 0:
                return True
        time.sleep(0.2)
    return proc.poll() is None


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Gate:
    """SIGINT, SIGTERM and SIGHUP while the server runs: recorded while it is being started
    (so no started process is lost track of), raised as :class:`_Stopped` once armed, and
    ignored while the tree is being stopped (a second Ctrl-C must not cut that short)."""

    def __init__(self) -> None:
        self.armed = False
        self.signum: int | None = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if first and self.armed:
            self.armed = False
            raise _Stopped(signum)

    def arm(self) -> None:
        if self.signum is not None:
            raise _Stopped(self.signum)
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        for sig in _SIGNALS:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ------------------------------------------------------------------ the process tree


def _proc_stat(pid: int) -> tuple[int, int, str, int] | None:
    """``(ppid, pgid, state, start time)`` of a live process from ``/proc``, else ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[2]), fields[0], int(fields[19])


def _all_procs() -> dict[int, tuple[int, int, str, int]]:
    procs = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _proc_stat(int(name))
                if stat is not None:
                    procs[int(name)] = stat
    return procs


def _tree(roots: set[int], pgid: int) -> dict[int, int]:
    """The live processes of the tree: ``roots``, their descendants and the members of
    process group ``pgid``, as pid -> start time (the pair names a process; a pid alone may
    be reused). Zombies are left out: they have ended."""
    procs = _all_procs()
    found: dict[int, int] = {}
    todo = [p for p in procs if p in roots or procs[p][1] == pgid]
    while todo:
        pid = todo.pop()
        if pid in found or procs[pid][2] == "Z":
            continue
        found[pid] = procs[pid][3]
        todo.extend(p for p, (ppid, *_) in procs.items() if ppid == pid and p not in found)
    return found


def _alive(pid: int, start: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[3] == start and stat[2] != "Z"


def _signal_tree(tree: dict[int, int], pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid, start in tree.items():
        if _alive(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _reap() -> None:
    """Reap the orphans re-parented to this process (its own children included)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def stop_tree(proc: subprocess.Popen[Any], grace: float = GRACE) -> int:
    """End ``proc`` (started with ``start_new_session=True``) and every process it started.

    SIGTERM to its process group and to each descendant (some start sessions of their own),
    then SIGKILL to whatever is left after ``grace`` seconds; returns once none is left (or
    after ``grace`` more seconds). Where ``/proc`` is missing, the process group alone.

    Returns:
        How many processes the tree had when it was stopped.
    """
    pgid = proc.pid
    if not os.path.isdir("/proc"):
        _signal_tree({}, pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        _signal_tree({}, pgid, signal.SIGKILL)
        proc.wait()
        return 1
    me = os.getpid()
    tree = _tree({proc.pid}, pgid)
    tree.pop(me, None)
    if proc.poll() is None or tree:
        _signal_tree(tree, pgid, signal.SIGTERM)
    size = len(tree)
    sent_kill = False
    deadline = time.monotonic() + grace
    while True:
        proc.poll()
        _reap()
        # Orphans re-parented to this process (the subreaper) are its children now.
        seen = _tree({proc.pid} | _children_of(me), pgid)
        seen.pop(me, None)
        new = {p: s for p, s in seen.items() if p not in tree}
        if new:
            _signal_tree(new, pgid, signal.SIGKILL if sent_kill else signal.SIGTERM)
        tree.update(new)
        size = max(size, len(tree))
        left = {p: s for p, s in tree.items() if _alive(p, s)}
        if not left and proc.poll() is not None:
            return size
        if time.monotonic() >= deadline:
            if sent_kill:
                return size
            _signal_tree(left, pgid, signal.SIGKILL)
            sent_kill = True
            deadline = time.monotonic() + grace
        time.sleep(0.05)


def _children_of(pid: int) -> set[int]:
    return {p for p, (ppid, *_) in _all_procs().items() if ppid == pid}


def _become_subreaper() -> None:
    """Linux: orphans of this process's descendants are re-parented here, not to init, so
    :func:`stop_tree` still finds a process whose parent ended first. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
