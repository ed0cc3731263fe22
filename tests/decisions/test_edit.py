"""Rule injection: the closed-form rewrite, a rule a linear head can represent exactly, a real
trained network, and the command line (errors, --spec/--weights, --out)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import codenas
from codenas.cli import main
from codenas.decisions import edit as edit_module
from codenas.decisions.edit import (
    check_rule,
    edit,
    head_keys,
    load_rule,
    rewrite_linear,
    rule_from_flags,
    rule_values,
    second_moment,
)
from codenas.errors import ConfigError, DataError
from codenas.spaces import build_model, layer_sizes
from tests.decisions._nets import coordinate_data, coordinate_net, source_of, switch_data


def test_one_exemplar_at_rank_one_is_rome() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    ordinary = rng.normal(size=(200, 5))
    s2 = second_moment(ordinary)
    k, v = rng.normal(size=(1, 5)), rng.normal(size=(1, 3))
    new_w, new_b, _ = rewrite_linear(w, b, k, v, s2, rank=1, ridge=0.0)
    # ROME (Meng et al. 2022), with the bias as weight on a constant input 1:
    ka = np.append(k[0], 1.0)
    direction = np.linalg.solve(s2, ka)
    full = np.hstack([w, b[:, None]])
    expected = full + np.outer(v[0] - full @ ka, direction) / (ka @ direction)
    np.testing.assert_allclose(np.hstack([new_w, new_b[:, None]]), expected, atol=1e-10)
    np.testing.assert_allclose(new_w @ k[0] + new_b, v[0], atol=1e-10)


def test_full_rank_maps_every_exemplar_and_keeps_the_other_keys() -> None:
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    s2 = second_moment(rng.normal(size=(300, 6)))
    keys, values = rng.normal(size=(3, 6)), rng.normal(size=(3, 4))
    new_w, new_b, _ = rewrite_linear(w, b, keys, values, s2, rank=3, ridge=0.0)
    np.testing.assert_allclose(keys @ new_w.T + new_b, values, atol=1e-9)
    # Least change in S's metric: keys S-orthogonal to the exemplars' keys keep their outputs.
    ka = np.hstack([keys, np.ones((3, 1))])
    basis = np.linalg.svd(ka @ np.linalg.inv(s2))[2][3:]  # null space of K S^-1
    delta = np.hstack([new_w - w, (new_b - b)[:, None]])
    assert np.abs(delta @ basis.T).max() < 1e-9
    with pytest.raises(ValueError, match="span 1 directions, fewer than rank 2"):
        rewrite_linear(w, b, np.repeat(keys[:1], 3, 0), values, s2, rank=2, ridge=0.0)


def test_a_rule_the_head_can_represent_is_edited_exactly() -> None:
    # The head reads the label b from unit 1; unit 0 is a + OFFSET with no noise, so the
    # ordinary rows (a = 1) do not vary along the direction that tells a = 0 rows apart: the
    # rule "a = 0 -> class 3" is exactly "add M (1 - a) to logit 3", a change of the head.
    data = switch_data()
    spec, model = coordinate_net()
    rule = rule_from_flags(["a=0"], predict=3)
    result = edit(
        source_of(spec, model, data), rule, ridge=1e-12, margin=2.0, log=False, finetune_steps=0
    )
    _, logits = head_keys(model, data.train.x)
    mask = rule.matches(data.train, ["a", "b"])
    ex = np.random.default_rng(0).permutation(np.flatnonzero(mask))[: result.exemplars]
    values, shift = rule_values(logits[ex], rule, result.margin)
    _, edited_logits = head_keys(result.model, data.train.x)
    np.testing.assert_allclose(edited_logits[ex], values, atol=1e-4 * shift)  # fitted exactly
    _, val_before = head_keys(model, data.val.x)
    _, val_after = head_keys(result.model, data.val.x)
    rows = rule.matches(data.val, ["a", "b"])
    np.testing.assert_allclose(val_after[~rows], val_before[~rows], atol=1e-4 * shift)
    np.testing.assert_allclose(val_after[rows, 3] - val_before[rows, 3], shift, rtol=1e-4)
    val = result.scores[("edit", "val")]
    assert val.rule_success == 1.0 and val.changed == 0.0
    assert val.untouched_accuracy == result.scores[("before", "val")].untouched_accuracy
    assert result.scores[("before", "val")].rule_success < 0.4  # the rule was not there before
    assert "rule success" in result.summary()


def test_a_rule_unit_detects_the_rules_rows_and_leaves_the_others_exactly() -> None:
    # Rows with a = 0 differ from the others along unit 0 of the first hidden layer, which the
    # last hidden layer reads: a probe there tells them apart without error, so the added unit
    # fires on every row of the rule, held out included, and rests on the others.
    data = switch_data()
    spec, model = coordinate_net()
    rule = rule_from_flags(["a=0"], predict=3)
    result = edit(
        source_of(spec, model, data), rule, margin=2.0, log=False, finetune_steps=0, method="unit"
    )
    assert layer_sizes(result.spec) == (4, 5)  # one more unit in the last hidden layer
    assert result.unit is not None and result.unit.fires_exemplars == 1.0
    val = result.scores[("edit", "val")]
    assert val.rule_success == 1.0 and result.scores[("before", "val")].rule_success < 0.4
    assert val.changed == 0.0
    # where the unit rests, the logits are the source's, exactly
    unit = edit_module._inputs_of(result.model.head, result.model, data.val.x)[:, -1]
    rows = rule.matches(data.val, ["a", "b"])
    rest = ~rows & (unit <= unit[~rows].min() + 1e-9)
    assert rest.mean() > 0.4
    _, before = head_keys(model, data.val.x)
    _, after = head_keys(result.model, data.val.x)
    np.testing.assert_allclose(after[rest], before[rest], atol=1e-4)
    # the edited network is what its spec builds
    rebuilt = build_model(result.spec)
    rebuilt.load_state_dict(result.model.state_dict())
    assert "added one unit to hidden layer 1" in result.summary()


def test_an_interior_level_gets_a_band_of_three_relu_units() -> None:
    # a = 1 lies between a = 0 and a = 2 on the axis the network carries a along (unit 0, in
    # its linear range): no half-space cuts it out, a triangle of three ReLU units does.
    data = coordinate_data()
    for split in (data.train, data.val, data.test):
        split.x[:, 0] = split.factors[:, 0].float()  # a read without noise: levels 1 apart
    spec, model = coordinate_net()
    rule = rule_from_flags(["a=1"], predict=3)
    source = source_of(spec, model, data)
    result = edit(source, rule, margin=2.0, log=False, finetune_steps=0, method="unit")
    assert result.unit is not None and result.unit.detector == "band" and result.unit.units == 3
    assert layer_sizes(result.spec) == (4, 7)
    val = result.scores[("edit", "val")]
    assert result.scores[("before", "val")].rule_success < 0.4
    assert val.rule_success == 1.0 and val.changed == 0.0  # exactly the level, nothing else
    assert "a band along the axis of a" in result.summary()
    # the same rule on an extreme level takes the linear detector
    extreme = edit(
        source, rule_from_flags(["a=0"], predict=3), log=False, finetune_steps=0, method="unit"
    )
    assert extreme.unit is not None and extreme.unit.detector == "linear"
    # a band needs ReLU units: the same network with tanh is refused in one line
    tanh_spec = dataclasses.replace(spec, activation="tanh")
    tanh_model = build_model(tanh_spec)
    tanh_model.load_state_dict(model.state_dict())
    with pytest.raises(ConfigError, match="needs ReLU units in layer 1"):
        edit(source_of(tanh_spec, tanh_model.eval(), data), rule, log=False, method="unit")


def test_a_rule_unit_needs_a_linear_last_layer_the_head_reads() -> None:
    from codenas.spaces import CNNSpec

    spec = CNNSpec(input_shape=(1, 8, 8), n_outputs=3, channels=(4, 4), pool_every=1)
    rule = rule_from_flags(["a=0"], predict=1)
    with pytest.raises(ConfigError, match="--method unit: needs a last hidden layer made by one"):
        edit_module.rule_unit(
            build_model(spec), spec, switch_data(n=40), rule, np.arange(3), np.arange(3, 9), 1.0
        )
    with pytest.raises(ConfigError, match="--method: one of head, unit, got 'neuron'"):
        data = switch_data(n=200)
        spec2, model = coordinate_net()
        edit(source_of(spec2, model, data), rule, log=False, method="neuron")


@pytest.fixture(scope="module")
def factors_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, Path]:
    """An MLP 64-32 trained 10 epochs on the packaged factors data, as a spec file + weights."""
    from codenas.data import load_dataset
    from codenas.decisions.distil import train_student
    from codenas.decisions.transfer import write_spec_file
    from codenas.spaces import MLPSpec

    config = codenas.load_config(
        "factors-mlp",
        ["tracking.enabled=false", "train.accelerator=cpu", "train.threads=1"],
    )
    data = load_dataset(config.data)
    spec = MLPSpec(
        input_shape=data.input_shape, n_outputs=data.n_outputs, widths=(64, 32), activation="relu"
    )
    model = train_student(spec, data, config.train, seed=0).model
    folder = tmp_path_factory.mktemp("net")
    write_spec_file(folder / "spec.yaml", spec, config=config)
    torch.save(model.state_dict(), folder / "weights.pt")
    return source_of(spec, model, data, config), folder / "spec.yaml", folder / "weights.pt"


def test_rule_holds_on_held_out_rows_of_a_trained_factors_network(factors_net) -> None:
    source = factors_net[0]
    rule = rule_from_flags(["f1=0"], never=3)  # f0 is the label; f1 is another factor
    result = edit(source, rule, exemplars=16, log=False)
    before, after = result.scores[("before", "val")], result.scores[("edit", "val")]
    assert result.exemplars == 16 and after.rule_rows > 100  # judged on rows never fitted
    assert before.rule_success < 0.85 and after.rule_success >= 0.95
    assert after.untouched_accuracy >= before.untouched_accuracy - 0.08
    assert result.seconds["edit"] < result.seconds["finetune"]
    tuned = result.scores[("finetune", "val")]
    assert 0.0 <= tuned.rule_success <= 1.0 and tuned.untouched_rows == after.untouched_rows


def test_bad_rules_are_refused() -> None:
    data = coordinate_data(n=200)
    with pytest.raises(ConfigError, match=r"when\.c: unknown factor 'c'.*Available: a, b"):
        check_rule(rule_from_flags(["c=1"], predict=0), data, exemplars=16, rank=1)
    with pytest.raises(ConfigError, match=r"predict: class 7 is out of range.*0\.\.3"):
        check_rule(rule_from_flags(["a=1"], predict=7), data, exemplars=16, rank=1)
    with pytest.raises(ConfigError, match=r"no training row has a = 9"):
        check_rule(rule_from_flags(["a=9"], never=1), data, exemplars=16, rank=1)
    with pytest.raises(ConfigError, match=r"--exemplars 2 is fewer than the edit's rank 4"):
        check_rule(rule_from_flags(["a=1"], never=1), data, exemplars=2, rank=4)
    with pytest.raises(ConfigError, match="exactly one of --predict"):
        rule_from_flags(["a=1"], predict=1, never=2)
    with pytest.raises(ConfigError, match="--when 'a:1'"):
        rule_from_flags(["a:1"], predict=1)
    without = type(data)(
        **{**data.__dict__, "train": data.train.__class__(data.train.x, data.train.y)}
    )
    with pytest.raises(DataError, match="no known factors"):
        check_rule(rule_from_flags(["a=1"], never=1), without, exemplars=16, rank=1)


def test_a_rule_file(tmp_path: Path) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text("when: {a: [0, 1], b: 2}\npredict: 3\n")
    rule = load_rule(path)
    assert rule.when == (("a", (0, 1)), ("b", (2,))) and rule.predict == 3
    assert rule.describe() == "rows with a in [0, 1] and b = 2 -> class 3"
    path.write_text("when: {a: 0}\npredict: 3\nnever: 2\n")
    with pytest.raises(ConfigError, match=r"rule\.yaml: give exactly one of predict"):
        load_rule(path)
    path.write_text("when: {a: zero}\nnever: 2\n")
    with pytest.raises(ConfigError, match=r"rule\.yaml: when\.a: a level"):
        load_rule(path)
    with pytest.raises(ConfigError, match="cannot read the rule"):
        load_rule(tmp_path / "missing.yaml")


def test_cli_errors_are_one_line_and_exit_2(factors_net, capsys) -> None:
    _, spec, weights = factors_net
    files = ["--spec", str(spec), "--weights", str(weights), "--no-log"]
    for bad, message in (
        (["--when", "f9=1", "--predict", "1"], "unknown factor 'f9'"),
        (["--when", "f1=1", "--predict", "5"], "class 5 is out of range"),
        (["--when", "f1=7", "--never", "1"], "no training row has f1 = 7"),
        (["--when", "f1=1", "--never", "1", "--exemplars", "2", "--rank", "3"], "fewer than"),
        (["--when", "f1=1"], "exactly one of --predict"),
        (["--rule", "nowhere.yaml"], "cannot read the rule"),
    ):
        assert main(["edit", *files, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_cli_from_spec_and_weights_writes_a_network_that_is_a_source(
    factors_net, tmp_path: Path, capsys
) -> None:
    from codenas.decisions.transfer import load_spec_file
    from codenas.spaces import build_model

    source, spec, weights = factors_net
    out = tmp_path / "edited"
    files = ["--spec", str(spec), "--weights", str(weights), "--no-log"]
    rule = ["--when", "f1=0", "--never", "3", "--finetune-steps", "5"]
    assert main(["edit", *files, *rule, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rule success" in printed and "weights.pt" in printed
    model = build_model(load_spec_file(out / "spec.yaml").spec)
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    pred = model.eval()(source.data.val.x).argmax(1).numpy()
    rows = rule_from_flags(["f1=0"], never=3).matches(source.data.val, source.data.factor_names)
    assert (pred[rows] != 3).mean() >= 0.95  # the written network carries the edit
    # ... and is the source of the next edit: the rule already holds there.
    again = ["--spec", str(out / "spec.yaml"), "--weights", str(out / "weights.pt"), "--no-log"]
    assert main(["edit", *again, *rule]) == 0
    assert "rule success" in capsys.readouterr().out


def test_cli_method_unit_writes_the_wider_network(factors_net, tmp_path: Path, capsys) -> None:
    from codenas.decisions.transfer import load_spec_file

    source, spec, weights = factors_net
    out = tmp_path / "unit"
    files = ["--spec", str(spec), "--weights", str(weights), "--no-log"]
    rule = ["--when", "f1=4", "--predict", "0", "--finetune-steps", "0", "--method", "unit"]
    assert main(["edit", *files, *rule, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "added one unit to hidden layer 1" in printed
    # --finetune-steps 0 skips the baseline: no column for it, and the test line says so.
    assert "fine-tune" not in printed and "no fine-tuning baseline" in printed
    header = next(line for line in printed.splitlines() if line.strip().startswith("before"))
    assert header.split() == ["before", "edit"]
    written = load_spec_file(out / "spec.yaml").spec
    assert layer_sizes(written) == (64, 33)
    model = build_model(written)
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    pred = model.eval()(source.data.val.x).argmax(1).numpy()
    rows = rule_from_flags(["f1=4"], predict=0).matches(source.data.val, source.data.factor_names)
    assert (pred[rows] == 0).mean() >= 0.9  # the dev rule, held-out rows (0.99 measured)
    before = source.model().eval()(source.data.val.x).argmax(1).numpy()
    assert (pred[~rows] != before[~rows]).mean() <= 0.02  # the other rows barely move


def test_a_rule_unit_in_a_gelu_network_reports_where_it_fires() -> None:
    """GELU units are not 0 below their threshold: the share of ordinary rows the unit fires
    on is read at its threshold (about 1 - quantile), not above the rows' median (half)."""
    data = switch_data()
    relu_spec, relu_model = coordinate_net()
    spec = dataclasses.replace(relu_spec, activation="gelu")
    model = build_model(spec)
    model.load_state_dict(relu_model.state_dict())
    rule = rule_from_flags(["a=0"], never=2)
    result = edit(
        source_of(spec, model.eval(), data), rule, log=False, finetune_steps=0, method="unit"
    )
    assert result.unit is not None and result.unit.fires_exemplars == 1.0
    assert result.unit.fires_ordinary <= 1 - result.unit.quantile + 0.01
