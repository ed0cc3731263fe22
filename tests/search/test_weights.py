"""A trial keeps its weights: stored per trial, loaded back exactly, pruned to the front."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
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


def test_two_workers_pruning_the_same_front_remove_each_file_once(tmp_path: Path) -> None:
    # Workers share one store directory; each prunes after its own trials. A worker whose view
    # of the trials is older than the files (another removed them) must shrug, not fail the
    # trial: the removal itself is the check, so there is no window between a check and it.
    study = optuna.create_study(directions=["maximize", "minimize"])
    first, second = WeightStore(tmp_path / "w"), WeightStore(tmp_path / "w")
    for values in [(0.9, 10), (0.8, 20), (0.7, 30)]:
        trial = study.ask()
        first.save(trial, build_model(MLPSpec(input_shape=(4,), n_outputs=2, widths=(3,))))
        study.tell(trial, values)
    trials = study.get_trials(deepcopy=False)
    assert first.prune(trials, keep={0}) == 2
    assert second.prune(trials, keep={0}) == 0
    assert second.load(trials[0].user_attrs) is not None


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
    assert weights_dir("x", None, "sqlite:////data/o.db") == Path("/data/weights/x")


@pytest.mark.slow
def test_reports_rightsize_and_edits_load_the_kept_weights_instead_of_re_training(
    tmp_path: Path,
) -> None:
    """The kept network is the one the trial trained (a re-training with its seed gives the
    same weights on this device), and each later step says it loaded it."""
    import codenas
    from codenas.decisions.report import report_trial
    from codenas.decisions.rightsize import propose
    from codenas.decisions.source import from_trial
    from codenas.evaluation.neural_code import retrain, trial_seed_of
    from codenas.search.weights import load_trial_network
    from codenas.spaces import spec_from_dict
    from tests.conftest import tiny_overrides

    config = codenas.load_config(
        None, [*tiny_overrides(tmp_path), "space.depth={min: 2, max: 2}", "study.trials=4"]
    )
    study = codenas.search.run(config)
    front = sorted(t.number for t in study.best_trials)
    stored = sorted(t.number for t in study.trials if load_trial_network(t.user_attrs) is not None)
    assert stored == front  # kept for the front only (bounded disk)
    trial = study.trials[front[0]]
    kept = load_trial_network(trial.user_attrs)
    again = retrain(
        config,
        spec_from_dict(trial.user_attrs["spec"]),
        seed=trial_seed_of(config, trial.number),
        title="t",
        recorded=trial.user_attrs["metrics"],
    ).model
    for key, value in again.state_dict().items():
        assert torch.equal(kept.state_dict()[key].cpu(), value.cpu()), key
    report = report_trial(study, trial.number, config, tmp_path / "r", log=False)
    assert "weights the search kept" in (tmp_path / "r" / "report.html").read_text()
    assert report.html.exists() and not report.notes
    proposal = propose(study, trial.number, config=config)  # CKA: needs the network
    assert proposal.source.startswith("the weights the search kept")
    recorded = trial.user_attrs["metrics"]
    for k, plan in enumerate(proposal.plan):
        assert plan.usage.effective_rank == pytest.approx(recorded[f"effective_rank/layer_{k}"])
    source = from_trial(config.study.name, config.study.storage, trial.number)
    assert source.title.endswith("(its kept weights)")
    for key, value in source.model().state_dict().items():
        assert torch.equal(kept.state_dict()[key], value)
