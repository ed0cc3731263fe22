"""The sections of a search config as frozen pydantic models, and :class:`Config` itself."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from codenas.errors import CodenasError, ConfigError
from codenas.registry import SAMPLERS
from codenas.schema import Frozen
from codenas.urls import is_server

DEFAULT_CONFIG = "digits-mlp"
OPTIMIZERS = ("adam", "adamw", "sgd")
# Lightning Fabric's names (2.6), kept here so that a config is checked without importing it;
# tests/config/test_config.py compares them with what the installed Fabric accepts.
ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps", "tpu")
PRECISIONS = (
    "32-true", "64-true", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
    "transformer-engine", "transformer-engine-float16", "32", "64", "16", "bf16",
)  # fmt: skip


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds in a duration: ``90s``, ``20m``, ``2h``, ``1.5h`` or a number of seconds.

    Raises:
        ValueError: anything else, or a duration that is not positive.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, 20m, 2h or seconds, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"expected a duration such as 90s, 20m, 2h or a number of seconds, got {value!r}"
            )
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"a duration must be positive and finite, got {value!r}")
    return seconds


class StudyConfig(Frozen):
    """``study:``: the Optuna study and where it is stored.

    ``timeout`` bounds a search's time as ``trials`` bounds its count: no trial starts after
    it (measured from the command's start), the running ones finish. With a ``timeout`` and
    no ``trials`` given, the count is unbounded (``trials: null``); with both, whichever
    comes first ends the search.
    """

    name: str = "digits-mlp"
    trials: int | None = Field(30, ge=1)
    timeout: float | None = None  # seconds; written 90s, 20m, 2h or a number of seconds
    sampler: str = "tpe"
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    storage: str = "sqlite:///optuna.db"
    heartbeat_interval: int = Field(10, ge=1)  # seconds between a running trial's heartbeats
    grace_period: int = Field(60, ge=2)  # seconds without a heartbeat before a trial is stale
    retries: int = Field(1, ge=0)  # re-runs of a trial whose worker died, same parameters
    # Trained weights of the front's members, so reports and edits load instead of re-train
    # (codenas/search/weights.py); the directory defaults to weights/<study name>/ beside a
    # SQLite storage's file.
    keep_weights: bool = True
    weights_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _trials_with_timeout(cls, data: Any) -> Any:
        # A time budget without a trial count: trials until the deadline.
        if isinstance(data, Mapping) and data.get("timeout") is not None and "trials" not in data:
            return {**data, "trials": None}
        return data

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _budget(self) -> StudyConfig:
        if self.trials is None and self.timeout is None:
            raise ValueError(
                "trials: null needs a timeout (a search needs a trial count, a time budget "
                "or both), e.g. study.timeout: 20m"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat(self) -> StudyConfig:
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                "grace_period > heartbeat_interval must hold, got "
                f"grace_period={self.grace_period} heartbeat_interval={self.heartbeat_interval}"
            )
        return self

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str) -> str:
        if value not in SAMPLERS:
            from codenas.errors import unknown_name_message

            raise ValueError(unknown_name_message("sampler", value, SAMPLERS))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a study needs a non-empty name")
        # MLflow filter strings (every run lookup of a study) have no escape inside a quoted
        # value: a name may hold ' or ", not both, and no line break.
        if "'" in value and '"' in value:
            raise ValueError(
                f"{value!r} holds both ' and \", which MLflow cannot search for; drop one"
            )
        if any(c in value for c in "\n\r\t"):
            raise ValueError(f"{value!r} holds a line break or tab; use a one-line name")
        return value


class TrackingConfig(Frozen):
    """``tracking:``: the MLflow backend and experiment."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str | None = None  # default: the study name
    enabled: bool = True
    retry_for: float = Field(300.0, ge=0)  # seconds an unreachable backend is retried
    report: bool = True  # a neural-code report per Pareto member at the end of a search
    report_dir: str | None = None  # default: reports/<study name>/
    # End each trial's run and update the Pareto tags on a background thread, flushed before
    # the search returns (Ctrl-C and SIGTERM included); a trial's metrics are always written
    # before Optuna records it COMPLETE. Default (null): on for a tracking server (http/https),
    # where the thread waits on the network while the next trial trains; off for a local file,
    # where it only competed with training for the interpreter (measured: README Performance).
    background: bool | None = None

    @property
    def writes_in_background(self) -> bool:
        """``background``, or its default for this ``uri``."""
        if self.background is not None:
            return self.background
        return is_server(self.uri)


class TrainConfig(Frozen):
    """``train:``: the brief-training budget and optimiser of every trial."""

    epochs: int = Field(10, ge=1)
    max_steps: int | None = Field(None, ge=1)
    max_time: float | None = Field(None, gt=0)  # seconds
    batch_size: int = Field(64, ge=1)
    optimizer: str = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    accelerator: str = "auto"
    precision: str = "32-true"
    threads: int | None = Field(None, ge=1)  # torch threads per worker; default: cores / workers

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, value: str) -> str:
        return _known_name("optimizer", value, OPTIMIZERS)

    @field_validator("accelerator")
    @classmethod
    def _accelerator(cls, value: str) -> str:
        # Whether this machine has it is checked before a search starts (check_device).
        return _known_name("accelerator", value, ACCELERATORS)

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, value: Any) -> Any:
        value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        return _known_name("precision", value, PRECISIONS) if isinstance(value, str) else value


