"""The neural-code report of one network: PNG figures and one self-contained HTML page.

For a trial of a search (its weights are not kept: the spec is rebuilt and trained again with
the study's config and the trial's seed) or a ``codenas train`` run (its logged model is
loaded), the hidden activations are read on the validation sample of the search, and drawn:

``capacity.png``
    per layer: width, units alive, effective rank, participation ratio, and what
    ``codenas rightsize`` would keep;
``cka.png``
    linear CKA between every pair of hidden layers (Nguyen, Raghu & Kornblith 2021), for a
    network of two or more hidden layers;
``factor_mi.png`` (known factors)
    normalised mutual information between each unit of the last hidden layer and each factor,
    units sorted as MIG reads them (by the factor they inform most, then by information);
``dci_importance.png`` (known factors)
    the DCI importance matrix (extra-trees importances, as ``dci_forest``), same unit order;
``selectivity.png`` (class labels)
    the distribution of the class selectivity index per layer (Morcos et al. 2018);
``selective_units.png`` (class labels)
    the most selective units of the last hidden layer per class, with their class profiles.

Every figure has a title, labelled axes and a one-sentence reading guide printed under it. The
page ``report.html`` inlines the images (base64), so it can be mailed or archived alone. With a
tracking URI, the files are also logged to the run under ``report/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenas.errors import CodenasError, StorageError, first_line

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config

from codenas.decisions.report.figures import (  # noqa: F401  (the public figure API)
    ARTIFACT_DIR,
    capacity_figure,
    cka_figure,
    dci_figure,
    draw,
    factor_mi_figure,
    selective_units_figure,
    selectivity_figure,
)
from codenas.decisions.report.html import (  # noqa: F401
    FigureFile,
    Report,
    _compare,
    existing_report,
    write_report,
)

#: The tag of a run its report was logged to: the absolute path of that ``report.html``, so
#: that ``codenas report RUN_ID`` finds the report instead of re-training the network.
REPORT_TAG = "codenas.report"


def report_trial(
    study: optuna.Study,
    number: int,
    config: Config,
    out_dir: str | Path,
    *,
    log: bool = True,
) -> Report:
    """Report on trial ``number`` of ``study``: load the weights it kept (or, when they are
    gone, re-train it as it was trained), draw, log."""
    from codenas.decisions.rightsize import get_trial
    from codenas.search.storage import retried_trial_number
    from codenas.spaces import spec_from_dict

    trial = get_trial(study, number)
    title = f"trial {number} of study {study.study_name!r}"
    recorded = dict(trial.user_attrs.get("metrics", {}))
    spec = spec_from_dict(trial.user_attrs["spec"])
    code, notes, subtitle = _trial_code(
        config, spec, trial.user_attrs, number, retried_trial_number(trial), title, recorded
    )
    report = write_report(code, out_dir, notes=notes, subtitle=subtitle)
    run_id = trial.user_attrs.get("mlflow_run_id")
    if log and run_id and config.tracking.enabled:
        _log(config.tracking.uri, run_id, report)
        report = dataclasses.replace(report, run_id=run_id)
    return report


def _trial_code(
    config: Config,
    spec: Any,
    user_attrs: Mapping[str, Any] | None,
    number: int,
    retry_of: int | None,
    title: str,
    recorded: Mapping[str, float],
    *,
    kept: Any = None,
    tags: Mapping[str, str] | None = None,
) -> tuple[Any, list[str], str]:
    """A trial's neural code from the weights it kept, else from re-training it; with the
    report's notes and a subtitle that says which."""
    from codenas.evaluation.neural_code import from_model, retrain, trial_seed_of
    from codenas.search.weights import load_trial_network

    model = kept if kept is not None else (load_trial_network(user_attrs) if user_attrs else None)
    if model is not None:
        code = from_model(config, spec, model, title=title, metrics=dict(recorded))
        return code, [], "the weights the search kept (not re-trained)"
    seed = trial_seed_of(config, number, retry_of)
    stopped = stopped_epoch(config, user_attrs, tags)
    how = f"re-trained with seed {seed}"
    budget = dict(recorded)  # what retrain replays (replay_config)
    if stopped is not None:  # measured where the schedule stopped it, so re-train that far
        budget["epochs"] = stopped
        how += f" for the {stopped} epoch(s) it trained before the schedule stopped it"
    code = retrain(config, spec, seed=seed, title=title, recorded=budget)
    notes = _compare(recorded, code.metrics)
    code.metrics = {**code.metrics, **recorded}
    return code, notes, how


def stopped_epoch(
    config: Config,
    user_attrs: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None = None,
) -> int | None:
    """The epoch at which ``search.schedule`` stopped a trial (its recorded values are from
    there), from its ``rungs`` attribute or its MLflow tag ``codenas.rung``; ``None`` for a
    trial that trained all of ``train.epochs``."""
    from codenas.search.schedule import RUNGS_ATTR, rung_epochs

    epochs = config.train.epochs
    reached: int | None = None
    if user_attrs and user_attrs.get(RUNGS_ATTR):
        reached = max(int(e) for e in user_attrs[RUNGS_ATTR])
    elif tags and "codenas.rung" in tags and config.search.schedule is not None:
        schedule = config.search.schedule
        rungs = rung_epochs(schedule.min_epochs, schedule.eta, epochs)
        reached = rungs[min(int(tags["codenas.rung"]), len(rungs) - 1)]
    return reached if reached is not None and reached < epochs else None


def front_dir(study_name: str, out_dir: str | Path | None = None) -> Path:
    """The folder of a study's front reports: ``out_dir``, default ``reports/<study name>/``
    (each member in ``trial-N/``)."""
    return Path(out_dir) if out_dir is not None else Path("reports") / study_name


