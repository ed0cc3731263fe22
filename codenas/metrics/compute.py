"""Compute a set of registered metrics on the hidden layers of one network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from codenas.metrics.capacity import shared_spectra
from codenas.metrics.registry import MetricInfo, get_metric


def _aggregate(info: MetricInfo, values: Sequence[float], widths: Sequence[int]) -> float:
    arr = np.asarray(values, dtype=float)
    if info.aggregate == "mean":
        return float(np.mean(arr))
    if info.aggregate == "min":
        return float(np.min(arr))
    if info.aggregate == "max":
        return float(np.max(arr))
    if info.aggregate == "last":
        return float(arr[-1])
    if info.aggregate == "weighted":
        return float(np.average(arr, weights=np.asarray(widths, dtype=float)))
    raise ValueError(f"unknown aggregate {info.aggregate!r}")


def _flatten(name: str, value: Any, suffix: str = "") -> dict[str, float]:
    if isinstance(value, dict):
        return {f"{name}.{k}{suffix}": float(v) for k, v in value.items() if np.isscalar(v)}
    return {f"{name}{suffix}": float(value)}


def reads_codes(names: Iterable[str]) -> bool:
    """Whether any of the metrics ``names`` reads the per-position codes (``reads="codes"``)."""
    return any(get_metric(name).reads == "codes" for name in names)


def compute_metrics(
    names: Iterable[str],
    layers: Sequence[np.ndarray],
    *,
    labels: np.ndarray | None = None,
    factors: np.ndarray | None = None,
    codes: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """Values of the metrics ``names`` over hidden ``layers``.

    Args:
        names: registered metric names (``run`` metrics and ``name.key`` forms are skipped or
            resolved to their metric; each metric is computed once).
        layers: one ``(n_samples, n_units)`` array per hidden layer, first to last.
        labels: ``(n_samples,)`` integer class labels, for metrics that need them.
        factors: ``(n_samples, n_factors)`` integer generative factors, for metrics that
            need them.
        codes: one boolean ``(n_code_rows, n_code_units)`` array per layer, the per-position
            codes of :func:`codenas.metrics.capture.capture_layers`, read by the metrics
            registered with ``reads="codes"`` (NASWOT). Default ``layers`` themselves, which is
            right for dense layers only: for a CNN pass the codes, or NASWOT reads channel
            means.

    Returns:
        A flat dict: ``name`` (aggregate), ``name/layer_k`` for layer metrics, and ``name.key``
        (``name.key/layer_k``) for dict-valued metrics.

    Raises:
        ValueError: if a metric needs labels or factors that were not given.
    """
    with shared_spectra():  # each layer's eigendecomposition serves every capacity metric
        return _compute(names, layers, {"labels": labels, "factors": factors}, codes)


def _compute(
    names: Iterable[str],
    unit_layers: Sequence[np.ndarray],
    extras: dict[str, np.ndarray | None],
    codes: Sequence[np.ndarray] | None,
) -> dict[str, float]:
    out: dict[str, float] = {}
    seen: set[str] = set()
    for requested in names:
        info = get_metric(requested)
        if info.name in seen or info.scope == "run":
            continue
        seen.add(info.name)
        missing = [n for n in info.needs if extras[n] is None]
        if missing:
            raise ValueError(
                f"metric {info.name!r} needs {', '.join(missing)}, which were not given"
            )
        kwargs = {n: extras[n] for n in info.needs}
        assert info.fn is not None
        layers = codes if info.reads == "codes" and codes is not None else unit_layers
        if info.scope == "network":
            out.update(_flatten(info.name, info.fn(layers, **kwargs)))
            continue
        per_layer = [info.fn(acts, **kwargs) for acts in layers]
        widths = [acts.shape[1] for acts in layers]
        for k, value in enumerate(per_layer):
            out.update(_flatten(info.name, value, f"/layer_{k}"))
        if info.keys is None:
            out[info.name] = _aggregate(info, per_layer, widths)
        else:
            for key in info.keys:
                out[f"{info.name}.{key}"] = _aggregate(info, [v[key] for v in per_layer], widths)
    return out
