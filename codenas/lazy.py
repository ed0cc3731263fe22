"""Lazy public names for a package: ``import codenas.decisions`` stays cheap until used."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_getattr(
    package: str,
    exports: Mapping[str, str],
    *,
    aliases: Mapping[str, str] | None = None,
    moved: Mapping[str, str] | None = None,
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each public name from its module on first use.

    Args:
        package: the package's name, for error messages.
        exports: public name -> the module that defines it.
        aliases: public name -> its name in that module, where they differ.
        moved: names that moved to another package (public name -> that package): they still
            resolve, with a ``DeprecationWarning`` naming the new home.
    """
    aliases = dict(aliases or {})
    moved = dict(moved or {})

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), aliases.get(name, name))
        if name in moved:
            home = moved[name]
            warnings.warn(
                f"{package}.{name} moved to {home}.{name}; the old name goes in codenas 0.3",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(import_module(home), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
