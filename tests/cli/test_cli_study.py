"""Commands on an existing study take it the way ``codenas search`` takes a config."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import codenas
from codenas.cli import main

# Small, fast versions of two packaged configs, run in one directory with the default stores
# (./optuna.db): what a user has after `codenas search` and `codenas search factors-mlp`.
_SMALL = [
    "train.epochs=1",
    "train.threads=1",
    "metrics.samples=200",
    "tracking.enabled=false",
    "tracking.report=false",
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_studies(workdir: Path) -> Path:
    for name, extra in (
        (None, ["space.width={min: 4, max: 16}"]),
        ("factors-mlp", ["space.width={min: 4, max: 16}", "data.n_samples=600"]),
    ):
        config = codenas.load_config(name, [*_SMALL, *extra])
        codenas.search.run(config, n_trials=1, progress=False)
    return workdir


@pytest.mark.slow
def test_commands_name_the_study_like_search_names_a_config(
    two_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No name, two studies: the default config's study, and a note naming the other.
    code, out, err = _run(capsys, "front")
    assert code == 0, err
    assert out.startswith("Pareto front of study 'digits-mlp'")
    assert "also here: factors-mlp" in err
    # A packaged config's name, a config file, or --study.
    code, out, err = _run(capsys, "front", "factors-mlp")
    assert code == 0, err
    assert out.startswith("Pareto front of study 'factors-mlp'") and err == ""
    (two_studies / "mine.yaml").write_text(
        "study: {name: factors-mlp, storage: sqlite:///optuna.db}\ndata: {name: factors}\n"
    )
    code, out, err = _run(capsys, "front", "mine.yaml", "--format", "csv")
    assert code == 0, err
    assert out.startswith("trial,state,val_accuracy,dci_forest.disentanglement,params")
    code, out, _ = _run(capsys, "front", "--study", "factors-mlp")
    assert out.startswith("Pareto front of study 'factors-mlp'")
    code, out, err = _run(capsys, "pick", "factors-mlp", "--no-tag")
    assert code == 0, err
    assert out.startswith("study 'factors-mlp'")
    assert "codenas rightsize factors-mlp --trial 0" in out
    # A name that is neither a config nor a study here: the usual suggestion.
    code, _, err = _run(capsys, "front", "factors-mpl")
    assert code == 2 and "Did you mean 'factors-mlp'" in err
    code, _, err = _run(capsys, "front", "missing.yaml")
    assert code == 2 and err == "codenas: error: missing.yaml: no such config file\n"


def test_several_studies_without_the_default_one_must_be_named(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{workdir / 'other.db'}"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=storage)
    code, _, err = _run(capsys, "front", "--storage", storage)
    assert code == 2
    assert err == f"codenas: error: {storage}: 2 studies here (a, b); name one: codenas front a\n"
