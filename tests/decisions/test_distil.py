"""Distillation: the student from the teacher's code, the KD loop, bad input, and one real
end-to-end erase + distil on a tiny study (SQLite Optuna + SQLite MLflow)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch

import codenas
from codenas.decisions.distil import (
    brief_trial_warning,
    check_cut,
    distil,
    kd_loss,
    most_used_units,
    propose_student,
    stands_for_by_depth,
    student_from_teacher,
    train_student,
)
from codenas.errors import CodenasError, ConfigError
from codenas.spaces import CNNSpec, MLPSpec, build_model, with_layer_sizes
from tests.decisions._nets import coordinate_data, source_of


def copy_net() -> tuple[MLPSpec, torch.nn.Module]:
    """Layer 0 has 8 units of which 2 carry the inputs' first two coordinates (rank 2); layer
    1 copies layer 0 (CKA 1)."""
    spec = MLPSpec(input_shape=(4,), n_outputs=4, widths=(8, 8), activation="relu")
    model = build_model(spec)
    with torch.no_grad():
        w0 = torch.zeros(8, 4)
        w0[0, 0] = w0[1, 1] = 1.0
        model.hidden_layers[0][0].weight.copy_(w0)
        model.hidden_layers[0][0].bias.fill_(10.0)
        model.hidden_layers[1][0].weight.copy_(torch.eye(8))
        model.hidden_layers[1][0].bias.zero_()
    return spec, model.eval()


def test_the_student_follows_the_teachers_code() -> None:
    spec, model = copy_net()
    # space.min_width=1: the rule alone (by default no layer is narrower than the 4 classes)
    config = codenas.load_config(
        None, ["tracking.enabled=false", "metrics.samples=800", "space.min_width=1"]
    )
    source = source_of(spec, model, coordinate_data(400), config)
    student, plan, stands_for = propose_student(source)
    assert plan[1].new_width is None  # a copy of layer 0: removed
    erank = plan[0].usage.effective_rank
    assert 1.9 < erank < 2.1  # two equal-variance directions
    assert student.widths == (math.ceil(1.5 * erank - 1e-9),) and stands_for == [0]
    # with the default floor, the same rule stops at the number of classes
    default, _, _ = propose_student(source_of(spec, model, coordinate_data(400)))
    assert default.widths == (max(math.ceil(1.5 * erank - 1e-9), spec.n_outputs),)


def test_stands_for_by_depth() -> None:
    assert stands_for_by_depth(1, 3) == [2]
    assert stands_for_by_depth(2, 4) == [0, 3]
    assert stands_for_by_depth(3, 3) == [0, 1, 2]


def test_distillation_pulls_the_student_towards_the_teacher() -> None:
    data = coordinate_data(800)
    config = codenas.load_config(None, ["train.epochs=3", "train.accelerator=cpu"])
    teacher = train_student(
        MLPSpec(input_shape=(4,), n_outputs=4, widths=(32,), activation="relu"),
        data,
        config.train,
        seed=0,
    ).model
    student = MLPSpec(input_shape=(4,), n_outputs=4, widths=(6,), activation="relu")

    def gap(model: torch.nn.Module) -> float:  # KL(teacher || model) on validation rows
        with torch.no_grad():
            t, s = teacher(data.val.x).log_softmax(1), model(data.val.x).log_softmax(1)
            return float((t.exp() * (t - s)).sum(1).mean())

    scratch = train_student(student, data, config.train, seed=1)
    kd = train_student(student, data, config.train, seed=1, teacher=teacher, alpha=1.0)
    hinted = train_student(
        student, data, config.train, seed=1, teacher=teacher, alpha=1.0, hint=1.0, stands_for=[0]
    )
    assert gap(kd.model) < gap(scratch.model)
    assert math.isfinite(gap(hinted.model)) and hinted.steps == kd.steps == scratch.steps


def test_the_kd_term_on_known_soft_targets() -> None:
    # Teacher logits (0, log 3): soft targets (1/4, 3/4) at T = 1 and
    # (1, sqrt 3) / (1 + sqrt 3) at T = 2; a student at (0, 0) predicts (1/2, 1/2).
    t = torch.tensor([[0.0, math.log(3.0)]])
    s = torch.zeros(1, 2)

    def kl_to_uniform(p: list[float]) -> float:
        return sum(q * math.log(2 * q) for q in p)

    assert float(kd_loss(s, t, 1.0)) == pytest.approx(kl_to_uniform([0.25, 0.75]), rel=1e-6)
    r = math.sqrt(3.0)
    expected = 4 * kl_to_uniform([1 / (1 + r), r / (1 + r)])  # T^2 = 4
    assert float(kd_loss(s, t, 2.0)) == pytest.approx(expected, rel=1e-6)
    assert float(kd_loss(t, t, 3.0)) == pytest.approx(0.0, abs=1e-7)
    # Hinton's high-temperature limit: T^2 KL -> sum((t - mean t) - (s - mean s))^2 / (2 K).
    t3, s3 = torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[0.0, 1.0, 0.0]])
    centred = (t3 - t3.mean()) - (s3 - s3.mean())
    assert float(kd_loss(s3, t3, 300.0)) == pytest.approx(float((centred**2).sum()) / 6, rel=1e-2)


def dead_unit_net() -> tuple[MLPSpec, torch.nn.Module]:
    """4 -> 8 -> 8 ReLU: layer 0's units 5..7 are dead (zero weights, negative bias), layer 1's
    units 6, 7 constant (zero weights, bias 2); layer 1 is ``relu(layer 0 + 10)`` elsewhere,
    so it never leaves its linear range."""
    spec = MLPSpec(input_shape=(4,), n_outputs=3, widths=(8, 8), activation="relu")
    torch.manual_seed(0)
    model = build_model(spec)
    with torch.no_grad():
        model.hidden_layers[0][0].weight[5:] = 0.0
        model.hidden_layers[0][0].bias[5:] = -1.0
        w1 = torch.eye(8)
        w1[6:] = 0.0
        model.hidden_layers[1][0].weight.copy_(w1)
        model.hidden_layers[1][0].bias.copy_(torch.tensor([10.0] * 6 + [2.0, 2.0]))
    return spec, model.eval()


def test_the_student_cut_from_the_teacher_is_the_teacher_where_only_dead_units_go() -> None:
    spec, teacher = dead_unit_net()
    x = torch.randn(500, 4)
    with torch.no_grad():
        want = teacher(x)
    # Dead units come last in use, so a width of 5 keeps exactly the live ones.
    from codenas.metrics import capture_activations

    assert set(most_used_units(capture_activations(teacher, x)[0])[:5]) == set(range(5))
    same = student_from_teacher(teacher, spec, with_layer_sizes(spec, (5, 6)), [0, 1], x)
    with torch.no_grad():
        torch.testing.assert_close(same(x), want, atol=1e-5, rtol=1e-5)
    # Layer 1 removed as well (folded into the head: it stays in its linear range).
    folded = student_from_teacher(teacher, spec, with_layer_sizes(spec, (5,)), [0], x)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), want, atol=1e-4, rtol=1e-4)
    # Cutting live units changes the function (the check can fail).
    cut = student_from_teacher(teacher, spec, with_layer_sizes(spec, (3, 6)), [0, 1], x)
    with torch.no_grad():
        assert float((cut(x) - want).abs().max()) > 1e-2
    assert [p.shape for p in same.parameters()] == [
        p.shape for p in build_model(with_layer_sizes(spec, (5, 6))).parameters()
    ]
    for bad_sizes, stands in (((9, 6), [0, 1]), ((5, 6), [1, 1]), ((5,), [0, 1])):
        with pytest.raises(ConfigError, match="must be a cut of the teacher"):
            check_cut(spec, with_layer_sizes(spec, bad_sizes), stands)


def test_transfer_sets_and_a_teacher_initialised_student() -> None:
    data = coordinate_data(400)
    config = codenas.load_config(None, ["train.epochs=2", "train.accelerator=cpu"])
    teacher_spec = MLPSpec(input_shape=(4,), n_outputs=4, widths=(16,), activation="relu")
    teacher = train_student(teacher_spec, data, config.train, seed=0).model
    student = with_layer_sizes(teacher_spec, (6,))
    runs = [
        train_student(student, data, config.train, seed=1, teacher=teacher, transfer=how)
        for how in ("none", "mixup", "noise")
    ]
    fresh = coordinate_data(300, seed=5).train.x
    runs.append(
        train_student(student, data, config.train, seed=1, teacher=teacher, transfer_x=fresh)
    )
    assert len({r.steps for r in runs}) == 1  # equal epochs, equal optimiser steps
    assert all(math.isfinite(r.metrics["val_accuracy"]) for r in runs)
    # The transfer rows change what the student learns (same seed, same batches otherwise).
    first = [next(r.model.parameters()).detach() for r in runs]
    assert all(not torch.equal(first[0], f) for f in first[1:])
    init = student_from_teacher(teacher, teacher_spec, student, [0], data.train.x)
    started = train_student(student, data, config.train, seed=1, teacher=teacher, init=init)
    assert started.steps == runs[0].steps
    with pytest.raises(ConfigError, match="transfer: one of none, mixup, noise"):
        train_student(student, data, config.train, seed=1, teacher=teacher, transfer="fresh")


def test_a_brief_trial_gets_a_one_line_warning() -> None:
    import dataclasses

    spec, model = copy_net()
    files = source_of(spec, model, coordinate_data(100))
    trial = dataclasses.replace(files, kind="trial", title="trial 0 of study 'tiny'")
    warning = brief_trial_warning(trial, None, None)
    assert warning is not None and "\n" not in warning
    assert "trial 0 of study 'tiny'" in warning and "--margin" in warning
    assert brief_trial_warning(trial, None, 4.0) is None  # the user chose a margin
    assert brief_trial_warning(trial, spec, None) is None  # ... or a student
    assert brief_trial_warning(files, None, None) is None  # a trained network's files


def test_bad_settings_are_refused_before_training() -> None:
    spec, model = copy_net()
    source = source_of(spec, model, coordinate_data(100))
    with pytest.raises(ConfigError, match="temperature"):
        distil(source, temperature=0.0, log=False)
    with pytest.raises(ConfigError, match="alpha"):
        distil(source, alpha=1.5, log=False)
    with pytest.raises(ConfigError, match="--init: one of random, teacher"):
        distil(source, init="pretrained", log=False)
    wide = with_layer_sizes(spec, (16,))
    with pytest.raises(ConfigError, match="--init teacher: the student must be a cut"):
        distil(source, student=wide, init="teacher", log=False)
    cnn = CNNSpec(input_shape=(1, 8, 8), n_outputs=4, channels=(4,))
    with pytest.raises(ConfigError, match="'cnn' student for a 'mlp' teacher"):
        distil(source, student=cnn, log=False)


# ----------------------------------------------------------------------------- end to end


def _parser() -> argparse.ArgumentParser:
    from codenas.cli import distil as distil_cli
    from codenas.cli import edit as edit_cli
    from codenas.cli import erase as erase_cli

    parser = argparse.ArgumentParser(prog="codenas")
    sub = parser.add_subparsers()
    erase_cli.add_parser(sub)
    distil_cli.add_parser(sub)
    edit_cli.add_parser(sub)
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.func(args))


@pytest.mark.slow
def test_erase_and_distil_a_trial_of_a_real_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from codenas.spaces import spec_from_dict
    from codenas.tracking.runs import load_logged_model

    storage, uri = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = codenas.load_config(
        "factors-mlp",
        [
            "study.name=tiny",
            "study.trials=1",
            f"study.storage={storage}",
            f"tracking.uri={uri}",
            "train.epochs=2",
            "train.threads=1",
            "space.depth={min: 2, max: 2}",
            "space.width={min: 16, max: 32, log: true}",
            "metrics.samples=200",
            "metrics.log=[dead_fraction, effective_rank]",
            "data.n_samples=600",
            "tracking.report=false",
            "objectives=[{metric: val_accuracy, direction: maximize}, "
            "{metric: params, direction: minimize}]",
        ],
    )
    codenas.search.run(config, progress=False)
    client = MlflowClient(uri)
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    source = ["--study", "tiny", "--storage", storage, "--trial", "0"]
    for bad, pattern in (
        (["--factor", "f9"], "unknown factor 'f9'"),
        (["--factor", "f1", "--layer", "5"], "hidden layers 0..1"),
    ):
        with pytest.raises(CodenasError, match=pattern):
            _run("erase", *source, *bad)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert len(client.search_runs(experiments)) == runs_before  # nothing written

    assert _run("erase", *source, "--factor", "f1", "--layer", "0") == 0
    capsys.readouterr()
    assert _run("distil", *source, "--epochs", "2") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("warning: trial 0 of study 'tiny'") and "--margin" in printed[0]
    assert _run("distil", *source, "--epochs", "1", "--margin", "4", "--no-log") == 0
    assert "warning" not in capsys.readouterr().out
    assert _run("edit", *source, "--when", "f1=0", "--never", "1", "--finetune-steps", "5") == 0
    trial_run = codenas.search.load_study("tiny", storage).trials[0].user_attrs["mlflow_run_id"]
    edits = {
        r.data.tags["codenas.role"]: r
        for r in client.search_runs(experiments, "tags.`codenas.role` != 'none'")
        if r.data.tags.get("codenas.role") in ("erase", "distil", "edit")
    }
    assert set(edits) == {"erase", "distil", "edit"}
    for run in edits.values():
        assert run.data.tags["codenas.source_run_id"] == trial_run
        assert run.data.tags["codenas.source_trial"] == "0"
        assert run.info.status == "FINISHED"
    erased = edits["erase"].data
    assert erased.metrics["probe_cv/f1/layer_0"] < erased.metrics["probe_cv_before/f1/layer_0"]
    assert erased.metrics["fold_error"] < 1e-4
    student = edits["distil"].data
    assert "cka_teacher/layer_0" in student.metrics and student.metrics["params_ratio"] < 1.0
    model = build_model(spec_from_dict(__import__("json").loads(student.tags["codenas.spec"])))
    model.load_state_dict(load_logged_model(uri, edits["distil"].info.run_id).state_dict())
    assert "rule_success/val" in edits["edit"].data.metrics
    assert "finetune/rule_success/val" in edits["edit"].data.metrics
    # An edit's run is itself a source: distil the erased network, edit the edited one.
    assert _run("distil", edits["erase"].info.run_id, "--tracking-uri", uri, "--no-log") == 0
    again = [edits["edit"].info.run_id, "--tracking-uri", uri, "--no-log", "--finetune-steps", "0"]
    assert _run("edit", *again, "--when", "f1=4", "--predict", "0") == 0
    # ... and a report draws its neural code like a train run's (kind = its role).
    from codenas.decisions.report import report_run
    from codenas.tracking.runs import read_run

    assert read_run(uri, edits["erase"].info.run_id).kind == "erase"
    report = report_run(
        edits["erase"].info.run_id, tracking_uri=uri, out_dir=tmp_path / "rep", log=False
    )
    assert report.html.exists() and report.figures
