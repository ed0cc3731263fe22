"""The trained network an edit starts from: a search trial, an MLflow run, or a spec + weights.

``codenas erase`` and ``codenas distil`` act on a trained network. A search keeps no weights,
so a **trial** is re-trained from its stored spec with the study's config and the trial's seed
(:func:`codenas.evaluation.neural_code.retrain`, which on the same device gives the same
weights); a **run** of ``codenas train`` (or of an earlier edit) has its model logged, which is
loaded into the module its spec builds; a **spec file + weights** (a ``state_dict`` saved with
``torch.save``) is built and loaded the same way. Every source is resolved in two steps, so bad
input is refused before anything trains or is written: :func:`resolve` reads the spec, config
and data; :meth:`Source.model` then trains or loads the network (once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenas.errors import ConfigError
from codenas.spaces import Spec, spec_from_dict

if TYPE_CHECKING:
    from torch import nn

    from codenas.config import Config
    from codenas.data import Dataset


@dataclasses.dataclass
class Source:
    """A trained network to edit, and what is known about where it came from.

    Attributes:
        kind: ``"trial"``, ``"run"`` or ``"files"``.
        title: what the network is, for people.
        spec: its architecture (adapted to ``data``).
        config: its config (data, train, metrics; tracking for the edit's run).
        data: the loaded dataset.
        links: ``codenas.source_*`` tags that link an edit's run to this network.
        metrics: values recorded for it (a trial's or a run's metrics), maybe empty.
        tracking_uri: the MLflow store an edit logs to (``None``: tracking off).
        experiment: the MLflow experiment an edit logs to by default (the source's).
    """

    kind: str
    title: str
    spec: Spec
    config: Config
    data: Dataset
    links: dict[str, str]
    metrics: dict[str, float]
    tracking_uri: str | None
    experiment: str
    _load: Callable[[], nn.Module]
    _model: Any = None

    def run_tags(self, spec: Spec, note: str, **extra: str) -> dict[str, str]:
        """The tags of an edit's MLflow run: the links to this network, the edited ``spec``,
        the data, ``extra``, and the run's description ``note``."""
        from codenas.tracking.runs import SPEC_TAG

        return {
            **self.links,
            SPEC_TAG: spec.to_json(),
            "codenas.data": self.data.name,
            **extra,
            "mlflow.note.content": note,
        }

    def run_files(self, spec: Spec, header: str, config: Config | None = None) -> dict[str, str]:
        """``config.yaml`` (URLs masked) and ``spec.yaml`` (linked to this network) of an
        edit's run, for the edited ``spec``."""
        import yaml

        from codenas.decisions.transfer import dump_spec_file, masked_config

        config = config if config is not None else self.config
        return {
            "config.yaml": yaml.safe_dump(masked_config(config), sort_keys=False),
            "spec.yaml": dump_spec_file(
                spec,
                source={k.removeprefix("codenas.source_"): v for k, v in self.links.items()},
                config=config,
                header=[header],
            ),
        }

    def model(self) -> nn.Module:
        """The trained module on the CPU, in eval mode (trained or loaded on first call)."""
        if self._model is None:
            from codenas.training.runtime import default_threads, set_threads

            set_threads(self.config.train.threads or default_threads())
            self._model = self._load().cpu().eval()
        return self._model


def _require_sqlite(url: str, what: str, flag: str) -> None:
    from codenas.tracking.runs import sqlite_missing

    if sqlite_missing(url):
        raise ConfigError(
            f"{url}: no {what} here ({url.removeprefix('sqlite:///')} does not exist in "
            f"{Path.cwd()}); pass {flag}"
        )


def _adapted(spec: Spec, data: Dataset) -> Spec:
    from codenas.decisions.transfer import adapt_to

    return adapt_to(spec, data)[0]


def from_trial(
    study_name: str | None, storage: str, trial: int, *, tracking_uri: str | None = None
) -> Source:
    """Trial ``trial`` of a study, to be re-trained from its spec and seed.

    Raises:
        ConfigError: a missing storage, study or trial, or a trial that is not COMPLETE.
    """
    from codenas.data import load_dataset
    from codenas.decisions.rightsize import get_trial
    from codenas.evaluation.neural_code import retrain, trial_seed_of
    from codenas.search.storage import load_study, retried_trial_number
    from codenas.search.weights import has_kept_weights, load_trial_network
    from codenas.tracking.runs import sqlite_missing, study_config

    _require_sqlite(storage, "Optuna storage", "--storage")
    if tracking_uri:
        _require_sqlite(tracking_uri, "MLflow database", "--tracking-uri")
    study = load_study(study_name, storage)
    frozen = get_trial(study, trial)
    config = study_config(study, storage, tracking_uri)
    uri: str | None = config.tracking.uri if config.tracking.enabled else None
    if uri is not None and not tracking_uri and sqlite_missing(uri):
        uri = None  # the study's MLflow file is not here: the edit can still run unlogged
    data = load_dataset(config.data)
    spec = _adapted(spec_from_dict(frozen.user_attrs["spec"]), data)
    seed = trial_seed_of(config, trial, retried_trial_number(frozen))
    recorded = dict(frozen.user_attrs.get("metrics", {}))
    kept = has_kept_weights(frozen.user_attrs)
    how = "its kept weights" if kept else f"re-trained with seed {seed}"
    title = f"trial {trial} of study {study.study_name!r} ({how})"
    links = {
        "codenas.source_kind": "trial",
        "codenas.source_study": study.study_name,
        "codenas.source_trial": str(trial),
    }
    run_id = frozen.user_attrs.get("mlflow_run_id")
    if run_id:
        links["codenas.source_run_id"] = str(run_id)

    def load() -> nn.Module:
        model = load_trial_network(frozen.user_attrs) if kept else None
        if model is not None:
            return model
        code = retrain(config, spec, seed=seed, title=title, recorded=recorded, data=data)
        return code.model

    return Source("trial", title, spec, config, data, links, recorded, uri, config.experiment, load)


def from_run(run_id: str, *, tracking_uri: str) -> Source:
    """An MLflow run: a search trial (re-trained), or a ``codenas train`` / edit run (its
    logged model).

    Raises:
        CodenasError: a missing store or run, a run without spec or config, a logged model
            that does not fit its spec.
    """
    from codenas.data import load_dataset
    from codenas.evaluation.neural_code import retrain, trial_seed_of
    from codenas.search.weights import kept_network_of
    from codenas.tracking.editing import run_experiment_name
    from codenas.tracking.runs import load_network, read_network_run

    _require_sqlite(tracking_uri, "MLflow database", "--tracking-uri")
    record, config = read_network_run(tracking_uri, run_id)
    run_id = record.run_id  # the whole id, where a unique prefix was given
    data = load_dataset(config.data)
    spec = _adapted(spec_from_dict(record.spec), data)
    links = {"codenas.source_kind": record.kind, "codenas.source_run_id": run_id}
    experiment = run_experiment_name(tracking_uri, run_id) or config.experiment
    if record.kind == "trial":
        number = int(record.tags["codenas.trial_number"])
        retry = record.tags.get("codenas.retry_of_trial")
        seed = trial_seed_of(config, number, None if retry is None else int(retry))
        study = record.tags.get("codenas.study", "?")
        kept = kept_network_of(config.study.storage, study, number)
        how = "its kept weights" if kept is not None else f"re-trained with seed {seed}"
        title = f"trial {number} of study {study!r} (run {run_id[:12]}, {how})"
        links.update({"codenas.source_study": study, "codenas.source_trial": str(number)})

        def load() -> nn.Module:
            if kept is not None:
                return kept
            code = retrain(config, spec, seed=seed, title=title, recorded=record.metrics, data=data)
            return code.model

    else:
        title = f"{record.kind} run {run_id[:12]} ({spec.space} on {data.name})"

        def load() -> nn.Module:
            return load_network(tracking_uri, run_id, spec)

    return Source(
        "run",
        title,
        spec,
        config,
        data,
        links,
        dict(record.metrics),
        tracking_uri,
        experiment,
        load,
    )


def from_files(
    spec_path: str | Path,
    weights_path: str | Path,
    *,
    data: str | None = None,
    overrides: tuple[str, ...] = (),
    tracking_uri: str | None = None,
) -> Source:
    """A spec file (``codenas pick --out``) and a ``torch.save``-d ``state_dict`` of its module.

    The config is what ``codenas train`` would use for the spec file (its stored data, train
    and metrics sections; ``data`` and ``overrides`` as in ``codenas train``).

    Raises:
        ConfigError: a missing or unreadable file, or weights that do not fit the spec.
    """
    from codenas.data import load_dataset
    from codenas.decisions.transfer import load_spec_file, train_config
    from codenas.spaces import build_model

    spec_file = load_spec_file(spec_path)
    weights = Path(weights_path)
    if not weights.is_file():
        raise ConfigError(f"{weights}: no weights file there (a torch.save-d state_dict)")
    config = train_config(spec_file, data=data, overrides=overrides, tracking_uri=tracking_uri)
    loaded = load_dataset(config.data)
    spec = _adapted(spec_file.spec, loaded)

    def load() -> nn.Module:
        import torch

        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as err:
            # Not torch's own advice (to load with weights_only=False: arbitrary code).
            raise ConfigError(
                f"{weights}: not a state_dict saved by torch.save (torch.load with "
                f"weights_only=True could not read it: {type(err).__name__})"
            ) from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model = build_model(spec)
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError) as err:
            raise ConfigError(
                f"{weights}: the weights do not fit the spec of {spec_file.path}: "
                + " ".join(str(err).split()).removeprefix("Error(s) in loading state_dict ")[:400]
            ) from None
        return model

    links = {"codenas.source_kind": "files", "codenas.source_spec": str(spec_path)}
    for key in ("study", "trial", "mlflow_run_id"):
        if spec_file.source.get(key) is not None:
            links[f"codenas.source_{key.removeprefix('mlflow_')}"] = str(spec_file.source[key])
    return Source(
        "files",
        f"{spec_path} + {weights}",
        spec,
        config,
        loaded,
        links,
        {},
        config.tracking.uri if config.tracking.enabled else None,
        config.experiment,
        load,
    )


def resolve(
    *,
    run_id: str | None = None,
    study: str | None = None,
    storage: str | None = None,
    trial: int | None = None,
    spec: str | None = None,
    weights: str | None = None,
    tracking_uri: str | None = None,
    data: str | None = None,
) -> Source:
    """One source from the command line's options (exactly one kind must be given)."""
    kinds = [
        name
        for name, given in (
            ("RUN_ID", run_id is not None),
            ("--trial", trial is not None),
            ("--spec/--weights", spec is not None or weights is not None),
        )
        if given
    ]
    if not kinds and study is not None:
        raise ConfigError(f"--study {study}: which trial? give --trial N (codenas front {study})")
    if len(kinds) != 1:
        raise ConfigError(
            "give one source: an MLflow RUN_ID, --trial N (with --study/--storage), or "
            f"--spec FILE --weights FILE; got {', '.join(kinds) if kinds else 'none'}"
        )
    if trial is not None:
        return from_trial(study, storage or "sqlite:///optuna.db", trial, tracking_uri=tracking_uri)
    if run_id is not None:
        return from_run(run_id, tracking_uri=tracking_uri or "sqlite:///mlflow.db")
    if spec is None or weights is None:
        raise ConfigError("--spec and --weights go together: a spec file and its state_dict")
    return from_files(spec, weights, data=data, tracking_uri=tracking_uri)


# ----------------------------------------------------------------------------- --out


def check_out_dir(out: str | Path | None) -> Path | None:
    """Validate ``--out DIR`` before any work: a folder (created later) or nothing.

    Raises:
        ConfigError: ``out`` is an existing file.
    """
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"--out {out}: a file is there; give a folder for spec.yaml and weights.pt"
        )
    return path


def write_network(
    out: str | Path, spec: Spec, model: nn.Module, source: Source, header: str
) -> tuple[Path, Path]:
    """Write an edited or distilled network as ``out/spec.yaml`` + ``out/weights.pt``.

    ``spec.yaml`` is a spec file (``codenas pick --out``'s format) carrying the source's data,
    train and metrics sections and its links; ``weights.pt`` is the module's ``state_dict``
    (``torch.save``), which ``codenas.spaces.build_model(spec)`` loads. The pair is itself a
    source: ``--spec out/spec.yaml --weights out/weights.pt``.

    Returns:
        ``(spec path, weights path)``.
    """
    import torch

    from codenas.decisions.transfer import write_spec_file

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    links = {k.removeprefix("codenas.source_"): v for k, v in source.links.items()}
    links = {("mlflow_run_id" if k == "run_id" else k): v for k, v in links.items()}
    spec_path = write_spec_file(
        folder / "spec.yaml", spec, source=links, config=source.config, header=[header]
    )
    weights = folder / "weights.pt"
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, weights)
    return spec_path, weights
