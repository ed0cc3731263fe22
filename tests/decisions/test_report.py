"""Neural-code reports: every figure is a real, readable image; runs and fronts get theirs."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pytest

from codenas.cli import main
from codenas.decisions.report import draw, report_front, report_run, write_report
from codenas.errors import CodenasError
from codenas.evaluation.neural_code import NeuralCode
from codenas.spaces import MLPSpec
from tests.decisions._picking import searched_study, trained_run

ALL_FIGURES = {
    "capacity",
    "cka",
    "factor_mi",
    "dci_importance",
    "selectivity",
    "selective_units",
}


def synthetic_code(labels: bool = True, factors: bool = True) -> NeuralCode:
    """Two ReLU layers reading 3 factors (the class is factor 0), some units dead."""
    rng = np.random.default_rng(0)
    n = 400
    f = rng.integers(0, 4, size=(n, 3))
    z = f + 0.3 * rng.normal(size=(n, 3))
    w1 = rng.normal(size=(3, 12))
    layer0 = np.maximum(z @ w1, 0.0)
    layer0[:, :3] = 0.0  # dead units
    layer1 = np.maximum(layer0 @ rng.normal(size=(12, 6)) + 0.1 * rng.normal(size=(n, 6)), 0.0)
    return NeuralCode(
        spec=MLPSpec(input_shape=(5,), n_outputs=4, widths=(12, 6)),
        layers=[layer0, layer1],
        labels=f[:, 0].copy() if labels else None,
        factors=f if factors else None,
        factor_names=("size", "colour", "angle"),
        metrics={"val_accuracy": 0.75, "params": 190.0},
        title="a synthetic network",
    )


def check_image(path: Path) -> None:
    """A real PNG: decent size on disk and in pixels, and not blank."""
    import matplotlib.image

    assert path.stat().st_size > 10_000, path
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    assert height >= 300 and width >= 450, (path, pixels.shape)
    gray = pixels[..., :3].mean(axis=2)
    assert gray.std() > 0.05, f"{path} looks blank"
    assert (gray < 0.5).mean() > 0.01, f"{path} has almost no dark pixels (text, axes)"


def test_every_figure_is_written_titled_labelled_and_inlined(tmp_path: Path) -> None:
    code = synthetic_code()
    report = write_report(code, tmp_path / "r", notes=["a note"])
    assert {f.name for f in report.figures} == ALL_FIGURES
    for f in report.figures:
        check_image(f.path)
    page = report.html.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(ALL_FIGURES)
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='http" not in page and "<link" not in page  # self-contained
    for f in report.figures:
        assert f.title.split("\n")[0].replace("'", "&#x27;") in page
        assert f.guide.split(" ")[0] in page
        # The guide is drawn in the PNG; the page does not repeat it as visible text.
        assert page.count(html.escape(f.guide, quote=True)) == 1
        assert f"alt='{html.escape(f.guide, quote=True)}'" in page
    assert "<figcaption" not in page
    assert "a note" in page and "val_accuracy" in page


def test_figures_have_titles_axis_labels_and_a_reading_guide() -> None:
    for name, fig, title, guide in draw(synthetic_code()):
        assert fig._suptitle is not None
        assert fig._suptitle.get_text().replace("\n", " ") == title.replace("\n", " ")
        assert any(guide.split()[0] in t.get_text() for t in fig.texts), name
        main_ax = fig.axes[0]
        assert main_ax.get_xlabel() and main_ax.get_ylabel(), name
        assert guide.endswith("."), name


def test_only_the_figures_the_data_supports() -> None:
    names = {n for n, *_ in draw(synthetic_code(labels=False, factors=False))}
    assert names == {"capacity", "cka"}
    names = {n for n, *_ in draw(synthetic_code(labels=True, factors=False))}
    assert names == {"capacity", "cka", "selectivity", "selective_units"}
    one_layer = synthetic_code(labels=False, factors=False)
    one_layer.layers = one_layer.layers[:1]
    assert {n for n, *_ in draw(one_layer)} == {"capacity"}  # no other layer to compare with


def test_mi_figure_sorts_units_as_mig_reads_them() -> None:
    from codenas.decisions.report.figures import _unit_order

    score = np.array([[0.1, 0.9], [0.8, 0.1], [0.0, 0.0], [0.5, 0.2], [0.2, 0.3]])
    # Factor 0 first (units 1, 3 by information), then factor 1 (0, 4), silent unit 2 last.
    assert _unit_order(score).tolist() == [1, 3, 0, 4, 2]


@pytest.mark.slow
def test_report_of_a_trial_run_is_logged_to_it(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    searched = searched_study(tmp_path_factory.getbasetemp())
    trial = searched.study().best_trials[0]
    run_id = trial.user_attrs["mlflow_run_id"]
    out = searched.dir / "trial-report"
    code = main(["report", run_id, "--out", str(out), "--tracking-uri", searched.tracking])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"neural-code report of trial {trial.number} of study 'picking'" in printed
    names = {p.stem for p in out.glob("*.png")}
    assert names == {"capacity", "cka", "selectivity", "selective_units"}  # digits: labels only
    for png in out.glob("*.png"):
        check_image(png)
    assert "note:" not in printed  # the re-trained network reproduces the trial
    logged = {a.path for a in MlflowClient(searched.tracking).list_artifacts(run_id, "report")}
    assert logged == {f"report/{n}.png" for n in names} | {"report/report.html"}
    # The 12 characters `codenas front` shows are enough (a unique prefix of the run id):
    code = main(["report", run_id[:12], "--out", str(out), "--tracking-uri", searched.tracking])
    printed = capsys.readouterr().out
    assert code == 0 and f"trial {trial.number} of study 'picking' already has a" in printed
    code = main(["report", "0" * 31 + "g", "--tracking-uri", searched.tracking])
    assert code == 2 and "no MLflow run" in capsys.readouterr().err


@pytest.mark.slow
def test_report_of_a_trained_run_loads_its_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = trained_run(tmp_path_factory.getbasetemp())
    trained, config = run["trained"], run["config"]
    out = run["searched"].dir / "train-report"
    report = report_run(trained.run_id, tracking_uri=config.tracking.uri, out_dir=out)
    assert {f.name for f in report.figures} == ALL_FIGURES  # factors data: factors and labels
    for f in report.figures:
        check_image(f.path)
    assert report.title == "mlp trained on factors"
    assert report.run_id == trained.run_id


@pytest.mark.slow
def test_report_front_writes_one_report_per_pareto_member(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    searched = searched_study(tmp_path_factory.getbasetemp())
    study = searched.study()
    reports = report_front(study, searched.config, tmp_path, log=False)
    assert [r.title for r in reports] == [
        f"trial {t.number} of study 'picking'"
        for t in sorted(study.best_trials, key=lambda t: t.number)
    ]
    for r in reports:
        assert r.html.exists() and r.out_dir.parent == tmp_path
        assert r.run_id is None
    assert report_front(study, searched.config, tmp_path, log=False) == []  # already there


@pytest.mark.slow
def test_report_refuses_a_run_that_is_not_codenas(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from mlflow.tracking import MlflowClient

    searched = searched_study(tmp_path_factory.getbasetemp())
    client = MlflowClient(searched.tracking)
    experiment = client.create_experiment("not-codenas")
    other = client.create_run(experiment).info.run_id
    with pytest.raises(CodenasError, match="neither a trial of a codenas search nor"):
        report_run(other, tracking_uri=searched.tracking, out_dir=searched.dir / "x")
    with pytest.raises(CodenasError, match="no MLflow run 'nope'"):
        report_run("nope", tracking_uri=searched.tracking)


def test_a_trial_the_schedule_stopped_is_re_trained_as_far_as_it_went(tmp_path: Path) -> None:
    """Its recorded values are from the rung it stopped at: the report re-trains it for those
    epochs (not train.epochs), so the network it draws is the one the trial measured."""
    import optuna

    import codenas
    from codenas.decisions.report import report_run, stopped_epoch
    from tests.conftest import make_config

    config = make_config(
        tmp_path,
        [
            "train.epochs=3",
            "study.trials=6",
            "search.schedule={min_epochs: 1, eta: 3, min_trials: 1}",
            "objectives=[{metric: val_accuracy}, {metric: params}]",
        ],
    )
    study = codenas.search.run(config)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and complete
    assert stopped_epoch(config, pruned[0].user_attrs) == 1
    assert stopped_epoch(config, complete[0].user_attrs) is None
    assert stopped_epoch(config, None, {"codenas.rung": "0"}) == 1
    assert stopped_epoch(config, None, {"codenas.rung": "1"}) is None
    assert stopped_epoch(config, None, None) is None

    by_run = report_run(
        pruned[0].user_attrs["mlflow_run_id"],
        tracking_uri=config.tracking.uri,
        out_dir=tmp_path / "b",
        log=False,
    )
    # The re-training reproduces the values recorded at epoch 1 (no note says otherwise).
    assert not [n for n in by_run.notes if "does not reproduce" in n], by_run.notes
    assert "the 1 epoch(s) it trained before the schedule stopped it" in by_run.html.read_text()
