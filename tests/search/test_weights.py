"""A trial keeps its weights: stored per trial, loaded back exactly, pruned to the front."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch

from codenas.search.weights import WEIGHTS_ATTR, WeightStore, weights_dir
from codenas.spaces import MLPSpec, build_model


def test_weights_are_kept_for_the_front_only_and_load_back_exactly(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'o.db'}", directions=["maximize", "minimize"]
    )
    store = WeightStore(tmp_path / "w")
    nets = {}
    # (accuracy, size): trials 0 and 2 are the front, 1 is dominated by 0, 3 by 2.
    for number, values in enumerate([(0.9, 10), (0.8, 20), (0.95, 30), (0.94, 40)]):
        trial = study.ask()
        torch.manual_seed(number)
        nets[number] = build_model(MLPSpec(input_shape=(4,), n_outputs=2, widths=(3,)))
        store.save(trial, nets[number])
        study.tell(trial, values)
    running = study.ask()  # a trial still running keeps its weights whatever its future
    store.save(running, nets[0])
    assert len(list((tmp_path / "w").iterdir())) == 5
    assert store.prune_to_front(study) == 2
    trials = study.get_trials(deepcopy=False)
    assert store.load(trials[1].user_attrs) is None and store.load(trials[3].user_attrs) is None
    for number in (0, 2):
        state = store.load(trials[number].user_attrs)
        assert state is not None
        for key, value in nets[number].state_dict().items():
            assert torch.equal(state[key], value)
    assert store.load(running.study.get_trials(deepcopy=False)[4].user_attrs) is not None
    assert store.disk_bytes() > 0
    store.reset()
    assert store.disk_bytes() == 0 and store.load(trials[0].user_attrs) is None


def test_the_inheritance_store_keeps_every_trial(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    store = WeightStore(tmp_path / "w", keep_all=True)
    for values in [(0.9, 10), (0.8, 20)]:
        trial = study.ask()
        store.save(trial, build_model(MLPSpec(input_shape=(4,), n_outputs=2, widths=(3,))))
        study.tell(trial, values)
    assert store.prune_to_front(study) == 0
    assert all(WEIGHTS_ATTR in t.user_attrs for t in study.trials)
    assert weights_dir("a b/c") == Path("weights") / "a_b_c"
    assert weights_dir("x", "/shared/w") == Path("/shared/w")
