"""Coding metrics: pure functions over activation matrices of shape ``(n_samples, n_units)``.

Knows nothing of Optuna, Lightning or MLflow. To add a metric, write one function decorated
with :func:`register_metric` in the file of its family and import that file here. Families:

- :mod:`~codenas.metrics.capacity`: dead units, effective rank, participation ratio, sparsity,
  intrinsic dimension;
- :mod:`~codenas.metrics.redundancy`: linear CKA between layers;
- :mod:`~codenas.metrics.codes`: binary on/off activation codes (NASWOT);
- :mod:`~codenas.metrics.disentanglement`: MIG, DCI, SAP, modularity against known factors;
- :mod:`~codenas.metrics.labels`: class selectivity, label information, linear probes.
"""

from codenas.metrics.capacity import (
    capacity_usage,
    dead_fraction,
    effective_rank,
    hoyer_sparsity,
    participation_ratio,
    twonn_dimension,
)
from codenas.metrics.capture import capture_activations
from codenas.metrics.codes import activation_code_logdet, naswot, unique_codes_fraction
from codenas.metrics.compute import compute_metrics
from codenas.metrics.disentanglement import (
    dci,
    dci_forest,
    dci_from_importance,
    mig,
    modularity,
    modularity_from_mi,
    mutual_information_matrix,
    sap,
    sap_continuous,
)
from codenas.metrics.labels import (
    class_selectivity,
    label_information_per_unit,
    linear_probe_accuracy,
    selectivity_index,
    unit_label_information,
)
from codenas.metrics.layers import layer_code
from codenas.metrics.redundancy import cka_matrix, layer_redundancy, linear_cka
from codenas.metrics.registry import (
    METRICS,
    MetricInfo,
    all_outputs,
    get_metric,
    register_metric,
    register_run_metric,
)

__all__ = [
    "METRICS",
    "MetricInfo",
    "activation_code_logdet",
    "all_outputs",
    "capacity_usage",
    "capture_activations",
    "cka_matrix",
    "class_selectivity",
    "compute_metrics",
    "dci",
    "dci_forest",
    "dci_from_importance",
    "dead_fraction",
    "effective_rank",
    "get_metric",
    "hoyer_sparsity",
    "label_information_per_unit",
    "layer_code",
    "layer_redundancy",
    "linear_cka",
    "linear_probe_accuracy",
    "mig",
    "modularity",
    "modularity_from_mi",
    "mutual_information_matrix",
    "naswot",
    "participation_ratio",
    "register_metric",
    "register_run_metric",
    "sap",
    "sap_continuous",
    "selectivity_index",
    "twonn_dimension",
    "unique_codes_fraction",
    "unit_label_information",
]
