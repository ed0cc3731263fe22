"""codenas: neural-architecture search guided by the neural code.

    >>> import codenas
    >>> config = codenas.load_config()            # the packaged digits MLP search
    >>> study = codenas.search.run(config, n_trials=5)
    >>> codenas.search.front(study)

Subpackages: :mod:`codenas.spaces` (trial -> spec -> module), :mod:`codenas.metrics` (coding
metrics over activations) and :mod:`codenas.search` (the driver).
"""

from __future__ import annotations

from codenas import metrics, search, spaces
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
    "load_config",
    "metrics",
    "search",
    "spaces",
]
