"""The spaces' network surgery on networks whose function is known: what must be preserved is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codenas.spaces import (
    CNNSpec,
    MLPSpec,
    SurgeryError,
    add_unit,
    build_model,
    fold_affine,
    keep_units,
    layer_sizes,
    space_of,
    widen_units,
)


def cnn(channels=(6, 5, 4), pool="max", seed=0) -> tuple[CNNSpec, torch.nn.Module]:
    torch.manual_seed(seed)
    spec = CNNSpec(input_shape=(1, 8, 8), n_outputs=3, channels=channels, pool_every=1, pool=pool)
    model = build_model(spec)
    with torch.no_grad():  # statistics as after training, so eval mode is not the identity
        for block in model.hidden_layers:
            block[1].running_mean.uniform_(-0.5, 0.5)
            block[1].running_var.uniform_(0.5, 2.0)
    return spec, model.eval()


@torch.no_grad()
def test_cnn_channels_widen_and_dead_channels_go_without_changing_the_function() -> None:
    spec, model = cnn()
    x = torch.randn(16, 1, 8, 8)
    wide_spec, wide = widen_units(model, spec, 1, 9, np.random.default_rng(0))
    assert layer_sizes(wide_spec) == (6, 9, 4)
    torch.testing.assert_close(wide.eval()(x), model(x), rtol=1e-4, atol=1e-5)
    model.hidden_layers[0][1].bias[4:] = -1e4  # channels 4 and 5 of block 0 never fire (ReLU)
    small_spec, small = keep_units(model, spec, 0, [0, 1, 2, 3])
    assert layer_sizes(small_spec) == (4, 5, 4)
    torch.testing.assert_close(small.eval()(x), model(x), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_an_affine_map_folds_exactly_into_a_linear_reader_and_max_pooling_refuses() -> None:
    torch.manual_seed(0)
    spec = MLPSpec(input_shape=(5,), n_outputs=3, widths=(4, 6), activation="tanh")
    model = build_model(spec).eval()
    rng = np.random.default_rng(1)
    p, c = rng.normal(size=(4, 4)), rng.normal(size=4)
    x = torch.randn(32, 5)
    folded = fold_affine(model, spec, 0, p, c)
    h = model.hidden_layers[0](model.flatten(x)).double()
    expected = model.head(
        model.hidden_layers[1]((h @ torch.as_tensor(p).T + torch.as_tensor(c)).float())
    )
    torch.testing.assert_close(folded(x), expected, rtol=1e-4, atol=1e-5)
    cspec, _ = cnn(pool="max")
    assert not space_of(cspec).foldable(cspec, 0)
    assert space_of(cspec).foldable(cspec, 2)  # the last block: the global mean commutes
    assert space_of(cnn(pool="avg")[0]).foldable(cnn(pool="avg")[0], 0)
    with pytest.raises(SurgeryError, match="cannot fold"):
        fold_affine(cnn()[1], cspec, 0, np.eye(6), np.zeros(6))


@torch.no_grad()
def test_what_a_space_cannot_do_is_refused_by_name() -> None:
    spec, model = cnn()
    with pytest.raises(SurgeryError, match="cnn networks cannot remove a layer"):
        space_of(spec).remove_layer(model, spec, 1)
    with pytest.raises(SurgeryError, match="cnn networks cannot insert"):
        space_of(spec).insert_identity(model, spec, 1)
    with pytest.raises(SurgeryError, match="cannot keep"):
        keep_units(model, spec, 0, [0, 9])


@torch.no_grad()
def test_an_added_unit_changes_nothing_until_it_is_wired() -> None:
    torch.manual_seed(0)
    spec = MLPSpec(input_shape=(5,), n_outputs=3, widths=(4, 6), activation="relu")
    model = build_model(spec).eval()
    x = torch.randn(32, 5)
    for layer, sizes in ((0, (5, 6)), (1, (4, 7))):
        new_spec, new = add_unit(model, spec, layer)
        assert layer_sizes(new_spec) == sizes
        torch.testing.assert_close(new.eval()(x), model(x))
        # the new unit is the last, and it is wired to nothing
        produced = new.hidden_layers[layer][0]
        assert not produced.weight[-1].any() and not produced.bias[-1]
    three_spec, three = add_unit(model, spec, 1, 3)
    assert layer_sizes(three_spec) == (4, 9)
    torch.testing.assert_close(three.eval()(x), model(x))
    with pytest.raises(SurgeryError, match="at least one unit"):
        add_unit(model, spec, 1, 0)
    cnn_spec, cnn_model = cnn()
    wide_spec, wide = add_unit(cnn_model, cnn_spec, 1)
    assert layer_sizes(wide_spec) == (6, 6, 4)
    y = torch.randn(8, 1, 8, 8)
    torch.testing.assert_close(wide.eval()(y), cnn_model(y), rtol=1e-4, atol=1e-5)
