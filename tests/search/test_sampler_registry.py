"""Samplers are a registry like spaces, datasets and metrics: a config names any registered
one, and its options are checked before a study exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

import codenas
from codenas.errors import ConfigError
from codenas.registry import SAMPLERS
from codenas.search.samplers import get_sampler, register_sampler

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


class QuasiRandom:
    """A user's plug-in: Optuna's QMC sampler under the name ``qmc``."""

    def check(self, options, prefix="study.sampler_options."):
        unknown = set(options) - {"scramble"}
        if unknown:
            raise ConfigError(f"{prefix}{sorted(unknown)[0]}: not an option of qmc")

    def make(self, seed, options, **_context):
        return optuna.samplers.QMCSampler(seed=seed, **options)


@pytest.fixture
def qmc() -> Iterator[None]:
    register_sampler("qmc", QuasiRandom())
    try:
        yield
    finally:
        SAMPLERS._entries.pop("qmc")


def config(tmp_path: Path, *overrides: str):
    return codenas.load_config(
        None,
        [
            f"study.storage=sqlite:///{tmp_path / 'optuna.db'}",
            "study.trials=2",
            "train.epochs=1",
            "tracking.enabled=false",
            "space.depth={min: 1, max: 1}",
            *overrides,
        ],
    )


def test_a_registered_sampler_drives_a_search(tmp_path: Path, qmc: None) -> None:
    study = codenas.search.run(config(tmp_path, "study.sampler=qmc"))
    # Behind the view of the trials built from their parameters (samplers/modelled.py).
    assert isinstance(study.sampler.base, optuna.samplers.QMCSampler)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]


def test_bad_sampler_options_are_refused_before_a_study_exists(tmp_path: Path, qmc: None) -> None:
    with pytest.raises(ConfigError, match=r"study.sampler_options.warp: not an option of qmc"):
        codenas.search.run(config(tmp_path, "study.sampler=qmc", "study.sampler_options={warp: 1}"))
    with pytest.raises(ConfigError, match=r"study.sampler_options: TPESampler: .*n_startup"):
        codenas.search.run(config(tmp_path, "study.sampler_options={n_startup: 3}"))
    assert not (tmp_path / "optuna.db").exists()


def test_the_builtin_samplers_are_registered_by_name() -> None:
    assert {"tpe", "nsga2", "random", "gp", "code"} <= set(SAMPLERS)
    with pytest.raises(ConfigError, match="unknown sampler 'qmc'"):
        codenas.load_config(None, ["study.sampler=qmc"])
    assert get_sampler("tpe").make(0, {"n_startup_trials": 3})._n_startup_trials == 3
