"""Shared, session-cached studies for the pick / rightsize / transfer / report tests.

One tiny search (digits MLPs, 1 epoch, two or three hidden layers so that CKA matters) runs once
per test session in the session's temporary folder; the slow tests of several modules read it.
Tests that add trials to it (rightsize --run) must not rely on its trial count.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import optuna

import codenas
from codenas.config import Config
from codenas.spaces import Spec
from tests.conftest import tiny_overrides


@dataclasses.dataclass
class Searched:
    dir: Path
    config: Config
    storage: str
    tracking: str

    def study(self) -> optuna.Study:
        from codenas.search.storage import load_study

        return load_study(self.config.study.name, self.storage)


def searched_config(base: Path, extra: tuple[str, ...] = ()) -> Config:
    return codenas.load_config(
        None,
        [
            *tiny_overrides(base, "picking"),
            "study.trials=3",
            "space.depth={min: 2, max: 3}",
            "space.width={min: 8, max: 32, log: true}",
            "space.activation=relu",
            # These tests read trials the way a study without kept weights is read (re-trained
            # from spec and seed); the kept weights have their own tests (test_weights.py).
            "study.keep_weights=false",
            *extra,
        ],
    )


@functools.cache
def searched_study(base: Path) -> Searched:
    """The session's tiny digits search (run on first use)."""
    folder = base / "picking-study"
    folder.mkdir(exist_ok=True)
    config = searched_config(folder)
    codenas.search.run(config)
    return Searched(folder, config, config.study.storage, config.tracking.uri)


@functools.cache
def trained_run(base: Path) -> dict[str, Any]:
    """One `codenas train` run: a two-layer MLP trained on the factors data (labels and factors
    known), logged to the session study's MLflow database."""
    from codenas.decisions.transfer import train, train_config
    from codenas.spaces import MLPSpec

    searched = searched_study(base)
    spec: Spec = MLPSpec(input_shape=(1, 8, 8), n_outputs=10, widths=(16, 8), activation="relu")
    config = train_config(
        None,
        data="factors",
        epochs=2,
        overrides=["train.threads=1", "data.n_samples=600", "metrics.samples=200"],
        tracking_uri=searched.tracking,
        experiment="picking-train",
    )
    trained = train(spec, config, seed=0, source={"study": "picking", "trial": 0})
    return {"trained": trained, "config": config, "searched": searched}
