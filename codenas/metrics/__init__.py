"""Coding metrics: pure functions over activation matrices of shape ``(n_samples, n_units)``.

Knows nothing of Optuna, Lightning or MLflow. To add a metric, write one function decorated
with :func:`register_metric` in the file of its family and import that file here. Families:

- :mod:`~codenas.metrics.capacity`: dead units, effective rank, participation ratio, sparsity,
  intrinsic dimension;
- :mod:`~codenas.metrics.redundancy`: linear CKA between layers;
- :mod:`~codenas.metrics.codes`: binary on/off activation codes (NASWOT, SWAP) and MeCo;
- :mod:`~codenas.metrics.disentanglement`: MIG, DCI, SAP, modularity against known factors;
- :mod:`~codenas.metrics.labels`: class selectivity, label information, linear probes;
- :mod:`~codenas.metrics.gradients`: synflow and ZiCo, scores of an untrained network read
  through its gradients (not its activations: ``MODEL_SCORES``, which the zero-cost rung reads
  by name).
"""

from codenas.metrics._common import discrete_entropy
from codenas.metrics.capacity import (
    capacity_usage,
    dead_fraction,
    effective_rank,
    hoyer_sparsity,
    participation_ratio,
    twonn_dimension,
)
from codenas.metrics.capture import Captured, capture_activations, capture_layers
from codenas.metrics.codes import (
    activation_code_logdet,
    correlation_min_eigenvalue,
    meco,
    naswot,
    naswot_channel_mean,
    swap,
    unique_codes_fraction,
)
from codenas.metrics.compute import compute_metrics, reads_codes
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
from codenas.metrics.gradients import MODEL_SCORES, synflow, zico
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
    "MODEL_SCORES",
    "Captured",
    "MetricInfo",
    "activation_code_logdet",
    "all_outputs",
    "capacity_usage",
    "capture_activations",
    "capture_layers",
    "cka_matrix",
    "class_selectivity",
    "compute_metrics",
    "correlation_min_eigenvalue",
    "dci",
    "dci_forest",
    "dci_from_importance",
    "dead_fraction",
    "discrete_entropy",
    "effective_rank",
    "get_metric",
    "hoyer_sparsity",
    "label_information_per_unit",
    "layer_code",
    "layer_redundancy",
    "linear_cka",
    "linear_probe_accuracy",
    "meco",
    "mig",
    "modularity",
    "modularity_from_mi",
    "mutual_information_matrix",
    "naswot",
    "naswot_channel_mean",
    "participation_ratio",
    "reads_codes",
    "register_metric",
    "register_run_metric",
    "sap",
    "sap_continuous",
    "selectivity_index",
    "swap",
    "synflow",
    "twonn_dimension",
    "unique_codes_fraction",
    "unit_label_information",
    "zico",
]
