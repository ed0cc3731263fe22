"""The typed, frozen config of a search, loaded from YAML and validated before anything runs.

``load_config(path, overrides)`` reads a YAML file (or the packaged default, the digits MLP
search), applies ``key=value`` overrides and validates everything into frozen pydantic models.
Any problem is one :class:`~codenas.errors.ConfigError` naming the file and the key path::

    configs/my.yaml: space.width: min <= max must hold, got min=256 max=8

The ``space:`` and ``data:`` sections are validated by the models of the space and dataset they
name, so a space or dataset brings its own keys without this module knowing them.
"""

from codenas.config.loading import (
    apply_overrides,
    load_config,
    packaged_configs,
    resolve_config_path,
    validate_config,
)
from codenas.config.models import (
    DEFAULT_CONFIG,
    OPTIMIZERS,
    SAMPLERS,
    Config,
    ConstraintConfig,
    MetricsConfig,
    ObjectiveConfig,
    ScheduleConfig,
    SearchConfig,
    StudyConfig,
    TrackingConfig,
    TrainConfig,
)

__all__ = [
    "DEFAULT_CONFIG",
    "OPTIMIZERS",
    "SAMPLERS",
    "Config",
    "ConstraintConfig",
    "MetricsConfig",
    "ObjectiveConfig",
    "ScheduleConfig",
    "SearchConfig",
    "StudyConfig",
    "TrackingConfig",
    "TrainConfig",
    "apply_overrides",
    "load_config",
    "packaged_configs",
    "resolve_config_path",
    "validate_config",
]
