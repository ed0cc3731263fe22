"""An existing neural-code report is reused, not redone: by the end-of-search step and by
`codenas report RUN_ID`, which says where it is; `--force` draws it again in place. The
end-of-search reports are counted by a progress bar. A real tiny search, real MLflow runs,
real files (their modification times show what was rewritten)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import codenas
from codenas.cli import main
from codenas.decisions.report import REPORT_TAG
from codenas.workflows import front_reports
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture
def searched(workdir: Path, capsys: pytest.CaptureFixture[str]):
    """A tiny search with its end-of-search reports, run in ``workdir``."""
    overrides = [*tiny_overrides(workdir, "reuse"), "tracking.report=true"]
    config = codenas.load_config(None, overrides)
    study = codenas.workflows.search(config, progress=True)
    err = capsys.readouterr().err
    return config, study, err


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_end_of_search_reports_have_a_bar_and_are_not_redone(
    searched, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, study, err = searched
    front = sorted(t.number for t in study.best_trials)
    base = workdir / "reports" / "reuse"
    assert sorted(p.parent.name for p in base.glob("trial-*/report.html")) == [
        f"trial-{n}" for n in front
    ]
    n = len(front)
    assert re.search(rf"reports: 100%.* {n}/{n} ", err)  # the bar reached the end
    assert f"({n} new, 0 kept)" in err
    before = _mtimes(base)

    front_reports(study, config, log=True, progress=True)
    err = capsys.readouterr().err
    assert f"(0 new, {n} kept)" in err
    assert _mtimes(base) == before, "an existing report was written again"


def test_codenas_report_reuses_the_end_of_search_report(
    searched, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    config, study, _ = searched
    trial = min(study.best_trials, key=lambda t: t.number)
    run_id = trial.user_attrs["mlflow_run_id"]
    folder = workdir / "reports" / "reuse" / f"trial-{trial.number}"
    run = MlflowClient(config.tracking.uri).get_run(run_id)
    assert run.data.tags[REPORT_TAG] == str((folder / "report.html").resolve())
    before = _mtimes(folder)

    assert main(["report", run_id, "--tracking-uri", config.tracking.uri]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (
        f"trial {trial.number} of study 'reuse' already has a neural-code report: "
        f"{folder.resolve() / 'report.html'} (--force draws it again)"
    )
    assert _mtimes(folder) == before
    assert not list(workdir.glob("report-*")), "a second copy was written"

    # --force draws it again, in place
    assert main(["report", run_id, "--tracking-uri", config.tracking.uri, "--force"]) == 0
    out = capsys.readouterr().out
    assert f"neural-code report of trial {trial.number} of study 'reuse':" in out
    after = _mtimes(folder)
    assert after.keys() == before.keys()
    assert all(after[name] > before[name] for name in before), "not redrawn in place"
    assert not list(workdir.glob("report-*"))


def test_codenas_report_of_a_run_without_a_report_writes_it_once(
    searched, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, study, _ = searched
    front = {t.number for t in study.best_trials}
    (trial,) = [t for t in study.trials if t.number not in front][:1] or pytest.skip(
        "every trial of this tiny search is on the front"
    )
    run_id = trial.user_attrs["mlflow_run_id"]
    assert main(["report", run_id, "--tracking-uri", config.tracking.uri, "--no-log"]) == 0
    assert "neural-code report of" in capsys.readouterr().out
    (written,) = workdir.glob("report-*")
    assert written.name == f"report-{run_id[:8]}"
    before = _mtimes(written)
    assert main(["report", run_id, "--tracking-uri", config.tracking.uri, "--no-log"]) == 0
    assert "already has a neural-code report: " in capsys.readouterr().out
    assert _mtimes(written) == before
