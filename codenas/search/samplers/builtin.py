"""The built-in samplers of ``study.sampler``: Optuna's ``tpe``, ``nsga2``, ``random``, ``gp``
(their options are their keyword arguments) and ``code``, codenas's code-guided sampler
(:mod:`codenas.search.samplers.code`). :data:`codenas.registry.SAMPLERS` names each by its
``"module:attr"`` here; :mod:`codenas.search.samplers.registry` resolves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from codenas.errors import ConfigError
from codenas.search.samplers.registry import OptunaSampler

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config
    from codenas.data import Dataset
    from codenas.spaces import Space


class CodePlugin:
    """``study.sampler: code``: the code-guided sampler of codenas's driver."""

    def check(self, options: Mapping[str, Any], prefix: str = "study.sampler_options.") -> None:
        from codenas.search.samplers.code import check_options

        check_options(options, prefix)

    def make(
        self,
        seed: int | None,
        options: Mapping[str, Any],
        *,
        config: Config | None = None,
        data: Dataset | None = None,
        space: Space | None = None,
    ) -> optuna.samplers.BaseSampler:
        from codenas.search.samplers.driver import code_sampler

        if config is None:
            raise ConfigError("study.sampler: code needs the search's config")
        return code_sampler(config, seed or 0, data=data, space=space)


TPE = OptunaSampler("TPESampler")
NSGA2 = OptunaSampler("NSGAIISampler")
RANDOM = OptunaSampler("RandomSampler")
GP = OptunaSampler("GPSampler")
CODE = CodePlugin()
