"""The registry of samplers a config names in ``study.sampler``: plug-ins of
:data:`codenas.registry.SAMPLERS`, resolved here (the built-in ones live in
:mod:`codenas.search.samplers.builtin`).

A plug-in checks its ``study.sampler_options`` before any study is opened (``check``) and makes
the sampler (``make``). Optuna's own samplers take their options as keyword arguments
(:class:`OptunaSampler`). Another package registers its own with :func:`register_sampler`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from codenas.errors import ConfigError
from codenas.registry import SAMPLERS

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config
    from codenas.data import Dataset
    from codenas.spaces import Space


class SamplerPlugin(Protocol):
    def check(self, options: Mapping[str, Any], prefix: str = "study.sampler_options.") -> None:
        """Raise a one-line :class:`ConfigError` naming the first bad option."""

    def make(
        self,
        seed: int | None,
        options: Mapping[str, Any],
        *,
        config: Config | None = None,
        data: Dataset | None = None,
        space: Space | None = None,
    ) -> optuna.samplers.BaseSampler:
        """The sampler; ``config``, ``data`` and ``space`` for samplers that read them."""


class OptunaSampler:
    """One of ``optuna.samplers`` by class name; its options are its keyword arguments."""

    def __init__(self, class_name: str) -> None:
        self.class_name = class_name

    def _cls(self) -> type:
        import optuna

        return getattr(optuna.samplers, self.class_name)

    def check(self, options: Mapping[str, Any], prefix: str = "study.sampler_options.") -> None:
        try:
            inspect.signature(self._cls()).bind(seed=0, **dict(options))
        except TypeError as err:
            raise ConfigError(f"{prefix.rstrip('.')}: {self.class_name}: {err}") from None

    def make(
        self, seed: int | None, options: Mapping[str, Any], **_context: Any
    ) -> optuna.samplers.BaseSampler:
        from optuna.exceptions import ExperimentalWarning

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return self._cls()(seed=seed, **dict(options))
        except TypeError as err:
            raise ConfigError(f"study.sampler_options: {err}") from None


def get_sampler(name: str) -> SamplerPlugin:
    """The plug-in registered as ``name`` (a ``"module:attr"`` entry is imported now)."""
    entry = SAMPLERS.get(name)
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(import_module(module), attr)
    return entry  # type: ignore[return-value]


def register_sampler(name: str, plugin: SamplerPlugin) -> SamplerPlugin:
    """Make ``plugin`` available as ``study.sampler: name`` (register before loading a config)."""
    return SAMPLERS.add(name, plugin)  # type: ignore[return-value]


def base_sampler_names() -> tuple[str, ...]:
    """The samplers the code sampler can delegate to: every registered one but itself."""
    return tuple(n for n in SAMPLERS if n != "code")
