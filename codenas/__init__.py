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

from importlib import import_module
from typing import TYPE_CHECKING, Any

from codenas.errors import CodenasError, ConfigError, DataError, StorageError

if TYPE_CHECKING:
    from codenas import decisions, evaluation, metrics, search, spaces, tracking, workflows
    from codenas.config import Config, load_config

__version__ = "0.2.0.dev0"

# Imported on first use, so that `codenas --help` and `import codenas.errors` do not pay for
# torch, scipy and MLflow.
_SUBPACKAGES = (
    "config",
    "data",
    "decisions",
    "evaluation",
    "metrics",
    "search",
    "spaces",
    "tracking",
    "training",
    "workflows",
)
_FROM_CONFIG = ("Config", "load_config")

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
    "workflows",
]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return import_module(f"codenas.{name}")
    if name in _FROM_CONFIG:
        return getattr(import_module("codenas.config"), name)
    raise AttributeError(f"module 'codenas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES, *_FROM_CONFIG})
