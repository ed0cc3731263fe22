"""The neural code as codenas reads it, apart from any search engine.

One Optuna-free place for what the code-guided sampler, the schedule, ``rightsize``, ``distil``
and the reports all need: how much of each hidden layer a network uses
(:class:`LayerUsage`), the rules that turn that reading into proposals (shrink, drop, widen,
deepen; :func:`plan_layers`), and Pareto ranking and dominance on arrays (moocore). It sits
below ``search/`` and ``decisions/`` and imports neither Optuna nor MLflow.
"""

from codenas.neuralcode.pareto import (
    crowding_distance,
    dominates,
    domination_counts,
    pareto_order,
    pareto_ranks,
    select_spread,
)
from codenas.neuralcode.rules import (
    DEFAULT_CKA_THRESHOLD,
    DEFAULT_GROW_FACTOR,
    DEFAULT_MARGIN,
    DEFAULT_SATURATION,
    RULES,
    LayerPlan,
    Move,
    deepen,
    drop,
    plan_layers,
    shrink,
    widen,
)
from codenas.neuralcode.usage import LayerUsage, usage_from_attr

__all__ = [
    "DEFAULT_CKA_THRESHOLD",
    "DEFAULT_GROW_FACTOR",
    "DEFAULT_MARGIN",
    "DEFAULT_SATURATION",
    "RULES",
    "LayerPlan",
    "LayerUsage",
    "Move",
    "crowding_distance",
    "deepen",
    "dominates",
    "domination_counts",
    "drop",
    "pareto_order",
    "pareto_ranks",
    "plan_layers",
    "select_spread",
    "shrink",
    "usage_from_attr",
    "widen",
]
