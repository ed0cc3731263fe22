"""Metrics that training produces, and the rules for naming metrics in a config.

The coding metrics live in :mod:`codenas.metrics`; the ones registered here come from the brief
training itself. ``test_*`` values are logged for every trial but can never be an objective or a
constraint: the test split is not used for selection.
"""

from __future__ import annotations

from codenas.errors import ConfigError, unknown_name_message
from codenas.metrics import all_outputs, get_metric, register_run_metric

register_run_metric(
    "val_accuracy", direction="maximize", summary="accuracy on the validation split after training"
)
register_run_metric(
    "val_loss", direction="minimize", summary="loss on the validation split after training"
)
register_run_metric(
    "test_accuracy",
    direction="maximize",
    summary="accuracy on the test split (logged, never optimised)",
)
register_run_metric(
    "test_loss", direction="minimize", summary="loss on the test split (logged, never optimised)"
)
register_run_metric(
    "train_loss", direction="minimize", summary="mean training loss over the last epoch"
)
register_run_metric("params", direction="minimize", summary="number of trainable parameters")
# Derived from the brief training's validation loss (formula, and how the dead-unit term was
# retired: codenas/evaluation/early_score.py, docs/proxy-quality.md).
register_run_metric(
    "early_score",
    direction="maximize",
    summary="-ln(val_loss) after the brief training (the dead-unit term retired on held-out tasks)",
)
register_run_metric(
    "val_r2",
    direction="maximize",
    summary="R² (coefficient of determination) on the validation split; regression only",
)
register_run_metric(
    "test_r2",
    direction="maximize",
    summary="R² on the test split; regression only (logged, never optimised)",
)

CLASSIFICATION_ONLY = ("val_accuracy", "test_accuracy")
REGRESSION_ONLY = ("val_r2", "test_r2")


def check_metric_name(name: str) -> str:
    """Raise a "did you mean" error unless ``name`` is a registered metric (or ``name.key``)."""
    try:
        get_metric(name)
    except KeyError:
        # The names a config can use: test_* are logged for every trial but never selected on.
        usable = [n for n in all_outputs() if not n.startswith("test_")]
        raise ValueError(
            unknown_name_message("metric", name, usable)
            + " (test_* values are logged for every trial, never optimised)"
        ) from None
    return name


def is_test_metric(name: str) -> bool:
    """Whether ``name`` (``metric`` or ``metric/key``) is measured on the test split."""
    return name.startswith("test_")


def check_not_test(name: str, use: str = "optimise") -> str:
    """Raise ``ValueError`` for a ``test_*`` metric: the test split never steers selection.

    Objectives, constraints, pick requirements and preferences all select architectures;
    ``test_*`` values are logged for reporting only, so that the test error of the chosen
    network stays an unbiased estimate.

    Args:
        name: the metric name.
        use: the verb for the fix, e.g. ``"optimise"`` or ``"constrain"``.
    """
    if is_test_metric(name):
        valid = "val_" + name.removeprefix("test_").split("/")[0]
        raise ValueError(
            f"{name!r} is measured on the test split, which is never used for selection "
            f"(test values are logged for reporting only); {use} a validation metric "
            f"(e.g. {valid}) instead"
        )
    return name


def check_objective(metric: str, direction: str | None) -> str:
    """Validate an objective and return its direction (the metric's own when not given)."""
    check_metric_name(metric)
    check_not_test(metric)
    info = get_metric(metric)
    if direction is None:
        if info.direction is None:
            raise ValueError(
                f"metric {metric!r} has no better direction (higher is not better, nor lower); "
                "give one: direction: maximize or minimize"
            )
        return info.direction
    return direction


def check_against_dataset(names: list[str], *, task: str, has_factors: bool, source: str) -> None:
    """Refuse metrics the dataset cannot feed (factors it lacks, accuracy on regression)."""
    for name in names:
        info = get_metric(name)
        if "factors" in info.needs and not has_factors:
            raise ConfigError(
                f"{source}: metric {name!r} needs known generative factors, which this dataset "
                "does not have (datasets with factors: shapes, factors, or npz/csv with factors)"
            )
        if task != "classification" and ("labels" in info.needs or name in CLASSIFICATION_ONLY):
            raise ConfigError(
                f"{source}: metric {name!r} needs class labels, but this dataset is a {task} task"
            )
        if task != "regression" and name in REGRESSION_ONLY:
            raise ConfigError(
                f"{source}: metric {name!r} measures a regression, but this dataset is a "
                f"{task} task (use val_accuracy or val_loss)"
            )


__all__ = [
    "all_outputs",
    "check_against_dataset",
    "check_metric_name",
    "check_not_test",
    "check_objective",
    "is_test_metric",
]


# ----------------------------------------------------------------------------- checkpoints
# (``search.schedule``: what can be compared at a rung, after an epoch; codenas/search/schedule.py)

# Produced by the training loop at every epoch end (no activations needed).
RUN_AT_CHECKPOINT = ("val_accuracy", "val_loss", "val_r2", "params")
# Cheap enough to read after every epoch: milliseconds on 2,048 rows x 256 units
# (benchmarks/results/metrics_cost.json), against tens of milliseconds for an epoch of the
# smallest search. Derived ``early_score`` needs effective ranks only.
CHECKPOINT_METRICS = (
    *RUN_AT_CHECKPOINT,
    "early_score",
    "dead_fraction",
    "effective_rank",
    "participation_ratio",
    "capacity_usage",
    "layer_redundancy",
    "activation_code_logdet",
    "naswot",
    "unique_codes_fraction",
    "hoyer_sparsity",
    "mig",
)


def check_checkpoint_metric(name: str) -> str:
    """Raise ``ValueError`` unless ``name`` can be read at a checkpoint."""
    if name not in CHECKPOINT_METRICS:
        raise ValueError(
            f"{name!r} cannot be read after every epoch (too slow, or not produced there); "
            f"checkpoint metrics: {', '.join(CHECKPOINT_METRICS)}"
        )
    return name