def missing_front_reports(study: optuna.Study, out_dir: str | Path | None = None) -> list[int]:
    """The trial numbers of the Pareto members without a ``trial-N/report.html`` yet."""
    base = front_dir(study.study_name, out_dir)
    return sorted(
        t.number
        for t in study.best_trials
        if not (base / f"trial-{t.number}" / "report.html").exists()
    )


def report_front(
    study: optuna.Study,
    config: Config,
    out_dir: str | Path | None = None,
    *,
    log: bool = True,
    skip_existing: bool = True,
) -> list[Report]:
    """Write a report for each member of the study's Pareto front (and log it to its run).

    Each member is trained again as its trial was (a brief training per member), so on a
    continued study ``skip_existing`` leaves members whose ``trial-N/report.html`` exists.

    Args:
        study: the study, after its search.
        config: the study's config (with usable storage and tracking URLs).
        out_dir: parent folder; each trial gets ``trial-N/`` in it. Default
            ``reports/<study name>/``.
        log: also log each report to its trial's MLflow run under ``report/``.
        skip_existing: do not redo a member whose report is already in ``out_dir``.

    Returns:
        One :class:`Report` per member written now, by trial number.
    """
    base = front_dir(study.study_name, out_dir)
    if skip_existing:
        numbers = missing_front_reports(study, base)
    else:
        numbers = sorted(t.number for t in study.best_trials)
    return [
        report_trial(study, number, config, base / f"trial-{number}", log=log) for number in numbers
    ]


def report_run(
    run_id: str,
    *,
    tracking_uri: str,
    out_dir: str | Path | None = None,
    log: bool = True,
    force: bool = False,
) -> Report:
    """Report on an MLflow run: a search trial (re-trained) or a ``codenas train`` run (its
    logged model loaded).

    A report that exists already is returned as it is (``reused=True``), not drawn again:
    with ``out_dir``, ``out_dir/report.html``; without, the one logged to the run (its
    :data:`REPORT_TAG` path), the end-of-search report of a trial
    (``<tracking.report_dir or reports/<study>>/trial-N/``) or an earlier
    ``report-<run id>/``. ``force`` draws it again, into ``out_dir`` or else the folder of the
    existing report.

    Raises:
        CodenasError: the run does not exist, is not a codenas trial or train run, or lacks its
            spec or config.
    """
    from codenas.evaluation.neural_code import from_model
    from codenas.search.weights import kept_network_of
    from codenas.spaces import spec_from_dict
    from codenas.tracking.runs import load_network, read_network_run

    record, config = read_network_run(tracking_uri, run_id)
    run_id = record.run_id  # the whole id, where a unique prefix was given
    spec = spec_from_dict(record.spec)
    if record.kind == "trial":
        number = int(record.tags["codenas.trial_number"])
        study_name = record.tags.get("codenas.study", "?")
        title = f"trial {number} of study {study_name!r}"
    else:
        title = f"{spec.space} trained on {record.tags.get('codenas.data', '?')}"
    found = find_report(record.kind, record.tags, run_id, config, out_dir)
    if found is not None and not force:
        return existing_report(found, title)
    notes: list[str] = []
    if record.kind == "trial":
        retry = record.tags.get("codenas.retry_of_trial")
        kept = kept_network_of(config.study.storage, study_name, number)
        code, notes, how = _trial_code(
            config,
            spec,
            None,
            number,
            None if retry is None else int(retry),
            title,
            record.metrics,
            kept=kept,
            tags=record.tags,
        )
        subtitle = f"run {run_id}, {how}"
    else:
        model = load_network(tracking_uri, run_id, spec)
        code = from_model(config, spec, model, title=title, metrics=record.metrics)
        subtitle = f"run {run_id}, logged model"
    if out_dir is not None:
        out = Path(out_dir)
    elif found is not None:
        out = found.parent  # --force: in place, not a second copy
    else:
        out = Path(f"report-{run_id[:8]}")
    report = write_report(code, out, notes=notes, subtitle=subtitle)
    if log:
        _log(tracking_uri, run_id, report)
        report = dataclasses.replace(report, run_id=run_id)
    return report


def find_report(
    kind: str,
    tags: dict[str, str],
    run_id: str,
    config: Config,
    out_dir: str | Path | None = None,
) -> Path | None:
    """The ``report.html`` of a run that exists already, else ``None`` (see
    :func:`report_run` for where it looks)."""
    if out_dir is not None:
        candidates = [Path(out_dir) / "report.html"]
    else:
        candidates = []
        if tags.get(REPORT_TAG):
            candidates.append(Path(tags[REPORT_TAG]))
        if kind == "trial" and "codenas.study" in tags:
            base = front_dir(tags["codenas.study"], config.tracking.report_dir)
            candidates.append(base / f"trial-{tags['codenas.trial_number']}" / "report.html")
        candidates.append(Path(f"report-{run_id[:8]}") / "report.html")
    return next((c for c in candidates if c.is_file()), None)


def _log(uri: str, run_id: str, report: Report) -> None:
    from codenas.tracking.runs import log_files, set_tags

    try:
        log_files(uri, run_id, [f.path for f in report.figures] + [report.html], ARTIFACT_DIR)
        set_tags(uri, run_id, {REPORT_TAG: str(report.html.resolve())})
    except CodenasError:
        raise
    except Exception as err:  # a tracking problem must not lose the files already written
        raise StorageError(
            f"report written to {report.out_dir}, but logging it to run {run_id} failed: "
            f"{first_line(err, 200)}"
        ) from None
