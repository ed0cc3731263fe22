"""SWAP and MeCo, zero-cost scores at initialisation, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from codenas.metrics import (
    METRICS,
    capture_layers,
    compute_metrics,
    correlation_min_eigenvalue,
    meco,
    reads_codes,
    swap,
)

# --------------------------------------------------------------------------------------- SWAP


def test_identical_units_give_one_pattern() -> None:
    column = np.random.default_rng(0).random((16, 1)) > 0.5
    assert swap([np.repeat(column, 40, axis=1)], batch_size=16) == 1.0


def test_distinct_units_each_count() -> None:
    # 16 rows; unit j fires on the rows of the bits of j + 1: 30 distinct patterns.
    bits = ((np.arange(1, 31)[None, :] >> np.arange(16)[:, None]) & 1).astype(bool)
    assert swap([bits], batch_size=16) == 30.0
    # The same columns again, in a second layer: still 30 patterns (the union of the layers).
    assert swap([bits, bits[:, ::-1]], batch_size=16) == 30.0
    # A dead unit and an always-on unit add one pattern each.
    extra = np.column_stack([np.zeros(16, bool), np.ones(16, bool)])
    assert swap([bits, extra], batch_size=16) == 32.0


def test_independent_random_signs_give_one_pattern_per_unit() -> None:
    # 64 rows: two of 500 random columns agree with probability ~ 500^2 / 2^65, i.e. never.
    acts = np.random.default_rng(1).standard_normal((64, 500))
    assert swap([acts[:, :200], acts[:, 200:]], batch_size=64) == 500.0


def test_patterns_saturate_at_two_to_the_rows() -> None:
    # 3 rows can show at most 2^3 = 8 patterns however many units there are.
    acts = np.random.default_rng(2).standard_normal((3, 400))
    assert swap([acts], batch_size=3) == 8.0


def test_batches_are_averaged_and_the_threshold_applies() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((32, 50))
    first, second = swap([a[:16]], batch_size=16), swap([a[16:]], batch_size=16)
    assert swap([a], batch_size=16) == pytest.approx((first + second) / 2)
    # A partial last batch is left out.
    assert swap([a[:40]], batch_size=16) == pytest.approx((first + second) / 2)
    # Sigmoid-like outputs: every unit is on at threshold 0 (one pattern), not at 0.5.
    s = 1.0 / (1.0 + np.exp(-a[:16]))
    assert swap([s], batch_size=16) == 1.0
    assert swap([s], threshold=0.5, batch_size=16) == first


def test_swap_of_a_relu_network_reads_the_codes() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 7), nn.ReLU(), nn.Linear(7, 2))
    x = torch.randn(64, 5)
    captured = capture_layers(net, x, [net[1], net[3]], codes=True)
    h1 = torch.relu(net[0](x))
    h2 = torch.relu(net[2](h1))
    codes = torch.cat([h1, h2], dim=1).T > 0
    expected = torch.unique(codes, dim=0).shape[0]  # the reference code's torch.unique
    assert swap(captured.codes, batch_size=64) == float(expected)
    assert METRICS.get("swap").reads == "codes" and reads_codes(["swap"])
    out = compute_metrics(["swap"], captured.units, codes=captured.codes)
    assert out["swap"] == swap(captured.codes)


def test_swap_of_a_conv_layer_counts_every_channel_at_every_position() -> None:
    # The reference code flattens each rectified feature map to (N, C * H * W).
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 2))
    x = torch.randn(16, 1, 8, 8)
    captured = capture_layers(net, x, [net[1]], codes=True)
    codes = torch.relu(net[0](x)).reshape(16, -1).T > 0
    assert captured.codes[0].shape == (16, 4 * 8 * 8)
    assert swap(captured.codes, batch_size=16) == float(torch.unique(codes, dim=0).shape[0])


def test_swap_rejects_a_batch_of_one() -> None:
    with pytest.raises(ValueError, match="batch_size >= 2"):
        swap([np.ones((4, 3))], batch_size=1)


# --------------------------------------------------------------------------------------- MeCo


def test_orthogonal_columns_give_eigenvalue_one() -> None:
    # Centred orthogonal columns: the Hadamard matrix's columns after the first.
    h = np.array([[1.0]])
    for _ in range(3):
        h = np.block([[h, h], [h, -h]])
    cols = h[:, 1:6] * np.array([1.0, 2.0, 0.5, 3.0, 7.0]) + np.array([1.0, -2, 0, 4, 5])
    assert correlation_min_eigenvalue(cols) == pytest.approx(1.0, abs=1e-12)
    assert meco([cols, cols[:, :2]]) == pytest.approx(2.0, abs=1e-12)


def test_identical_or_dependent_units_give_eigenvalue_zero() -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((50, 3))
    assert correlation_min_eigenvalue(np.column_stack([a, a[:, 0]])) == pytest.approx(0, abs=1e-12)
    assert correlation_min_eigenvalue(np.column_stack([a, a @ [1.0, 2.0, -1.0]])) == pytest.approx(
        0, abs=1e-12
    )
    # A dead unit (constant): its correlation row is 0, as MeCo's reference sets NaN to 0.
    assert correlation_min_eigenvalue(np.column_stack([a, np.zeros(50)])) == 0.0
    # As many units as rows: the centred rows span n - 1 dimensions, the matrix is singular.
    assert correlation_min_eigenvalue(rng.standard_normal((10, 10))) == pytest.approx(0, abs=1e-9)


def test_two_units_with_correlation_r_give_one_minus_r() -> None:
    # The 2 x 2 correlation matrix [[1, r], [r, 1]] has eigenvalues 1 - |r| and 1 + |r|.
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 200))
    r = np.corrcoef(x, y)[0, 1]
    value = correlation_min_eigenvalue(np.column_stack([x, y]))
    assert value == pytest.approx(1 - abs(r), rel=1e-12)
    # Matches numpy's corrcoef and eigvalsh on a wider layer.
    a = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12))
    expected = np.linalg.eigvalsh(np.corrcoef(a, rowvar=False))[0]
    assert correlation_min_eigenvalue(a) == pytest.approx(expected, rel=1e-9)
    assert meco([a[:200], np.column_stack([x, y])]) == pytest.approx(
        correlation_min_eigenvalue(a[:200]) + 1 - abs(r), rel=1e-12
    )


def test_meco_is_a_network_metric_of_the_units() -> None:
    info = METRICS.get("meco")
    assert (info.scope, info.reads, info.direction) == ("network", "units", "maximize")
    assert (METRICS.get("swap").scope, METRICS.get("swap").direction) == ("network", "maximize")


# ------------------------------------------------------------------------------------ synflow


def test_synflow_of_a_bias_free_linear_chain_is_the_path_sum_once_per_layer() -> None:
    """With |W| and an all-ones input, R = 1' |W3| |W2| |W1| 1 (the sum over all paths), and
    each layer's sum of |w dR/dw| is R again: the score is log(3 R)."""
    from codenas.metrics import synflow

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False), nn.Linear(3, 2, False)
    )
    w1, w2, w3 = (m.weight.detach().double().abs() for m in (net[0], net[2], net[3]))
    paths = float((w3 @ w2 @ w1 @ torch.ones(5, dtype=torch.float64)).sum())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert synflow(net, (5,)) == pytest.approx(np.log(3 * paths), rel=1e-12)
    for key, value in net.state_dict().items():  # the network itself is left as it was
        assert torch.equal(value, before[key])


