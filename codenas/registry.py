"""A small name -> object registry, shared by spaces, metrics, datasets and samplers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from codenas.errors import UnknownNameError, unknown_name_message

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered objects.

    Unknown names raise :class:`~codenas.errors.UnknownNameError` with a "did you mean"
    suggestion; registering a name twice raises, so two plug-ins cannot silently shadow each
    other.

    Args:
        kind: what the entries are, as users say it ("metric", "search space", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorator(entry: T) -> T:
            return self.add(name, entry)

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.kind, name, self._entries)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())


SAMPLERS: Registry[object] = Registry("sampler")
"""Sampler name -> its plug-in (:class:`codenas.search.samplers.registry.SamplerPlugin`), or the
``"module:attr"`` path of one, imported only when a search makes the sampler. The config
validates ``study.sampler`` against these names; a package adds its own with
``codenas.search.samplers.register_sampler``."""
for _name in ("tpe", "nsga2", "random", "gp", "code"):
    SAMPLERS.add(_name, f"codenas.search.samplers.builtin:{_name.upper()}")
