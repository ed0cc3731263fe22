"""What the commands share: defaults, the study/tracking options, table printing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codenas.errors import CodenasError, ConfigError
from codenas.urls import is_server

DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_TRACKING = "sqlite:///mlflow.db"
# codenas.config.DEFAULT_CONFIG, spelled here so that `codenas --help` imports no config
# machinery (tests/cli/test_cli.py checks that the two agree)
DEFAULT_CONFIG_NAME = "digits-mlp"


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
    note = rung_note(study)
    if note:
        print(note, file=stream)


def rung_note(study: object) -> str:
    """What the front of a study searched with ``search.schedule`` compares, in one line."""
    from codenas.search import schedule

    try:
        found = schedule.rungs_of_study(study)  # type: ignore[arg-type]
    except Exception:  # a study not made by codenas: nothing to say
        return ""
    if found is None:
        return ""
    epochs, _ = found
    stopped = schedule.rung_counts(study)  # type: ignore[arg-type]
    where = ", ".join(f"rung {r} (epoch {epochs[r]}): {n}" for r, n in stopped.items())
    lower = f"; stopped lower: {where}" if where else ""
    return (
        f"search.schedule: the front compares trials that completed the top rung {len(epochs) - 1}"
        f" ({epochs[-1]} epochs), with their values there{lower}; "
        "`codenas front --rung K` ranks every trial that reached rung K"
    )


def next_steps(config: Any) -> None:
    from codenas.tracking import front_links, mask_url

    storage = mask_url(config.study.storage)
    uri = config.tracking.uri
    print("\nnext:")
    remote = is_server(uri)
    if not remote:
        print(f"  codenas ui --tracking-uri {mask_url(uri)}      (MLflow UI on 127.0.0.1:5000)")
    if config.tracking.enabled:
        base = uri if remote else "http://127.0.0.1:5000"
        for experiment, study, url in front_links(uri, base):
            if experiment == config.experiment and study == config.study.name:
                print(f"    Pareto front: {url}")
    print(f"  optuna-dashboard {storage}")
    print(f"  codenas front {study_ref(config.study.name, config.study.storage)}")


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
    p: argparse.ArgumentParser,
    *,
    tracking: bool = True,
    storage_required: bool = False,
    positional: bool = True,
) -> None:
    """The study of a command on an existing study: ``[STUDY]``, ``--study``, ``--storage``
    (and ``--tracking-uri``).

    ``STUDY`` is taken the way ``codenas search`` takes a config: a config name or YAML file
    (its ``study.name`` and ``study.storage``), or a study name. :func:`resolve_study` reads it.
    """
    if positional:
        p.add_argument(
            "target",
            nargs="?",
            metavar="STUDY",
            help="the study: a config name or file, as `codenas search` takes it (its "
            "study.name and study.storage), or a study name (default: the storage's only "
            f"study; with several, the default config's, {DEFAULT_CONFIG_NAME})",
        )
    p.add_argument("--study", metavar="NAME", help="study name (overrides the config's study.name)")
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
            default=None,
            help=f"Optuna storage URL (default: the config's study.storage, {DEFAULT_STORAGE})",
        )
    if tracking:
        p.add_argument(
            "--tracking-uri",
            metavar="URI",
            help="MLflow tracking URI of the study's runs, e.g. http://host:5000 "
            "(default: the study's)",
        )


def _as_config(target: str) -> Any | None:
    """The config ``target`` names (a YAML file or a packaged config), else ``None``."""
    from codenas.config import load_config, packaged_configs

    path = Path(target)
    if path.is_file() or target.removesuffix(".yaml") in packaged_configs():
        return load_config(target)
    if target.endswith((".yaml", ".yml")):
        raise ConfigError(f"{target}: no such config file")
    return None


def resolve_study(args: argparse.Namespace, command: str) -> Any:
    """Load the study a command names (``args.target``, ``args.study``, ``args.storage``).

    Sets ``args.storage`` to the storage used. With neither a target nor ``--study``, the
    storage's only study; with several, the default config's study (with a note on stderr
    naming the others), else an error listing them.
    """
    import optuna

    from codenas.search.storage import load_study, make_storage
    from codenas.urls import mask_url

    target = getattr(args, "target", None)
    name = args.study
    storage = args.storage
    if target is not None:
        config = _as_config(target)
        if config is None:
            if name is not None and name != target:
                raise ConfigError(f"{command}: study {target!r} and --study {name!r} disagree")
            name = target
        else:
            name = name or config.study.name
            storage = storage or config.study.storage
    storage = storage or DEFAULT_STORAGE
    args.storage = storage
    existing_sqlite(storage, "Optuna storage", "--storage")
    if name is None:
        names = optuna.get_all_study_names(make_storage(storage))
        if not names:
            raise ConfigError(f"{mask_url(storage)}: no study here yet; run `codenas search` first")
        if len(names) > 1:
            if DEFAULT_CONFIG_NAME not in names:
                raise ConfigError(
                    f"{mask_url(storage)}: {len(names)} studies here ({', '.join(names)}); "
                    f"name one: codenas {command} {names[0]}"
                )
            name = DEFAULT_CONFIG_NAME
            others = ", ".join(n for n in names if n != name)
            print(
                f"codenas: study {name!r} (the default config's); also here: {others} "
                f"(name one: codenas {command} NAME)",
                file=sys.stderr,
            )
    return load_study(name, storage)


def study_ref(study_name: str, storage: str) -> str:
    """How a command names ``study_name`` in ``storage`` (``--storage`` only when not default)."""
    from codenas.urls import mask_url

    suffix = "" if storage == DEFAULT_STORAGE else f" --storage {mask_url(storage)}"
    return f"{study_name}{suffix}"


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on this machine, sharing the study, the --trials budget, the "
        "--timeout and the cores (default: 1)",
    )
    p.add_argument(
        "--timeout",
        metavar="DURATION",
        help="stop starting trials this long after the command started (90s, 20m, 2h or "
        "seconds; running trials finish); without --trials, trials run until then "
        "(default: study.timeout, none)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
