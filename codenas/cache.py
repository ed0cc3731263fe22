"""codenas's cache directory, and atomic writes into it.

What a fresh directory would otherwise recompute on every command lives here, once per machine:
the empty MLflow database of the installed MLflow (:mod:`codenas.tracking.fresh_db`) and the
split, standardised tensors of the bundled and generated datasets (:mod:`codenas.data.cache`).
``$CODENAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/codenas``, else ``~/.cache/codenas``; deleting it
is always safe.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """codenas's cache directory: ``$CODENAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/codenas``,
    else ``~/.cache/codenas``."""
    if os.environ.get("CODENAS_CACHE_DIR"):
        return Path(os.environ["CODENAS_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "codenas"
