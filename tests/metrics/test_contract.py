"""The common contract of every registered coding metric, generated from the registry.

Every metric that is not a ``run`` metric (those come from training) must: return finite
values (a float, or a dict with exactly its declared ``keys``); give the same answer twice;
give the same answer on permuted rows, where its definition is order-free (see
``ROW_ORDER_EXEMPT``); and refuse 1-D, NaN/inf and too-few-sample input with a ValueError that
says what is wrong. A metric added to the registry is picked up here without edits.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codenas.metrics
from codenas.metrics import METRICS, MetricInfo, compute_metrics

# Metrics whose definition depends on row order, and why. Every other metric must be invariant.
ROW_ORDER_EXEMPT = {
    # disentanglement_lib's fixed-data convention: fit on the first ceil(0.9 n) rows, score on
    # the rest; permuting rows changes the split (and modularity's information is on the
    # training rows, sap_continuous reads only them, as disentanglement_lib does).
    "dci": "fixed train/test split",
    "dci_forest": "fixed train/test split",
    "sap": "fixed train/test split",
    "sap_continuous": "computed on the training rows of the fixed split",
    "modularity": "fixed train/test split",
    "linear_probe_accuracy": "fixed train/test split",
}
# activation_code_logdet and naswot average over consecutive batches of 128 rows, so they are
# order-free only up to one batch; the arrays here have fewer rows, and they are tested.

N_SAMPLES = 60
LAYER_WIDTHS = (12, 8, 5)


def _measured() -> list[MetricInfo]:
    return [info for _, info in METRICS.items() if info.scope != "run"]


def _ids(infos: list[MetricInfo]) -> list[str]:
    return [info.name for info in infos]


MEASURED = _measured()


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((N_SAMPLES, 4))
    layers = []
    for width in LAYER_WIDTHS:
        w = rng.standard_normal((base.shape[1], width))
        base = np.maximum(0.0, base @ w + 0.5 * rng.standard_normal((N_SAMPLES, width)))
        layers.append(base)
    # Cyclic labels and factors: every class and level appears in the training and test rows.
    labels = np.arange(N_SAMPLES) % 3
    factors = np.stack([np.arange(N_SAMPLES) % 3, (np.arange(N_SAMPLES) // 2) % 4], axis=1)
    return {"layers": layers, "labels": labels, "factors": factors}


def _call(info: MetricInfo, layers: list[np.ndarray], data: dict[str, Any], rows: Any = None):
    rows = slice(None) if rows is None else rows
    kwargs = {need: data[need][rows] for need in info.needs}
    assert info.fn is not None
    if info.scope == "network":
        return info.fn([a[rows] for a in layers], **kwargs)
    return info.fn(layers[0][rows], **kwargs)


def _flat(value: Any) -> dict[str, float]:
    return value if isinstance(value, dict) else {"": value}


def _assert_finite(info: MetricInfo, value: Any) -> None:
    if info.keys is None:
        assert isinstance(value, float), f"{info.name} returned {type(value).__name__}"
    else:
        assert isinstance(value, dict) and set(value) == set(info.keys), value
    for key, v in _flat(value).items():
        assert isinstance(v, float) and math.isfinite(v), f"{info.name}.{key} = {v!r}"


def test_the_registry_holds_every_family() -> None:
    names = {info.name for info in MEASURED}
    expected = {
        "dead_fraction", "effective_rank", "participation_ratio", "hoyer_sparsity",
        "twonn_dimension", "capacity_usage", "layer_redundancy", "activation_code_logdet",
        "naswot", "unique_codes_fraction", "mig", "dci", "dci_forest", "sap", "sap_continuous",
        "modularity", "class_selectivity", "unit_label_information", "linear_probe_accuracy",
    }  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("info", MEASURED, ids=_ids(MEASURED))
def test_metric_is_documented_and_exported(info: MetricInfo) -> None:
    assert info.fn is not None
    doc = info.fn.__doc__ or ""
    assert "(n_samples, n_units" in doc, f"{info.name}: docstring must state the array shape"
    assert "Returns:" in doc
    assert info.direction in ("maximize", "minimize", None)
    assert getattr(codenas.metrics, info.fn.__name__) is info.fn


@pytest.mark.parametrize("info", MEASURED, ids=_ids(MEASURED))
def test_finite_and_deterministic(info: MetricInfo, data: dict[str, Any]) -> None:
    first = _call(info, data["layers"], data)
    _assert_finite(info, first)
    assert _call(info, data["layers"], data) == first


@pytest.mark.parametrize("info", MEASURED, ids=_ids(MEASURED))
def test_leaves_its_inputs_alone(info: MetricInfo, data: dict[str, Any]) -> None:
    f32 = [a.astype(np.float32) for a in data["layers"]]
    for layers in (data["layers"], f32):
        before = [a.copy() for a in layers]
        _call(info, layers, data)
        for a, b in zip(layers, before, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("info", MEASURED, ids=_ids(MEASURED))
def test_invariant_to_row_order(info: MetricInfo, data: dict[str, Any]) -> None:
    if info.name in ROW_ORDER_EXEMPT:
        pytest.skip(f"{info.name}: {ROW_ORDER_EXEMPT[info.name]}")
    perm = np.random.default_rng(1).permutation(N_SAMPLES)
    before = _flat(_call(info, data["layers"], data))
    after = _flat(_call(info, data["layers"], data, rows=perm))
    for key in before:
        assert after[key] == pytest.approx(before[key], rel=1e-9, abs=1e-12), key


def _bad_inputs(info: MetricInfo, data: dict[str, Any]) -> list[tuple[str, Callable[[], Any], str]]:
    good = data["layers"][0]
    nan = good.copy()
    nan[3, 2] = np.nan
    inf = good.copy()
    inf[0, 0] = np.inf
    cases = [
        ("1-D", good[:, 0], r"shape \(n_samples, n_units\)"),
        ("NaN", nan, "NaN or infinite"),
        ("inf", inf, "NaN or infinite"),
        ("one sample", good[:1], "at least"),
    ]
    out = []
    for label, acts, message in cases:
        n = acts.shape[0]
        kwargs = {need: data[need][:n] for need in info.needs}
        assert info.fn is not None
        if info.scope == "network":
            call = lambda a=acts, kw=kwargs: info.fn([a, a], **kw)  # noqa: E731
        else:
            call = lambda a=acts, kw=kwargs: info.fn(a, **kw)  # noqa: E731
        out.append((label, call, message))
    return out


@pytest.mark.parametrize("info", MEASURED, ids=_ids(MEASURED))
def test_rejects_bad_input_with_a_message(info: MetricInfo, data: dict[str, Any]) -> None:
    for label, call, message in _bad_inputs(info, data):
        with pytest.raises(ValueError, match=message):
            call()
        try:
            call()
        except ValueError as err:
            assert info.name in str(err) or "layer" in str(err), (label, str(err))


def test_compute_metrics_logs_layers_keys_and_aggregates(data: dict[str, Any]) -> None:
    names = [info.name for info in MEASURED]
    out = compute_metrics(names, data["layers"], labels=data["labels"], factors=data["factors"])
    for info in MEASURED:
        for output in info.outputs():
            assert math.isfinite(out[output]), output
            if info.scope == "layer":
                for k in range(len(LAYER_WIDTHS)):
                    assert f"{output}/layer_{k}" in out
    # "last" aggregates are the last layer's values
    assert out["mig"] == out[f"mig/layer_{len(LAYER_WIDTHS) - 1}"]


def test_metrics_package_imports_no_search_machinery() -> None:
    forbidden = ("optuna", "lightning", "mlflow", "codenas.spaces", "codenas.search")
    package = Path(codenas.metrics.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert not module.startswith(forbidden), f"{path.name} imports {module}"
