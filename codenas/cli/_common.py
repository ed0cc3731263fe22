"""What the commands share: defaults, the study/tracking options, table printing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codenas.errors import CodenasError, ConfigError

DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_TRACKING = "sqlite:///mlflow.db"


def err(message: str) -> None:
    print(f"codenas: error: {message}", file=sys.stderr)


def existing_sqlite(url: str, what: str, flag: str) -> None:
    """Refuse to read a SQLite file that does not exist (opening it would create it)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:") and not path.exists():
            raise ConfigError(
                f"{url}: no {what} here ({path} does not exist in {Path.cwd()}); "
                f"run `codenas search` first or pass {flag}"
            )


def print_front(study: Any, stream: Any = None) -> None:
    from codenas.search import pareto

    rows = pareto.front_rows(study)
    names = pareto.objective_names(study)
    print(f"\nPareto front of study {study.study_name!r} ({len(rows)} trials):", file=stream)
    print(pareto.format_table(rows, names), file=stream)


def next_steps(config: Any) -> None:
    from codenas.tracking import codenas_experiments, mask_url, runs_table_url

    storage = mask_url(config.study.storage)
    uri = config.tracking.uri
    print("\nnext:")
    remote = uri.startswith(("http://", "https://"))
    if not remote:
        print(f"  codenas ui --tracking-uri {mask_url(uri)}      (MLflow UI on 127.0.0.1:5000)")
    if config.tracking.enabled:
        ids = dict(codenas_experiments(uri))
        if config.experiment in ids:
            base = uri if remote else "http://127.0.0.1:5000"
            print(f"    runs: {runs_table_url(base, ids[config.experiment])}")
    print("    Pareto front: filter the runs with  tags.`codenas.pareto` = 'true'")
    print(f"  optuna-dashboard {storage}")
    print(f"  codenas front --study {config.study.name} --storage {storage}")


def tracking_for_study(study: Any, given: str | None) -> tuple[str | None, str]:
    """The tracking URI of a study's runs (``given``, else the stored one) or a reason why not."""
    from codenas.search.storage import stored_config
    from codenas.tracking.runs import sqlite_missing

    if given:
        existing_sqlite(given, "MLflow database", "--tracking-uri")
        return given, ""
    try:
        tracking = stored_config(study).tracking
    except CodenasError:
        return None, "the study was not created by codenas"
    if not tracking.enabled:
        return None, "the study was run with tracking.enabled: false"
    if "***" in tracking.uri:
        return None, "its tracking URI has a masked password: pass --tracking-uri"
    if sqlite_missing(tracking.uri):
        return None, f"no MLflow database at {tracking.uri} here: pass --tracking-uri"
    return tracking.uri, ""


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[-1])]))


def add_study_options(
    p: argparse.ArgumentParser, *, tracking: bool = True, storage_required: bool = False
) -> None:
    """``--study``, ``--storage`` (and ``--tracking-uri``) of the commands on an existing study."""
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    if storage_required:
        p.add_argument(
            "--storage",
            metavar="URL",
            required=True,
            help="the study's Optuna storage, e.g. postgresql://user:pass@host/db",
        )
    else:
        p.add_argument(
            "--storage",
            metavar="URL",
            default=DEFAULT_STORAGE,
            help=f"Optuna storage URL (default: {DEFAULT_STORAGE})",
        )
    if tracking:
        p.add_argument(
            "--tracking-uri",
            metavar="URI",
            help="MLflow tracking URI of the study's runs, e.g. http://host:5000 "
            "(default: the study's)",
        )


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on this machine, sharing the study, the --trials budget and "
        "the cores (default: 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
