"""Validation R2 of a regression: torchmetrics' R2Score, checked against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from codenas.training.loop import _R2


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_r2_over_batches_equals_sklearn(n_outputs: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((50, n_outputs))
    pred = y + rng.normal(scale=[0.3, 1.0, 2.0][:n_outputs], size=y.shape)
    r2 = _R2()
    for start in range(0, 50, 16):  # uneven batches, as the evaluation streams them
        r2.update(torch.as_tensor(pred[start : start + 16]), torch.as_tensor(y[start : start + 16]))
    assert r2.compute() == pytest.approx(r2_score(y, pred), rel=1e-12)


def test_r2_with_a_constant_target_and_too_few_rows() -> None:
    y = np.stack([np.linspace(0.0, 1.0, 20), np.full(20, 2.0)], axis=1)  # second column constant
    pred = y + 0.1
    r2 = _R2()
    r2.update(torch.as_tensor(pred, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32))
    assert r2.compute() == pytest.approx(r2_score(y, pred), rel=1e-6)
    one = _R2()
    one.update(torch.ones(1, 2), torch.zeros(1, 2))
    assert math.isnan(one.compute())
