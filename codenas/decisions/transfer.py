"""Train a picked architecture fully, on its own task or another.

(Seeding a new search with a study's front is :mod:`codenas.decisions.seeding`.)

* :func:`train` trains one spec (a file written by ``codenas pick --out``, or any spec) on any
  dataset the config system knows, the user's own files included. The spec is adapted to the
  dataset's input shape and number of outputs (:meth:`Spec.adapt`: same layers, new input and
  head). The run is logged to MLflow like any training: parameters, validation and test
  metrics, the coding metrics of the trained network, and the model itself in MLflow's PyTorch
  flavour (``mlflow.pytorch.load_model("runs:/<run_id>/model")`` reloads it).

A spec file is YAML (or JSON)::

    spec: {space: mlp, input_shape: [1, 8, 8], n_outputs: 10, widths: [64, 32], ...}
    source: {study: digits-mlp, trial: 7, mlflow_run_id: ..., rule: ...}   # optional
    data: {...}    # optional: the study's data, train and metrics sections, the defaults
    train: {...}   # of `codenas train`
    metrics: {...}

A bare spec mapping (``{space: mlp, ...}``) is accepted too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from codenas.errors import ConfigError, first_line
from codenas.spaces import Spec, spec_from_dict

if TYPE_CHECKING:
    from torch import nn

    from codenas.config import Config
    from codenas.data import Dataset

DEFAULT_EXPERIMENT = "codenas-train"
CONFIG_SECTIONS = ("data", "train", "metrics")
# Coding metrics measured on every trained network, where the data can feed them.
CODE_METRICS = (
    "effective_rank",
    "dead_fraction",
    "participation_ratio",
    "capacity_usage",
    "layer_redundancy",
)
LABEL_METRICS = ("class_selectivity", "unit_label_information", "linear_probe_accuracy")
FACTOR_METRICS = ("mig", "dci_forest")


# ----------------------------------------------------------------------------- spec files


@dataclasses.dataclass(frozen=True)
class SpecFile:
    """A spec read from a file, with the config sections and provenance stored beside it.

    Attributes:
        spec: the architecture.
        sections: ``data``, ``train``, ``metrics`` config sections found in the file.
        source: where the spec came from (study, trial, MLflow run, rule), if recorded.
        path: the file.
    """

    spec: Spec
    sections: dict[str, Any]
    source: dict[str, Any]
    path: str


def load_spec_file(path: str | Path) -> SpecFile:
    """Read a spec file (see the module docstring).

    Raises:
        ConfigError: a missing file, invalid YAML/JSON or an invalid spec, naming the file.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the spec: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML/JSON: {first_line(err, None)}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a spec file must be a mapping, got {type(raw).__name__}")
    if "spec" in raw:
        unknown = sorted(set(raw) - {"spec", "source", *CONFIG_SECTIONS})
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(unknown)}; a spec file has spec, source, "
                + ", ".join(CONFIG_SECTIONS)
            )
        body = raw["spec"]
        sections = {k: raw[k] for k in CONFIG_SECTIONS if raw.get(k) is not None}
        source = dict(raw.get("source") or {})
    else:
        body, sections, source = raw, {}, {}
    try:
        spec = spec_from_dict(body)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except KeyError as err:  # an unknown space name
        raise ConfigError(f"{path}: spec.space: {err}") from None
    return SpecFile(spec=spec, sections=sections, source=source, path=str(path))


def dump_spec_file(
    spec: Spec,
    *,
    source: Mapping[str, Any] | None = None,
    config: Config | None = None,
    header: Sequence[str] = (),
) -> str:
    """The YAML text of a spec file; ``config`` contributes its data/train/metrics sections."""
    doc: dict[str, Any] = {"spec": spec.to_dict()}
    if source:
        doc["source"] = dict(source)
    if config is not None:
        data = config.to_dict()
        for key in CONFIG_SECTIONS:
            doc[key] = data[key]
    lines = [f"# {line}" for line in header]
    body = yaml.dump(doc, Dumper=_SpecDumper, sort_keys=False, width=100)
    return "\n".join([*lines, body]) if lines else body


class _SpecDumper(yaml.SafeDumper):
    """Mappings in block style, lists on one line (``widths: [64, 32]``)."""


_SpecDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def write_spec_file(path: str | Path, spec: Spec, **kwargs: Any) -> Path:
    """Write :func:`dump_spec_file` to ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_spec_file(spec, **kwargs), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- training


def train_config(
    spec_file: SpecFile | None = None,
    *,
    data: str | None = None,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> Config:
    """The config of a full training.

    Built in this order: the packaged default config; the ``data``/``train``/``metrics``
    sections stored in the spec file (the study's); ``data`` (a dataset name, whose defaults
    replace the data section, or a config file / packaged config name, whose data, train and
    metrics sections are used); training limits ``max_steps``/``max_time`` removed (a full
    training is bounded by epochs); ``epochs``; then the ``key=value`` ``overrides``.

    Raises:
        ConfigError: an unknown dataset or config, or an invalid result.
    """
    from codenas.config import (
        DEFAULT_CONFIG,
        apply_overrides,
        load_config,
        packaged_configs,
        validate_config,
    )
    from codenas.data import DATASETS

    raw = load_config(DEFAULT_CONFIG).to_dict()
    if spec_file is not None:
        for key, value in spec_file.sections.items():
            raw[key] = dict(value)
    source = spec_file.path if spec_file is not None else "codenas train"
    if data is not None:
        if Path(data).is_file() or data.removesuffix(".yaml") in packaged_configs():
            other = load_config(data).to_dict()
            for key in CONFIG_SECTIONS:
                raw[key] = other[key]
            source = data
        elif data in DATASETS:
            raw["data"] = {"name": data}
        else:
            from codenas.errors import unknown_name_message

            raise ConfigError(
                f"--data {data!r}: neither a config file nor a dataset. "
                + unknown_name_message("dataset", data, list(DATASETS)).removeprefix(
                    f"unknown dataset {data!r}. "
                )
                + f"; packaged configs: {', '.join(packaged_configs())}"
            )
    raw["train"] = {**raw.get("train", {}), "max_steps": None, "max_time": None}
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"--epochs: must be at least 1, got {epochs}")
        raw["train"]["epochs"] = epochs
    raw["objectives"] = ["val_loss"]  # a full training selects nothing: any valid objective
    raw["constraints"] = []
    raw["study"] = {"name": "codenas-train"}
    raw["tracking"] = {
        "uri": tracking_uri or raw.get("tracking", {}).get("uri", "sqlite:///mlflow.db"),
        "experiment": experiment or DEFAULT_EXPERIMENT,
    }
    raw = apply_overrides(raw, overrides)
    return validate_config(raw, source)


def code_metric_names(config: Config, data: Dataset) -> list[str]:
    """The coding metrics measured on a trained network: capacity and redundancy always,
    label metrics on classification data, disentanglement where factors are known, plus the
    config's ``metrics.log`` where the data can feed them."""
    from codenas.config.objectives import CLASSIFICATION_ONLY, REGRESSION_ONLY
    from codenas.metrics import get_metric

    names = list(CODE_METRICS)
    if data.task == "classification":
        names += LABEL_METRICS
    if data.has_factors:
        names += FACTOR_METRICS
    for name in config.metrics.log:
        info = get_metric(name)
        if "factors" in info.needs and not data.has_factors:
            continue
        if data.task != "classification" and (
            "labels" in info.needs or name in CLASSIFICATION_ONLY
        ):
            continue
        if data.task != "regression" and name in REGRESSION_ONLY:
            continue
        names.append(name)
    return list(dict.fromkeys(names))


@dataclasses.dataclass
class Trained:
    """The outcome of :func:`train`.

    Attributes:
        spec: the trained architecture (adapted to the data); adapted_from: the spec as given,
            if it had to be adapted, else ``None``.
        metrics: every value measured (validation, test, coding metrics, params).
        model: the trained module.
        config: the training config (with the coding metrics measured in ``metrics.log``).
        run_id, model_uri: the MLflow run and model, or ``None`` when not logged.
    """

    spec: Spec
    adapted_from: Spec | None
    metrics: dict[str, float]
    model: nn.Module
    config: Config
    run_id: str | None = None
    model_uri: str | None = None


