from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codenas.cli import main
from tests.conftest import tiny_overrides


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_explains_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "codenas.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("search", "front", "ui", "metrics", "spaces", "datasets"):
        assert command in result.stdout
    for command in ("search", "front"):
        sub = subprocess.run(
            [sys.executable, "-m", "codenas.cli", command, "--help"],
            capture_output=True,
            text=True,
        )
        assert sub.returncode == 0
        assert "--storage" in sub.stdout


def test_bad_config_is_one_line_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "bad.yaml").write_text("space:\n  width: {min: 256, max: 8}\n")
    code, _, err = run_cli(capsys, "search", "bad.yaml")
    assert code == 2
    assert err == "codenas: error: bad.yaml: space.width: min <= max must hold, got min=256 max=8\n"
    assert not (workdir / "optuna.db").exists(), "nothing may run before the config is valid"


def test_bad_override_and_unknown_metric(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "search", "--set", "objectives=[efective_rank]")
    assert code == 2
    assert "unknown metric 'efective_rank'. Did you mean 'effective_rank'?" in err
    assert err.count("\n") == 1


def test_unreachable_storage_is_one_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys,
        "search",
        "--storage",
        "postgresql://u:secret@127.0.0.1:1/db",
        "--set",
        "train.epochs=1",
    )
    assert code == 2
    assert err.startswith(
        "codenas: error: cannot open Optuna storage 'postgresql://u:***@127.0.0.1:1/db'"
    )
    assert "secret" not in err
    assert err.count("\n") == 1


def test_a_search_creates_the_folders_of_its_local_stores(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both stores' folders are made when missing, the Optuna one as the MLflow one; a command
    that only reads a study makes none (it says the file is not there)."""
    from codenas.errors import StorageError
    from codenas.search.storage import make_storage

    code, _, err = run_cli(
        capsys,
        "search",
        "--trials",
        "1",
        "--no-progress",
        "--storage",
        "sqlite:///runs/a/optuna.db",
        "--tracking-uri",
        "sqlite:///runs/b/mlflow.db",
        "--set",
        "train.epochs=1",
        "--set",
        "tracking.report=false",
    )
    assert code == 0, err
    assert (workdir / "runs/a/optuna.db").stat().st_size > 0
    assert (workdir / "runs/b/mlflow.db").stat().st_size > 0
    code, _, err = run_cli(capsys, "front", "--storage", "sqlite:///elsewhere/optuna.db")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    assert not (workdir / "elsewhere").exists()
    with pytest.raises(StorageError, match=r"its folder '.*missing' does not exist"):
        make_storage(f"sqlite:///{workdir / 'missing' / 'o.db'}")


def test_a_tracking_file_that_is_no_database_is_one_line_at_once(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow retries opening such a file for about two minutes before it gives up."""
    import time

    (workdir / "mlflow.db").write_bytes(b"not sqlite, " * 1000)
    started = time.monotonic()
    code, _, err = run_cli(capsys, "search", "--trials", "1", "--set", "train.epochs=1")
    assert code == 2
    # the study's announcement, then the error on one line (the tracker opens beside the
    # first trial, so the search has started when it is told)
    errors = [line for line in err.splitlines() if line.startswith("codenas: error:")]
    assert errors == [
        "codenas: error: cannot use MLflow tracking URI 'sqlite:///mlflow.db': "
        f"{(workdir / 'mlflow.db').resolve()}: file is not a database"
    ], err
    assert "Traceback" not in err
    assert time.monotonic() - started < 60  # not after MLflow's retries


def test_front_without_a_storage_here(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "front")
    assert code == 2
    assert "no Optuna storage here" in err
    assert not (workdir / "optuna.db").exists()


def test_listings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "metrics")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert {"effective_rank", "dead_fraction", "capacity_usage", "val_accuracy", "params"} <= set(
        lines
    )
    assert " max " in lines["effective_rank"]
    code, out, _ = run_cli(capsys, "spaces")
    assert code == 0 and "mlp" in out
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0 and "digits" in out


