"""The metric registry: every coding metric by name, with its direction and what it needs.

A metric is registered with one of three scopes:

``layer``
    ``fn(acts, **needs) -> float | dict`` on one hidden layer's activations of shape
    ``(n_samples, n_units)``. It is computed for every hidden layer, logged as ``name/layer_k``
    (k from 0), and aggregated into ``name`` by its ``aggregate`` rule.
``network``
    ``fn(list_of_acts, **needs) -> float | dict`` over all hidden layers at once (e.g. CKA
    redundancy between consecutive layers), logged as ``name``.
``run``
    produced by training, not by activations (``val_accuracy``, ``params``, ...). The search
    registers these; ``fn`` is ``None`` here.

``needs`` names extra keyword arguments a metric takes: ``"labels"`` (an ``(n_samples,)``
integer array) or ``"factors"`` (an ``(n_samples, n_factors)`` integer array). A metric whose
value is a dict declares its ``keys``; each key is logged as ``name.key`` (and
``name.key/layer_k``) and can be named as an objective.

``reads`` is ``"units"`` (the default: a convolutional layer's units are its channels, each
summarised by its spatial mean) or ``"codes"``: the metric reads the boolean per-position codes
of :func:`codenas.metrics.capture.capture_layers` (every channel at every spatial position of a
convolutional layer; the thresholded units of a dense one), as NASWOT is defined.

``direction`` is ``"maximize"``, ``"minimize"`` or ``None`` for measures where neither is a
virtue (class selectivity): an objective on such a metric must state its direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

from codenas.registry import Registry

Direction = Literal["maximize", "minimize"]
Scope = Literal["layer", "network", "run"]
Aggregate = Literal["mean", "min", "max", "last", "weighted"]
Reads = Literal["units", "codes"]
NEEDS = ("labels", "factors")


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """One registered metric.

    Attributes:
        name: the name configs use.
        fn: the function (``None`` for ``run`` metrics, which training produces).
        direction: ``"maximize"``, ``"minimize"`` or ``None``.
        scope: ``"layer"``, ``"network"`` or ``"run"``.
        needs: extra inputs, a subset of ``("labels", "factors")``.
        aggregate: how per-layer values combine into ``name`` (``layer`` scope): ``mean``,
            ``min``, ``max``, ``last`` (the layer feeding the head) or ``weighted`` (mean
            weighted by layer width, i.e. a share over all units).
        keys: names of the entries of a dict-valued metric, else ``None``.
        summary: one line for ``codenas metrics``.
        reads: ``"units"`` (channel means for conv layers) or ``"codes"`` (per-position
            binary codes; see the module docstring).
    """

    name: str
    fn: Callable[..., Any] | None
    direction: Direction | None
    scope: Scope = "layer"
    needs: tuple[str, ...] = ()
    aggregate: Aggregate = "mean"
    keys: tuple[str, ...] | None = None
    summary: str = ""
    reads: Reads = "units"

    def outputs(self) -> tuple[str, ...]:
        """Every aggregate name this metric logs: ``name`` or ``name.key`` for each key."""
        if self.keys is None:
            return (self.name,)
        return tuple(f"{self.name}.{key}" for key in self.keys)


METRICS: Registry[MetricInfo] = Registry("metric")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if doc and doc.strip() else ""


def register_metric(
    name: str,
    *,
    direction: Direction | None,
    scope: Scope = "layer",
    needs: Sequence[str] = (),
    aggregate: Aggregate = "mean",
    keys: Sequence[str] | None = None,
    summary: str | None = None,
    reads: Reads = "units",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a metric function under ``name`` (see the module docstring)."""
    bad = [n for n in needs if n not in NEEDS]
    if bad:
        raise ValueError(f"needs must be among {NEEDS}, got {bad}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        METRICS.add(
            name,
            MetricInfo(
                name=name,
                fn=fn,
                direction=direction,
                scope=scope,
                needs=tuple(needs),
                aggregate=aggregate,
                keys=tuple(keys) if keys is not None else None,
                summary=summary or _first_line(fn.__doc__),
                reads=reads,
            ),
        )
        return fn

    return decorator


def register_run_metric(
    name: str, *, direction: Direction | None, summary: str, needs: Sequence[str] = ()
) -> MetricInfo:
    """Register a metric that training produces (no function to call)."""
    return METRICS.add(
        name,
        MetricInfo(
            name=name,
            fn=None,
            direction=direction,
            scope="run",
            needs=tuple(needs),
            summary=summary,
        ),
    )


def get_metric(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of ``name``; ``"dci.completeness"`` resolves to ``dci``."""
    base = name.split(".", 1)[0] if name not in METRICS and "." in name else name
    info = METRICS.get(base)
    if base != name:
        key = name.split(".", 1)[1]
        if info.keys is None or key not in info.keys:
            from codenas.errors import UnknownNameError, unknown_name_message

            raise UnknownNameError(unknown_name_message("metric", name, all_outputs()))
    return info


def all_outputs() -> list[str]:
    """Every name an objective can refer to."""
    return sorted(out for _, info in METRICS.items() for out in info.outputs())