def test_synflow_is_minus_infinity_without_a_path_and_reads_conv_layers() -> None:
    from codenas.metrics import MODEL_SCORES, synflow

    dead = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    with torch.no_grad():
        dead[0].weight.zero_()
        dead[0].bias.zero_()
    assert synflow(dead, (3,)) == -np.inf
    torch.manual_seed(1)
    conv = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    )
    narrow = nn.Sequential(
        nn.Conv2d(1, 1, 3), nn.BatchNorm2d(1), nn.ReLU(), nn.Flatten(), nn.Linear(1 * 4 * 4, 3)
    )
    with torch.no_grad():  # the narrow network is the wide one's first channel
        narrow[0].weight.copy_(conv[0].weight[:1])
        narrow[0].bias.copy_(conv[0].bias[:1])
        narrow[4].weight.copy_(conv[4].weight[:, :16])
        narrow[4].bias.copy_(conv[4].bias)
    assert np.isfinite(synflow(conv, (1, 6, 6)))
    assert synflow(conv, (1, 6, 6)) > synflow(narrow, (1, 6, 6))  # more paths, more flow
    assert MODEL_SCORES["synflow"](conv, torch.zeros(2, 1, 6, 6), torch.zeros(2)) == synflow(
        conv, (1, 6, 6)
    )


# ------------------------------------------------------------------------------------ ZiCo


def _product_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out * y).sum()  # d/dW of sum(y * W x) is sum_i y_i x_i': a gradient we choose


def test_zico_of_one_layer_with_chosen_gradients_is_the_sum_of_mean_over_std() -> None:
    """Gradients (1, 0) and (3, 2) over two batches: mean |g| = (2, 1), s.d. = (1, 1), so
    ZiCo = log(2/1 + 1/1) = log 3. Accumulated gradients (the authors' released code) would give
    (1, 0) and (4, 2): log(2.5/1.5 + 1), which the test tells apart."""
    from codenas.metrics import zico

    net = nn.Linear(2, 1, bias=False)
    before = net.weight.detach().clone()
    batches = [
        (torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0]])),
        (torch.tensor([[3.0, 2.0]]), torch.tensor([[1.0]])),
    ]
    assert zico(net, batches, _product_loss) == pytest.approx(np.log(3.0), rel=1e-12)
    assert torch.equal(net.weight, before) and net.weight.grad is None  # left untouched
    with pytest.raises(ValueError, match="two batches"):
        zico(net, batches[:1], _product_loss)


def test_zico_sums_the_log_of_each_layer_and_skips_weights_that_do_not_vary() -> None:
    """Two layers: each adds the log of its own sum; a weight whose gradient is the same in
    every batch (s.d. 0) is left out rather than dividing by zero."""
    from codenas.metrics import zico

    net = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        net[1].weight.fill_(2.0)
    # out = 2 (x1 + x2); dL/dW1 = y * 2 * x, dL/dW2 = y * (x1 + x2)
    batches = [
        (torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0]])),
        (torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0]])),
    ]
    # W1 gradients (2, 2) and (4, 2): only the first varies, mean 3, s.d. 1 -> log 3.
    # W2 gradients 2 and 3: mean 2.5, s.d. 0.5 -> log 5.
    expected = np.log(3.0) + np.log(5.0)
    assert zico(net, batches, _product_loss) == pytest.approx(expected, rel=1e-12)


def test_zico_by_name_reads_two_halves_of_the_rows_with_the_task_s_loss() -> None:
    import torch.nn.functional as F

    from codenas.metrics import MODEL_SCORES, zico

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, labels = torch.randn(16, 4), torch.randint(0, 3, (16,))
    halves = [(x[:8], labels[:8]), (x[8:], labels[8:])]
    assert MODEL_SCORES["zico"](net, x, labels) == zico(net, halves, F.cross_entropy)
    targets = torch.randn(16, 3)  # float targets: a regression, the mean squared error
    assert MODEL_SCORES["zico"](net, x, targets) == zico(
        net, [(x[:8], targets[:8]), (x[8:], targets[8:])], F.mse_loss
    )
