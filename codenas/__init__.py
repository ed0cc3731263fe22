"""codenas: neural-architecture search guided by the neural code.

    >>> import codenas
    >>> config = codenas.load_config()            # the packaged digits MLP search
    >>> study = codenas.search.run(config, n_trials=5)
    >>> codenas.search.front(study)

The package reads as its data flow (docs/architecture.md): :mod:`codenas.config` ->
:mod:`codenas.spaces` (trial -> spec -> module) -> :mod:`codenas.data` -> :mod:`codenas.metrics`
(coding metrics over activations) -> :mod:`codenas.training` -> :mod:`codenas.evaluation` ->
:mod:`codenas.search` (Optuna) -> :mod:`codenas.tracking` (MLflow) -> :mod:`codenas.decisions`
-> :mod:`codenas.workflows` and :mod:`codenas.cli`.
"""

from __future__ import annotations

from codenas import decisions, evaluation, metrics, search, spaces, tracking
from codenas.config import Config, load_config
from codenas.errors import CodenasError, ConfigError, DataError, StorageError

__version__ = "0.1.0"

__all__ = [
    "CodenasError",
    "Config",
    "ConfigError",
    "DataError",
    "StorageError",
    "__version__",
    "decisions",
    "evaluation",
    "load_config",
    "metrics",
    "search",
    "spaces",
    "tracking",
]