def _known_name(kind: str, value: str, names: Sequence[str]) -> str:
    if value not in names:
        from codenas.errors import unknown_name_message

        raise ValueError(unknown_name_message(kind, value, names))
    return value


class MetricsConfig(Frozen):
    """``metrics:``: which coding metrics to log besides the objectives, and on how many rows."""

    samples: int = Field(2048, ge=10)
    log: tuple[str, ...] = ("dead_fraction", "effective_rank", "capacity_usage")

    @field_validator("log", mode="before")
    @classmethod
    def _as_tuple(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("log")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from codenas.config.objectives import check_metric_name

        for name in value:
            check_metric_name(name)
        return value


class ObjectiveConfig(Frozen):
    """One objective: a metric name and its direction (default: the metric's own)."""

    metric: str
    direction: Literal["maximize", "minimize"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"metric": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _resolve(self) -> ObjectiveConfig:
        from codenas.config.objectives import check_objective

        direction = check_objective(self.metric, self.direction)
        object.__setattr__(self, "direction", direction)
        return self


_CONSTRAINT = re.compile(r"^\s*([\w./-]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


class ConstraintConfig(Frozen):
    """A constraint ``metric <= bound`` or ``metric >= bound``, given as that string."""

    metric: str
    op: Literal["<=", ">="]
    bound: float

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _CONSTRAINT.match(value)
            if not match:
                raise ValueError(
                    f"expected 'METRIC <= NUMBER' or 'METRIC >= NUMBER', got {value!r}"
                )
            return {"metric": match[1], "op": match[2], "bound": float(match[3])}
        return value

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        from codenas.config.objectives import check_metric_name, check_not_test

        check_metric_name(value)
        return check_not_test(value, "constrain")

    def violation(self, value: float) -> float:
        """Optuna's constraint value: <= 0 when satisfied."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


class ScheduleConfig(Frozen):
    """``search.schedule:``: asynchronous successive halving over epochs, several objectives.

    Rungs at ``min_epochs * eta**k`` epochs below ``train.epochs`` (the top rung); at each a
    trial goes on only if it ranks in the top ``1/eta`` of the trials that reached it (Pareto
    rank, then crowding distance, then trial number), else it stops there, PRUNED. The rule:
    ``codenas/search/schedule.py``.
    """

    min_epochs: int = Field(1, ge=1)  # the first rung
    eta: int = Field(3, ge=2)  # rungs grow by this factor; the top 1/eta of a rung go on
    # below this many trials at a rung every trial goes on (default: eta)
    min_trials: int | None = Field(None, ge=1)
    metrics: tuple[str, ...] | None = None  # compared at a rung; default: the cheap objectives

    @field_validator("metrics", mode="before")
    @classmethod
    def _as_tuple(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("metrics")
    @classmethod
    def _cheap(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        from codenas.config.objectives import check_checkpoint_metric

        if not value:
            raise ValueError("give at least one metric, or leave metrics out for the default")
        for name in value:
            check_checkpoint_metric(name)
        return value


class ScreenConfig(Frozen):
    """``search.screen:``: a zero-cost rung before any training (``codenas/search/screen.py``).

    The sampler draws ``candidates`` architectures per trial; each is scored at initialisation
    by the metric ``score`` (higher better, or lower for a metric registered ``minimize``; or
    a score read through its gradients, ``codenas.metrics.MODEL_SCORES``: ``synflow``,
    ``zico``); the
    best-scored one within a factor ``band`` of the sampler's own proposal's size is trained.
    """

    score: str = "effective_rank"  # chosen on the development tasks: docs/zero-cost.md
    candidates: int = Field(8, ge=2)
    band: float = Field(1.5, gt=1.0)

    @field_validator("score")
    @classmethod
    def _at_init(cls, value: str) -> str:
        from codenas.metrics import MODEL_SCORES, get_metric

        if value in MODEL_SCORES:
            return value  # read through gradients (synflow, zico), not from activations
        try:
            info = get_metric(value)
        except CodenasError as err:  # as a ValueError, pydantic names the key (screen.score)
            raise ValueError(str(err)) from None
        if info.scope == "run" or info.needs or info.direction is None:
            raise ValueError(
                f"{value!r} cannot score an untrained network from its activations alone "
                "(it needs labels, factors or training, or has no better direction); "
                "try effective_rank, activation_code_logdet, naswot, swap, meco, synflow or zico"
            )
        return value


class SearchConfig(Frozen):
    """``search:``: how the search loop treats running trials (the multi-fidelity schedule).

    Part of the study's problem like ``train:``: a stored study continues only with the same
    settings, since they decide which trials complete.
    """

    schedule: ScheduleConfig | None = None  # off; e.g. {min_epochs: 1, eta: 3}
    screen: ScreenConfig | None = None  # off; e.g. {score: effective_rank, candidates: 8}

    @model_validator(mode="before")
    @classmethod
    def _retired_early_stopping(cls, data: Any) -> Any:
        # search.early_stopping (0.1's dominance rule) became the schedule. A stored study's
        # config holds it switched off: that, and only that, still reads (as no schedule).
        if not isinstance(data, Mapping) or "early_stopping" not in data:
            return data
        data = dict(data)
        old = data.pop("early_stopping")
        switched_off = (
            old is None
            or old is False
            or (isinstance(old, Mapping) and old.get("enabled", False) is False)
        )
        if not switched_off:
            warmup = old.get("warmup_epochs", 1) if isinstance(old, Mapping) else 1
            raise ValueError(
                "early_stopping was replaced by search.schedule (successive halving over "
                f"epochs, several objectives): use search.schedule: {{min_epochs: {warmup}, "
                "eta: 3}, or remove early_stopping"
            )
        return data


_DEFAULT_OBJECTIVES = (
    {"metric": "val_accuracy", "direction": "maximize"},
    {"metric": "capacity_usage", "direction": "maximize"},
    {"metric": "params", "direction": "minimize"},
)


class Config(Frozen):
    """A whole search: ``study``, ``data``, ``space``, ``train``, ``metrics``, ``objectives``,
    ``constraints``, ``search`` and ``tracking``."""

    study: StudyConfig = StudyConfig()
    data: SerializeAsAny[Any] = None
    space: SerializeAsAny[Any] = None
    train: TrainConfig = TrainConfig()
    metrics: MetricsConfig = MetricsConfig()
    objectives: tuple[ObjectiveConfig, ...] = Field(default=_DEFAULT_OBJECTIVES, min_length=1)
    constraints: tuple[ConstraintConfig, ...] = ()
    search: SearchConfig = SearchConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("objectives")
    @classmethod
    def _unique(cls, value: tuple[ObjectiveConfig, ...]) -> tuple[ObjectiveConfig, ...]:
        names = [o.metric for o in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"each metric may be an objective once, got {', '.join(dupes)} twice")
        return value

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or self.study.name

    @property
    def objective_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [str(o.direction) for o in self.objectives]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; ``Config.from_dict(c.to_dict()) == c``."""
        return json.loads(self.model_dump_json())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<config>") -> Config:
        return validate_config(data, source)

    def problem(self) -> dict[str, Any]:
        """The parts that define what the study measures (all but ``study`` and ``tracking``).

        A stored study is continued only with a config whose problem is the same.
        """
        out = self.to_dict()
        out.pop("study")
        out.pop("tracking")
        return out


# ----------------------------------------------------------------------------- validation


def _key_path(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "":
            out += f".{part}" if out else str(part)
    return out


def _format_error(source: str, prefix: str, err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    loc = _key_path((*([prefix] if prefix else []), *first["loc"]))
    msg = str(first["msg"])
    for noise in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(noise)
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
        parent, _, key = loc.rpartition(".")
        return f"{source}: {loc}: unknown key {key!r}" + (f" in {parent!r}" if parent else "")
    if first["type"] == "missing":
        return f"{source}: {loc}: required key is missing"
    if "input" in first and first["type"] not in ("value_error", "assertion_error"):
        shown = first["input"]
        if isinstance(shown, (dict, list)) and len(repr(shown)) > 60:
            shown = type(shown).__name__
        msg = f"{msg}, got {shown!r}"
    return f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}"


def _validate(model: type[Frozen], data: Any, source: str, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, prefix, err)) from None
    except CodenasError as err:  # a registry lookup inside a validator
        raise ConfigError(f"{source}: {prefix}: {err}") from None


def _section(raw: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def validate_config(raw: Any, source: str = "<config>") -> Config:
    """Validate a parsed YAML mapping into a :class:`Config` (see :func:`load_config`)."""
    from codenas.data import DATASETS
    from codenas.spaces import DEFAULT_SPACE, SPACES

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(raw).__name__}")
    raw = dict(raw)
    data_raw = _section(raw, "data", source)
    space_raw = _section(raw, "space", source)
    try:
        entry = DATASETS.get(str(data_raw.get("name", "digits")))
        space_cls = SPACES.get(str(space_raw.get("name", DEFAULT_SPACE)))
    except CodenasError as err:
        key = "data.name" if "dataset" in str(err) else "space.name"
        raise ConfigError(f"{source}: {key}: {err}") from None
    data_raw.setdefault("name", entry.name)
    space_raw.setdefault("name", space_cls.name)
    raw["data"] = _validate(entry.config_model, data_raw, source, "data")
    raw["space"] = _validate(space_cls.config_model, space_raw, source, "space")
    config = _validate(Config, raw, source, "")
    return config
