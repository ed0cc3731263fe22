"""A sampler models only the trials built from their recorded parameters: a trial whose layer
sizes a user attribute fixed (a code-sampler move, a right-sized or seeded architecture)
records parameters it was not built with, and must not pull a model of parameters -> values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

import codenas
from codenas.data import load_dataset
from codenas.search.samplers.modelled import ModelledSampler, built_from_params
from codenas.search.screen import ScreenedSampler
from codenas.search.study import make_sampler
from codenas.spaces import get_space

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

X = optuna.distributions.FloatDistribution(0.0, 1.0)


def trial(x: float, value: float, **user_attrs: object) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        params={"x": x}, distributions={"x": X}, value=value, user_attrs=user_attrs
    )


def study_with_fixed_width_trials(path: Path) -> optuna.Study:
    """Trials built from ``x`` cover [0, 1] and are best near 0.9; trials whose widths an
    attribute fixed claim far better values at x near 0.1 (what their recorded parameters
    never produced)."""
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="s")
    for x in np.linspace(0.0, 1.0, 21):
        study.add_trial(trial(float(x), abs(float(x) - 0.9)))
    for i, x in enumerate(np.linspace(0.05, 0.15, 12)):
        key = "widths" if i % 2 else "channels"
        study.add_trial(trial(float(x), -1.0, **{key: [8, 4]}))
    return study


def draws(study: optuna.Study, sampler: optuna.samplers.BaseSampler, n: int = 12) -> np.ndarray:
    study.sampler = sampler
    out = []
    for _ in range(n):
        t = study.ask({"x": X})
        out.append(t.params["x"])
        study.tell(t, state=optuna.trial.TrialState.FAIL)  # not modelled afterwards either
    return np.array(out)


def test_tpe_behind_the_view_ignores_trials_whose_widths_were_fixed(tmp_path: Path) -> None:
    plain = draws(
        study_with_fixed_width_trials(tmp_path / "a.db"),
        optuna.samplers.TPESampler(seed=0, n_startup_trials=0),
    )
    viewed = draws(
        study_with_fixed_width_trials(tmp_path / "b.db"),
        ModelledSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=0)),
    )
    # Plain TPE follows the fixed-width trials' values to x near 0.1; behind the view it
    # models the 21 trials built from x, best near 0.9.
    assert np.median(plain) < 0.3
    assert np.median(viewed) > 0.7


def test_built_from_params_reads_every_space_layer_field() -> None:
    assert built_from_params(trial(0.5, 0.0))
    assert built_from_params(trial(0.5, 0.0, widths=None, note="a user's own attribute"))
    assert not built_from_params(trial(0.5, 0.0, widths=[8]))
    assert not built_from_params(trial(0.5, 0.0, channels=[4, 8]))


def test_a_search_samples_behind_the_view(tmp_path: Path) -> None:
    config = codenas.load_config(None, [f"study.storage=sqlite:///{tmp_path / 'o.db'}"])
    sampler = make_sampler(config, 0)
    assert isinstance(sampler, ModelledSampler)
    assert isinstance(sampler.base, optuna.samplers.TPESampler)
    screened = codenas.load_config(
        None,
        [f"study.storage=sqlite:///{tmp_path / 'o.db'}", "search.screen={candidates: 4}"],
    )
    space = get_space(screened.space.name)(screened.space)
    outer = make_sampler(screened, 0, data=load_dataset(screened.data), space=space)
    assert isinstance(outer, ScreenedSampler)
    assert isinstance(outer.base, ModelledSampler)