@pytest.mark.slow
def test_search_then_front(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = [a for o in tiny_overrides(workdir) for a in ("--set", o)]
    code, out, err = run_cli(capsys, "search", "--no-progress", "--trials", "2", *overrides)
    assert code == 0, err
    assert "Pareto front of study 'tiny'" in out
    assert "Pareto front: http://127.0.0.1:5000/#/experiments/" in out
    assert "viewStateShareKey=codenas-front-tiny" in out
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    code, out, _ = run_cli(capsys, "front", "--storage", storage, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows and {"trial", "values", "spec", "mlflow_run_id"} <= set(rows[0])
    assert set(rows[0]["values"]) == {"val_accuracy", "capacity_usage", "params"}
    code, out, _ = run_cli(capsys, "front", "--storage", storage, "--format", "csv")
    assert out.splitlines()[0].startswith("trial,state,val_accuracy,capacity_usage,params")
    code, out, err = run_cli(capsys, "front", "--storage", storage, "--study", "tinny")
    assert code == 2 and "Did you mean 'tiny'" in err


@pytest.mark.slow
def test_worker_joins_a_study_without_its_config(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    overrides = [a for o in tiny_overrides(workdir) for a in ("--set", o)]
    assert main(["search", "--no-progress", "--trials", "1", *overrides]) == 0
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    code, _, err = run_cli(
        capsys,
        "worker",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        "--trials",
        "2",
        "--no-progress",
    )
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    code, _, err = run_cli(capsys, "worker", "--storage", storage, "--study", "nope")
    assert code == 2 and f"unknown study 'nope' in {storage}." in err


@pytest.mark.parametrize(
    "command",
    ["search", "worker", "front", "pick", "rightsize", "train", "distil", "erase", "report", "ui"],
)
def test_every_command_has_a_help_page(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: codenas {command}" in capsys.readouterr().out


def test_erase_and_distil_bad_input_is_one_line_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{workdir / 'none.db'}"
    for command in (
        ["erase", "--study", "s", "--storage", missing, "--trial", "0", "--factor", "f1"],
        ["distil", "--study", "s", "--storage", missing, "--trial", "0"],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("codenas: error:"), err
    assert not (workdir / "none.db").exists()


def test_the_cli_default_config_name_is_the_configs() -> None:
    from codenas.cli._common import DEFAULT_CONFIG_NAME
    from codenas.config import DEFAULT_CONFIG

    assert DEFAULT_CONFIG_NAME == DEFAULT_CONFIG


def test_help_imports_neither_torch_nor_mlflow() -> None:
    # `codenas --help` stays fast: the commands import their machinery when they run.
    code = (
        "import sys; from codenas.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'mlflow', 'optuna', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_search_finds_the_mlflow_tracker_without_importing_tracking(tmp_path: Path) -> None:
    # The search layer finds the tracker through the `codenas.trackers` entry point.
    code = (
        "import sys, codenas.search.study as s, codenas.config as c; "
        f"cfg = c.load_config(None, {tiny_overrides(tmp_path)!r}); "
        "assert 'codenas.tracking' not in sys.modules; "
        "s.run(cfg, n_trials=1); print('codenas.tracking' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "True"
    assert (tmp_path / "mlflow.db").exists()


def test_the_console_script_keeps_mains_exit_status_and_output(tmp_path: Path) -> None:
    """``python -m codenas`` (the console script's entry) exits with main's status after its
    quick teardown, with everything it printed flushed."""
    bad = subprocess.run(
        [sys.executable, "-m", "codenas", "search", "--trials", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "codenas: error: --trials: must be at least 1, got 0"
    ]
    listing = subprocess.run(
        [sys.executable, "-m", "codenas", "spaces"], capture_output=True, text=True, cwd=tmp_path
    )
    assert listing.returncode == 0 and "mlp" in listing.stdout


def test_an_accelerator_this_machine_lacks_is_one_line_and_exit_2_before_any_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MPS exists only on Apple machines; CI and these machines are Linux.
    code, _, err = run_cli(capsys, "search", "--no-progress", "--set", "train.accelerator=mps")
    assert code == 2
    assert err.startswith("codenas: error: train.accelerator='mps'") and err.count("\n") == 1
    assert not (workdir / "optuna.db").exists() and not (workdir / "mlflow.db").exists()
