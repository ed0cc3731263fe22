"""Lightning Fabric, imported without what its import pulls in and codenas never uses.

``import lightning.fabric`` runs the ``lightning`` package's ``__init__``, which imports all of
``lightning.pytorch`` (the Trainer, its callbacks, ``torchmetrics.Metric``). The same Fabric
ships as the top-level package ``lightning_fabric`` (in the ``pytorch-lightning``
distribution that ``lightning`` requires), which imports none of that. One line of it still
imports ``torchmetrics`` (every domain's metrics, with ``scipy.signal`` and matplotlib: about
1.1 s of a start-up of 4): ``lightning_fabric.utilities.imports`` compares its version, for
``SpikeDetection`` only. While Fabric imports, a stand-in module that carries only
``torchmetrics.__version__`` (the installed distribution's version, so that comparison gives
what it would give) answers that import; it is removed as soon as Fabric is in, and the next
``import torchmetrics`` (R² on a regression task) loads the real package.

What could not be avoided (``python -X importtime``): ``torch._dynamo`` (about 1 s), which
``lightning_fabric.wrappers`` imports at module level for ``OptimizedModule``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import types
from typing import Any

__all__ = ["Fabric", "import_fabric"]


def import_fabric() -> type[Any]:
    """The ``Fabric`` class: ``lightning_fabric``'s, imported without loading ``torchmetrics``,
    where that package is installed; else ``lightning.fabric``'s, imported as it is (its
    parent package needs the real ``torchmetrics``)."""
    try:
        module = _import_without_torchmetrics("lightning_fabric")
    except ModuleNotFoundError as err:
        if err.name != "lightning_fabric":
            raise
        module = importlib.import_module("lightning.fabric")
    return module.Fabric  # type: ignore[no-any-return]


def _import_without_torchmetrics(package: str) -> types.ModuleType:
    if package in sys.modules or "torchmetrics" in sys.modules:
        return importlib.import_module(package)
    try:
        version = importlib.metadata.version("torchmetrics")
    except importlib.metadata.PackageNotFoundError:  # Fabric's comparison then says False
        return importlib.import_module(package)
    stand_in = types.ModuleType("torchmetrics")
    stand_in.__version__ = version  # type: ignore[attr-defined]
    sys.modules["torchmetrics"] = stand_in
    try:
        return importlib.import_module(package)
    finally:
        if sys.modules.get("torchmetrics") is stand_in:
            del sys.modules["torchmetrics"]


Fabric = import_fabric()
