"""Training a picked spec on another task, reloading it through MLflow, and seeding searches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from codenas.cli import main
from codenas.decisions.seeding import enqueue_seeds, seeds_from
from codenas.decisions.transfer import (
    dump_spec_file,
    load_spec_file,
    train_config,
    write_spec_file,
)
from codenas.errors import ConfigError
from codenas.search.storage import CONFIG_ATTR, _stored_form
from codenas.spaces import MLPSpec
from codenas.spaces.profiles import width_profile
from tests.conftest import make_config
from tests.decisions._picking import searched_study, trained_run

SPEC = MLPSpec(input_shape=(1, 8, 8), n_outputs=10, widths=(24, 12), activation="gelu")

# ----------------------------------------------------------------------------- spec files


def test_spec_file_round_trip_with_its_config(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    path = write_spec_file(
        tmp_path / "a" / "spec.yaml",
        SPEC,
        source={"study": "s", "trial": 3},
        config=config,
        header=["a comment"],
    )
    text = path.read_text()
    assert text.startswith("# a comment\nspec:\n  space: mlp\n")
    assert "widths: [24, 12]" in text
    loaded = load_spec_file(path)
    assert loaded.spec == SPEC
    assert loaded.source == {"study": "s", "trial": 3}
    assert loaded.sections["train"]["epochs"] == 1
    assert loaded.sections["metrics"]["samples"] == 200


def test_a_bare_spec_or_json_file_loads(tmp_path: Path) -> None:
    (tmp_path / "bare.json").write_text(SPEC.to_json())
    assert load_spec_file(tmp_path / "bare.json").spec == SPEC
    (tmp_path / "bad.yaml").write_text("spec: {space: mlp, widths: [3]}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid 'mlp' spec: missing keys"):
        load_spec_file(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text(dump_spec_file(SPEC) + "trian: {}\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) trian"):
        load_spec_file(tmp_path / "typo.yaml")
    with pytest.raises(ConfigError, match="cannot read the spec"):
        load_spec_file(tmp_path / "missing.yaml")


def test_train_config_takes_data_from_a_name_a_config_or_the_spec_file(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["train.max_time=5", "train.epochs=3"])
    write_spec_file(tmp_path / "s.yaml", SPEC, config=config)
    spec_file = load_spec_file(tmp_path / "s.yaml")
    same = train_config(spec_file)
    assert same.data.name == "digits"
    assert same.train.epochs == 3 and same.train.max_time is None  # full: epochs only
    assert same.experiment == "codenas-train"
    wine = train_config(spec_file, data="wine", epochs=7, overrides=["train.lr=0.01"])
    assert (wine.data.name, wine.train.epochs, wine.train.lr) == ("wine", 7, 0.01)
    factors = train_config(spec_file, data="factors-mlp", experiment="x")
    assert factors.data.name == "factors" and factors.train.epochs == 10
    assert factors.experiment == "x"
    user = train_config(None, data="npz", overrides=["data.path=my.npz"])
    assert user.data.name == "npz"
    with pytest.raises(ConfigError, match=r"--data 'wien'.*Did you mean 'wine'"):
        train_config(spec_file, data="wien")
    with pytest.raises(ConfigError, match="--epochs"):
        train_config(spec_file, epochs=0)


# ----------------------------------------------------------------------------- seeding


def source_study(tmp_path: Path, trials: list[dict], extra: tuple[str, ...] = ()) -> optuna.Study:
    """A real study that looks like a finished codenas search over the mlp space."""
    config = make_config(tmp_path, ["space.width={min: 8, max: 128, log: true}", *extra])
    study = optuna.create_study(directions=config.directions, study_name="source")
    study.set_user_attr(CONFIG_ATTR, _stored_form(config))
    study.set_user_attr("codenas.objectives", config.objective_names)
    dists = {
        "depth": IntDistribution(1, 4),
        "width": IntDistribution(8, 128, log=True),
        "shape": CategoricalDistribution(["constant", "funnel"]),
        "activation": CategoricalDistribution(["relu", "gelu", "tanh"]),
        "dropout": FloatDistribution(0.0, 0.3),
    }
    for i, params in enumerate(trials):
        attrs = params.pop("_attrs", {})
        study.add_trial(
            optuna.trial.create_trial(
                values=[0.9 - 0.1 * i, 0.5, 1000.0 / (i + 1)],
                params=params,
                distributions={k: dists[k] for k in params},
                user_attrs={"spec": SPEC.to_dict(), "metrics": {}, **attrs},
            )
        )
    return study


def test_seeds_are_clipped_into_the_new_space_or_left_out(tmp_path: Path) -> None:
    source = source_study(
        tmp_path,
        [
            {"depth": 4, "width": 128, "shape": "funnel", "activation": "relu", "dropout": 0.25},
            {"depth": 2, "width": 16, "shape": "constant", "activation": "tanh", "dropout": 0.0},
            {
                "depth": 1,
                "width": 64,
                "shape": "constant",
                "activation": "gelu",
                "dropout": 0.1,
                "_attrs": {"widths": [40]},
            },
        ],
    )
    new = make_config(
        tmp_path,
        [
            "data.name=wine",
            "space.depth={min: 1, max: 3}",
            "space.width={min: 8, max: 32}",
            "space.activation=[relu, gelu]",
            "space.dropout={min: 0.0, max: 0.2}",
        ],
    )
    seeds = seeds_from(source, new)
    by_trial = {s.trial: s for s in seeds}
    assert set(by_trial) == {0, 2}  # trial 1 uses tanh, which the new space does not offer
    assert by_trial[0].params == {
        "depth": 3,
        "width": 32,
        "shape": "funnel",
        "activation": "relu",
        "dropout": 0.2,
    }
    assert "depth 4 -> 3 (space.depth is [1, 3])" in by_trial[0].notes
    notes = [n for s in seeds for n in s.notes]
    assert any("left out trial 1: activation 'tanh' is not offered" in n for n in notes)
    # The right-sized trial keeps its exact widths, clipped to the new widest width.
    assert by_trial[2].user_attrs == {"widths": [32]}
    # --top counts architectures that fit: the knee (trial 1) is skipped, the next one taken.
    assert [s.trial for s in seeds_from(source, new, top=1)] == [seeds[0].trial]

    study = optuna.create_study(directions=new.directions)
    assert enqueue_seeds(study, seeds) == [0, 1]
    assert enqueue_seeds(study, seeds) == []  # queued already
    trial = study.ask()
    assert trial.user_attrs["codenas.seeded_from"] == seeds[0].trial


def test_seeding_refuses_another_space(tmp_path: Path) -> None:
    source = source_study(
        tmp_path,
        [{"depth": 2, "width": 16, "shape": "constant", "activation": "relu", "dropout": 0.0}],
    )
    cnn = make_config(tmp_path, path="shapes-cnn")
    with pytest.raises(ConfigError, match=r"'mlp' space, but the new search samples the 'cnn'"):
        seeds_from(source, cnn)
    with pytest.raises(ConfigError, match="--top: must be at least 1"):
        seeds_from(source, make_config(tmp_path), top=0)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_train_logs_a_model_that_reloads_with_the_same_outputs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    run = trained_run(tmp_path_factory.getbasetemp())
    trained, config = run["trained"], run["config"]
    # The digits spec was adapted to the factors table: 16 features, 5 classes of f0.
    assert trained.adapted_from == MLPSpec(
        input_shape=(1, 8, 8), n_outputs=10, widths=(16, 8), activation="relu"
    )
    assert trained.spec.input_shape == (16,) and trained.spec.n_outputs == 5
    assert trained.spec.widths == (16, 8)

    mlflow.set_tracking_uri(config.tracking.uri)
    loaded = mlflow.pytorch.load_model(f"runs:/{trained.run_id}/model")
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(37, 16)), dtype=torch.float32)
    trained.model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), trained.model(x).numpy(), atol=1e-5)

    client = MlflowClient(config.tracking.uri)
    logged = client.get_run(trained.run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.tags["codenas.role"] == "train"
    assert logged.data.tags["codenas.source_study"] == "picking"
    m = logged.data.metrics
    for name in (
        "test_accuracy",
        "val_accuracy",
        "params",
        "effective_rank",
        "effective_rank/layer_1",
        "dead_fraction",
        "layer_redundancy",
        "mig",
        "dci_forest.disentanglement",
        "class_selectivity.mean",
    ):
        assert name in m, name
    assert logged.data.params["spec.widths"] == "[16, 8]"
    # MLflow 3 stores the model as a LoggedModel linked to the run (not a run artifact).
    assert {a.path for a in client.list_artifacts(trained.run_id)} >= {"config.yaml", "spec.yaml"}
    assert trained.model_uri.startswith("models:/")


@pytest.mark.slow
def test_cli_train_on_another_dataset(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    searched = searched_study(tmp_path_factory.getbasetemp())
    spec_file = write_spec_file(searched.dir / "train-me.yaml", SPEC, config=searched.config)
    code = main(
        [
            "train",
            str(spec_file),
            "--data",
            "wine",
            "--epochs",
            "1",
            "--no-log",
            "--set",
            "train.threads=1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "training mlp 24-12 gelu on wine for 1 epoch(s)" in out
    assert "adapted: input (1, 8, 8) -> (13,), outputs 10 -> 3" in out
    assert "test_accuracy=" in out


@pytest.mark.slow
def test_search_seeded_from_a_digits_study_on_wine(
    tmp_path_factory: pytest.TempPathFactory, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import codenas

    tmp_path = workdir  # the search writes its reports under ./reports/: keep them here

    searched = searched_study(tmp_path_factory.getbasetemp())
    source = searched.study()
    front = source.best_trials
    storage = f"sqlite:///{tmp_path / 'wine.db'}"
    code = main(
        [
            "search",
            "--study",
            "wine-seeded",
            "--storage",
            storage,
            "--tracking-uri",
            searched.tracking,
            "--trials",
            "2",
            "--no-progress",
            "--seed-from",
            "picking",
            "--seed-storage",
            searched.storage,
            "--top",
            "2",
            "--set",
            "data.name=wine",
            "--set",
            "train.epochs=1",
            "--set",
            "train.threads=1",
            "--set",
            "space.depth={min: 2, max: 3}",
            "--set",
            "space.width={min: 8, max: 32, log: true}",
            "--set",
            "space.activation=relu",
            "--set",
            "metrics.samples=200",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "seeded study 'wine-seeded' with" in out
    study = codenas.search.load_study("wine-seeded", storage)
    seeded = [t for t in study.trials if "codenas.seeded_from" in t.user_attrs]
    assert 1 <= len(seeded) <= min(2, len(front))
    by_number = {t.number: t for t in source.trials}
    for t in seeded:
        origin = by_number[t.user_attrs["codenas.seeded_from"]]
        assert t.state.name == "COMPLETE"
        assert t.params == origin.params
        spec, before = t.user_attrs["spec"], origin.user_attrs["spec"]
        if origin.user_attrs.get("widths") is not None:
            # A right-sized source trial (another test may have queued one into the shared
            # study): its exact widths travel with it.
            assert spec["widths"] == before["widths"]
        else:
            # The same parameters, so the same profile; its floor (space.min_width, by default
            # the classes) follows wine's 3 classes, not digits' 10.
            p = origin.params
            floor = min(3, p["width"])
            profile = width_profile(p["shape"], p["depth"], p["width"], min_width=floor)
            assert spec["widths"] == profile
            assert max(spec["widths"]) == max(before["widths"])
        # Input and head adapted to wine.
        assert spec["input_shape"] == [13] and spec["n_outputs"] == 3
    assert [t.number for t in seeded] == list(range(len(seeded)))  # they ran first
