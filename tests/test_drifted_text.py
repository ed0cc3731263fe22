"""What codenas prints says what it means (texts a new user read wrongly)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import codenas
from codenas.errors import ConfigError
from codenas.search import pareto
from codenas.search.progress import ProgressBar


def test_the_metric_typo_error_lists_only_metrics_an_objective_may_use() -> None:
    with pytest.raises(ConfigError) as err:
        codenas.load_config(None, ["objectives=[efective_rank]"])
    message = str(err.value)
    assert "Did you mean 'effective_rank'?" in message
    available = message.split("Available: ")[1].split(" (")[0].split(", ")
    assert "val_accuracy" in available and "dci.disentanglement" in available
    assert not [n for n in available if n.startswith("test_")]
    assert message.endswith("(test_* values are logged for every trial, never optimised)")


def _study(tmp_path: Path) -> optuna.Study:
    study = optuna.create_study(
        directions=["maximize", "minimize"], storage=f"sqlite:///{tmp_path / 's.db'}"
    )
    study.set_user_attr("codenas.objectives", ["val_accuracy", "params"])
    for acc, params in ((0.97, 62070.0), (0.63, 815.0), (0.90, 4000.0)):
        study.add_trial(
            optuna.create_trial(
                values=[acc, params], user_attrs={"spec": {"space": "mlp", "widths": [4]}}
            )
        )
    return study


def test_the_progress_bar_labels_best_values_as_best_of_each(tmp_path: Path) -> None:
    study = _study(tmp_path)
    bar = ProgressBar(3, ["val_accuracy", "params"], ["maximize", "minimize"], disable=True)
    # 0.97 and 815 come from two different trials: the bar must not read as one trial.
    assert bar.postfix(study) == "front=3, best of each: val_accuracy=0.97, params=815"
    bar.close()


def test_the_csv_front_writes_counts_as_integers(tmp_path: Path) -> None:
    study = _study(tmp_path)
    rows = pareto.front_rows(study)
    lines = pareto.to_csv(rows, ["val_accuracy", "params"]).splitlines()
    assert lines[1].startswith("0,COMPLETE,0.97,62070,")
    assert lines[2].startswith("1,COMPLETE,0.63,815,")


@pytest.mark.slow
def test_queued_trials_are_not_counted_as_trials_so_far(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codenas.search.storage import make_storage, open_study
    from tests.conftest import make_config

    config = make_config(tmp_path, ["tracking.enabled=false"])
    study, _ = open_study(config, make_storage(config.study.storage))
    for width in (8, 16):  # what `--seed-from` queues before the search starts
        study.enqueue_trial({"depth": 1, "width": width, "shape": "constant"})
    codenas.search.run(config, n_trials=2, progress=True)
    err = capsys.readouterr().err
    assert "study 'tiny': 0 trials so far, 2 more (2 queued, run first);" in err
    assert len(optuna.load_study(study_name="tiny", storage=config.study.storage).trials) == 2


def test_the_version_is_the_one_the_changelog_is_heading_for() -> None:
    """`codenas --version` is what a bug report quotes: the package's version, and the release
    the CHANGELOG's unreleased section is written for."""
    import re

    import tomllib

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert codenas.__version__ == project["version"]
    heading = re.search(r"^## Unreleased \((\S+)\)", (root / "CHANGELOG.md").read_text(), re.M)
    if heading is not None:  # between releases: a dev version of the release to come
        assert codenas.__version__ == f"{heading[1]}.dev0"
