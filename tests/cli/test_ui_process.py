"""`codenas ui` leaves nothing running: a signal to the command alone ends the whole
`mlflow server` tree (server, uvicorn, job runner, huey consumers) and frees the port; a port
already in use is refused before anything starts.

Real processes throughout: the command runs as a user starts it, the processes are read from
``/proc``, and the port is checked by binding it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from codenas.cli import main
from tests.servers import free_port

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc") or not hasattr(signal, "SIGHUP"), reason="needs Linux's /proc"
)
ROOT = Path(__file__).resolve().parents[2]


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a process, from /proc; None once it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live process below ``root``, as pid -> start time."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _stat(int(name))) is not None and stat[1] != "Z":
            parents[int(name)] = stat
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        for child, (ppid, _, start) in parents.items():
            if ppid == pid and child not in found:
                found[child] = start
                todo.append(child)
    return found


def _alive(pid: int, start: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] == start and stat[1] != "Z"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, empty MLflow database (made by MLflow itself)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("ui")
    MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder


def _start_ui(folder: Path, port: int) -> tuple[subprocess.Popen[str], dict[int, int]]:
    """`codenas ui` in a session of its own (as a terminal gives a command), once its server
    answers; returns the process and its tree."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "codenas.cli", "ui", "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, "codenas ui ended before its server answered"
        if line.startswith("MLflow UI on "):
            break
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
        assert r.status == 200
    # The job runner starts its consumers a little after the server answers.
    tree = _descendants(proc.pid)
    while time.monotonic() < deadline and not any(
        "huey" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
        for p in tree
        if _alive(p, tree[p])
    ):
        time.sleep(0.5)
        tree = _descendants(proc.pid)
    return proc, tree


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_a_signal_to_the_command_alone_ends_the_whole_server_tree(
    mlflow_db: Path, sig: signal.Signals
) -> None:
    port = free_port()
    proc, tree = _start_ui(mlflow_db, port)
    try:
        # the server, uvicorn, the job runner and its consumers
        assert len(tree) >= 4, tree
        assert not _port_free(port)
        proc.send_signal(sig)  # to the command only, not its process group
        _, err = proc.communicate(timeout=60)
        start = time.monotonic()
        while time.monotonic() - start < 10 and (
            not _port_free(port) or any(_alive(p, s) for p, s in tree.items())
        ):
            time.sleep(0.1)
        left = [p for p, s in tree.items() if _alive(p, s)]
        assert not left, f"processes of the server tree outlived the command: {left}"
        assert _port_free(port), f"port {port} still in use 10 s after the command ended"
        assert proc.returncode == 130, err
        last = err.strip().splitlines()[-1]
        match = re.fullmatch(
            rf"codenas: {sig.name}: stopped the MLflow UI and its (\d+) processes; "
            rf"port {port} is free",
            last,
        )
        # At least the four kinds above; the exact number varies, as the job runner's
        # consumers come and go around the signal (the test's snapshot may hold one that
        # had already ended when the command counted).
        assert match and int(match.group(1)) >= 4, err
        assert "trial" not in err  # its own message, not the search's
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid, start in tree.items():  # never leave a server behind, even when failing
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)


def test_a_port_in_use_is_refused_before_any_link(
    mlflow_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        before = _descendants(os.getpid())
        status = main(
            ["ui", "--port", str(port), "--tracking-uri", f"sqlite:///{mlflow_db}/mlflow.db"]
        )
        assert _descendants(os.getpid()).keys() <= before.keys(), "a server was started"
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("codenas: error: --port "), err
    assert f"127.0.0.1:{port} is already in use" in err
    assert "http://" not in err


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_port_out_of_range_is_refused(
    mlflow_db: Path, port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["ui", "--port", port, "--tracking-uri", f"sqlite:///{mlflow_db}/mlflow.db"])
    err = capsys.readouterr().err
    assert status == 2 and err == f"codenas: error: --port: must be in 1..65535, got {port}\n"