def adapt_to(spec: Spec, data: Dataset) -> tuple[Spec, Spec | None]:
    """``spec`` for ``data``'s input shape and outputs, and the original if it changed."""
    shape, outputs = tuple(data.input_shape), int(data.n_outputs)
    if tuple(spec.input_shape) == shape and spec.n_outputs == outputs:
        return spec, None
    try:
        return spec.adapt(shape, outputs), spec
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"cannot adapt the {spec.space!r} spec to {data.name!r} (input {shape}, "
            f"{outputs} outputs): {err}"
        ) from None


def train(
    spec: Spec,
    config: Config,
    *,
    seed: int = 0,
    log: bool = True,
    source: Mapping[str, Any] | None = None,
) -> Trained:
    """Train ``spec`` fully with ``config`` and log the run and the model to MLflow.

    Args:
        spec: the architecture; adapted to the dataset if its input shape or outputs differ.
        config: from :func:`train_config` (data, train budget, tracking URI and experiment).
        seed: seeds the initialisation and batch order.
        log: log to MLflow (``config.tracking``); the run is a top-level run tagged
            ``codenas.role=train``.
        source: provenance (study, trial, run) recorded as ``codenas.source_*`` tags.

    Returns:
        The :class:`Trained` network with its metrics and MLflow ids.
    """
    from codenas.config import Config
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.training.runtime import default_threads, set_threads

    set_threads(config.train.threads or default_threads())
    data = load_dataset(config.data)
    spec, adapted_from = adapt_to(spec, data)
    raw = config.to_dict()
    raw["metrics"]["log"] = code_metric_names(config, data)
    config = Config.from_dict(raw, source="codenas train")
    evaluation = Evaluator(config, data).evaluate(spec, seed=seed)
    metrics = {k: float(v) for k, v in evaluation.metrics.items()}
    trained = Trained(spec, adapted_from, metrics, evaluation.train.model, config)
    if log and config.tracking.enabled:
        trained.run_id, trained.model_uri = _log(trained, data, seed, dict(source or {}))
    return trained


def masked_config(config: Config) -> dict[str, Any]:
    """``config`` as plain data with its tracking URI and storage URL masked (passwords)."""
    from codenas.urls import mask_url

    cfg = config.to_dict()
    cfg["tracking"]["uri"] = mask_url(cfg["tracking"]["uri"])
    cfg["study"]["storage"] = mask_url(cfg["study"]["storage"])
    return cfg


def _log(trained: Trained, data: Dataset, seed: int, source: dict[str, Any]) -> tuple[str, str]:
    from codenas.search.pareto import spec_summary
    from codenas.tracking.runs import ROLE_TAG, SPEC_TAG, log_trained

    config = trained.config
    cfg = masked_config(config)
    tags = {
        ROLE_TAG: "train",
        SPEC_TAG: trained.spec.to_json(),
        "codenas.data": data.name,
        "mlflow.note.content": (
            f"`codenas train`: {spec_summary(trained.spec.to_dict())} trained for "
            f"{config.train.epochs} epochs on {data.name}. Reload the model with "
            "mlflow.pytorch.load_model('runs:/<run_id>/model'); `codenas report <run_id>` "
            "draws its neural code."
        ),
    }
    if trained.adapted_from is not None:
        tags["codenas.adapted_from"] = trained.adapted_from.to_json()
    for key in ("study", "trial", "mlflow_run_id"):
        if source.get(key) is not None:
            tags[f"codenas.source_{key.removeprefix('mlflow_')}"] = str(source[key])
    params = {
        "spec": {k: v for k, v in trained.spec.to_dict().items()},
        "data": cfg["data"],
        "train": cfg["train"],
        "seed": seed,
    }
    texts = {
        "config.yaml": yaml.safe_dump(cfg, sort_keys=False),
        "spec.yaml": dump_spec_file(
            trained.spec,
            source={**source, "trained_on": data.name},
            config=config,
            header=[f"trained by `codenas train` on {data.name}"],
        ),
    }
    example = data.val.x[:2].cpu().numpy()
    return log_trained(
        config.tracking.uri,
        config.experiment,
        run_name=f"train-{trained.spec.space}-{data.name}",
        model=trained.model,
        input_example=example,
        params=params,
        metrics=trained.metrics,
        tags=tags,
        texts=texts,
    )
