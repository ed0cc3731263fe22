"""The link `codenas ui` prints opens the study's Pareto front in a real browser.

A real `mlflow server` (started by `codenas ui` on a free port) serves a tiny real study; the
printed link is opened in headless Chromium, and the page must show the front's trial runs
with their objective values as columns (the "Model training" runs table, not the GenAI
overview). `.ci/run` installs Debian's `chromium` and `chromium-driver` when absent.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from codenas.cli import main
from tests.conftest import tiny_overrides
from tests.servers import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]


def _start_ui(workdir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """`codenas ui` as a user starts it; returns the process and the front link it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "codenas.cli", "ui", "--port", str(port)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        start_new_session=True,
    )
    assert proc.stderr is not None
    link = ""
    deadline = time.monotonic() + 60
    while not link and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        match = re.search(r"tiny: (http://\S+)", line)
        link = match.group(1) if match else ""
    assert link, "codenas ui printed no link to the study's front"
    while time.monotonic() < deadline + 60:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc, link
        except OSError:
            assert proc.poll() is None, "mlflow server exited"
            time.sleep(0.5)
    raise AssertionError("mlflow server did not answer within 120 s")


def test_the_printed_link_shows_the_front_with_its_objectives(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    overrides = [a for o in tiny_overrides(workdir) for a in ("--set", o)]
    assert main(["search", "--no-progress", "--trials", "3", *overrides]) == 0
    out = capsys.readouterr().out
    assert "Pareto front: http://127.0.0.1:5000/#/experiments/" in out
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{workdir / 'optuna.db'}")
    front = study.best_trials
    off_front = [t for t in study.trials if t.number not in {f.number for f in front}]

    port = free_port()
    proc, link = _start_ui(workdir, port)
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=2400,1200")  # every column in view (the grid is lazy)
    options.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(link)
        wanted = [f"trial-{t.number}" for t in front]
        deadline = time.monotonic() + 90
        text = ""
        while time.monotonic() < deadline:
            text = driver.find_element("tag name", "body").text
            if all(w in text for w in wanted) and "val_accuracy" in text:
                break
            time.sleep(1)
        # CODENAS_SCREENSHOT=path.png keeps a picture of the page, to look at.
        driver.save_screenshot(os.environ.get("CODENAS_SCREENSHOT", str(workdir / "front.png")))
    finally:
        driver.quit()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert "Model training" in text and "Runs" in text
    for trial in front:
        assert f"trial-{trial.number}" in text, text[:2000]
        accuracy, _, params = trial.values
        assert f"{accuracy:.4f}"[:-1] in text  # shown to more digits, maybe cut by the cell
        assert str(int(params)) in text
    for trial in off_front:
        assert f"trial-{trial.number}\n" not in text + "\n", "a dominated trial is listed"
    for column in ("val_accuracy", "capacity_usage", "params", "codenas.trial_number"):
        assert column in text
