"""Optuna (and optuna-dashboard) see the objectives by name, not as "0", "1", "2"."""

from __future__ import annotations

from pathlib import Path

import optuna

from codenas.search.storage import CONFIG_ATTR, _stored_form, make_storage, open_study
from tests.conftest import make_config


def test_a_new_study_names_its_objectives(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    _, created = open_study(config, make_storage(config.study.storage))
    assert created
    loaded = optuna.load_study(study_name="tiny", storage=config.study.storage)
    assert loaded.metric_names == ["val_accuracy", "capacity_usage", "params"]


def test_a_continued_study_without_names_gets_them(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    # A study as codenas 0.1 created it: its config recorded, its objectives unnamed.
    old = optuna.create_study(
        study_name="tiny", storage=config.study.storage, directions=config.directions
    )
    old.set_user_attr(CONFIG_ATTR, _stored_form(config))
    assert old.metric_names is None
    _, created = open_study(config, make_storage(config.study.storage))
    assert not created
    loaded = optuna.load_study(study_name="tiny", storage=config.study.storage)
    assert loaded.metric_names == ["val_accuracy", "capacity_usage", "params"]
