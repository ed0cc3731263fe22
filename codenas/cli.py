"""The ``codenas`` command line: the only place that parses argv, prints and exits.

Every command is a thin layer over a documented Python call. Bad input is one line on stderr
and exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codenas.errors import CodenasError, ConfigError

DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_TRACKING = "sqlite:///mlflow.db"

EPILOG = """\
examples:
  codenas search                          # the default search: MLPs on digits, 30 trials
  codenas search configs/shapes-cnn.yaml --trials 50
  codenas search --set train.epochs=5 --set space.width.max=512 --study wider
  codenas front --format json             # the Pareto front of the study here
  codenas ui                              # MLflow UI on ./mlflow.db

Studies live in ./optuna.db and runs in ./mlflow.db unless --storage / --tracking-uri say
otherwise; running the same command again continues the same study.
"""


# ----------------------------------------------------------------------------- helpers


def _err(message: str) -> None:
    print(f"codenas: error: {message}", file=sys.stderr)


def _existing_sqlite(url: str, what: str, flag: str) -> None:
    """Refuse to read a SQLite file that does not exist (opening it would create it)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:") and not path.exists():
            raise ConfigError(
                f"{url}: no {what} here ({path} does not exist in {Path.cwd()}); "
                f"run `codenas search` first or pass {flag}"
            )


def _search_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.set or [])
    if args.study:
        overrides.append(f"study.name={args.study}")
    if args.storage:
        overrides.append(f"study.storage={args.storage}")
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    if args.seed is not None:
        overrides.append(f"study.seed={args.seed}")
    return overrides


def _print_front(study: Any, stream: Any = None) -> None:
    from codenas.search import pareto

    rows = pareto.front_rows(study)
    names = pareto.objective_names(study)
    print(f"\nPareto front of study {study.study_name!r} ({len(rows)} trials):", file=stream)
    print(pareto.format_table(rows, names), file=stream)


def _next_steps(config: Any) -> None:
    from codenas.search.tracking import mask_url, ui_command

    storage = mask_url(config.study.storage)
    print("\nnext:")
    print(
        f"  codenas ui --tracking-uri {mask_url(config.tracking.uri)}   "
        f"(or: {ui_command(config.tracking.uri)})"
    )
    print("    runs table -> filter: tags.`codenas.pareto` = 'true'")
    print(f"  optuna-dashboard {storage}")
    print(f"  codenas front --study {config.study.name} --storage {storage}")


# ----------------------------------------------------------------------------- commands


def cmd_search(args: argparse.Namespace) -> int:
    import codenas
    from codenas.config import resolve_config_path

    _, source = resolve_config_path(args.config)
    config = codenas.load_config(args.config, _search_overrides(args))
    return _search(config, args, source)


def _search(config: Any, args: argparse.Namespace, source: str) -> int:
    import codenas

    n_trials = args.trials if args.trials is not None else config.study.trials
    if n_trials < 1:
        raise ConfigError(f"--trials: must be at least 1, got {n_trials}")
    if args.workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {args.workers}")
    if args.workers > 1:
        from codenas.search.parallel import run_workers

        study = run_workers(
            config,
            n_trials=n_trials,
            workers=args.workers,
            progress=not args.no_progress,
            source=source,
        )
    else:
        study = codenas.search.run(
            config, n_trials=n_trials, progress=not args.no_progress, source=source
        )
    _print_front(study)
    _next_steps(config)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from codenas.config import Config
    from codenas.search.study import load_study, stored_config

    _existing_sqlite(args.storage, "Optuna storage", "--storage")
    study = load_study(args.study, args.storage)
    stored = stored_config(study).to_dict()
    # The stored config has its URLs masked: this worker's own --storage/--tracking-uri are
    # the ones it uses.
    stored["study"]["storage"] = args.storage
    if args.tracking_uri:
        stored["tracking"]["uri"] = args.tracking_uri
    elif "***" in stored["tracking"]["uri"]:
        raise ConfigError("the study's tracking URI has a masked password; pass --tracking-uri")
    source = f"study {study.study_name!r}"
    config = Config.from_dict(stored, source=source)
    return _search(config, args, source)


def cmd_front(args: argparse.Namespace) -> int:
    from codenas.search import pareto
    from codenas.search.study import load_study

    _existing_sqlite(args.storage, "Optuna storage", "--storage")
    study = load_study(args.study, args.storage)
    rows = pareto.front_rows(study)
    names = pareto.objective_names(study)
    if args.format == "json":
        print(pareto.to_json(rows))
    elif args.format == "csv":
        print(pareto.to_csv(rows, names), end="")
    else:
        print(
            f"Pareto front of study {study.study_name!r}: {len(rows)} of {len(study.trials)} trials"
        )
        print(pareto.format_table(rows, names))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    uri = args.tracking_uri
    if uri.startswith(("http://", "https://")):
        print(f"{uri} is already a tracking server: open it in a browser")
        return 0
    _existing_sqlite(uri, "MLflow database", "--tracking-uri")
    mlflow = shutil.which("mlflow")
    cmd = [mlflow] if mlflow else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    print(
        f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C to stop). Runs table: "
        f"http://127.0.0.1:{args.port}/#/experiments/<id>/runs, filter "
        "tags.`codenas.pareto` = 'true' for the Pareto front.",
        file=sys.stderr,
    )
    return subprocess.call(cmd)


def cmd_metrics(args: argparse.Namespace) -> int:
    from codenas.metrics import METRICS

    rows = []
    for name, info in METRICS.items():
        needs = ",".join(info.needs) or "-"
        direction = {"maximize": "max", "minimize": "min", None: "-"}[info.direction]
        rows.append((name, info.scope, direction, needs, info.summary))
    _print_rows(("name", "scope", "better", "needs", "what it measures"), rows)
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    from codenas.spaces import SPACES

    _print_rows(("name", "what it samples"), [(n, c.summary) for n, c in SPACES.items()])
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from codenas.search.datasets import DATASETS

    rows = [
        (n, {True: "yes", False: "no", None: "if given"}[e.factors], e.summary)
        for n, e in DATASETS.items()
    ]
    _print_rows(("name", "factors", "what it is"), rows)
    return 0


def _print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[-1])]))


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codenas",
        description="Neural-architecture search guided by the neural code: Optuna samples "
        "architectures, Lightning trains each briefly, coding metrics on the hidden "
        "activations score them with accuracy and size, MLflow tracks every trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from codenas import __version__

    parser.add_argument("--version", action="version", version=f"codenas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "search",
        help="run (or continue) a multi-objective architecture search",
        description="Run N more trials of the search a YAML config describes. The same "
        "command again continues the same study; a config that does not match the stored "
        "study is refused.",
    )
    p.add_argument(
        "config",
        nargs="?",
        default=None,
        help="YAML config file, or the name of a packaged config "
        "(default: digits-mlp, MLPs on scikit-learn's digits)",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="trials to add to the study (default: study.trials of the config)",
    )
    p.add_argument("--study", metavar="NAME", help="study name (default: study.name)")
    p.add_argument(
        "--storage",
        metavar="URL",
        help=f"Optuna storage URL (default: study.storage, {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI (default: tracking.uri, {DEFAULT_TRACKING})",
    )
    p.add_argument("--seed", type=int, metavar="S", help="sampler and training seed (study.seed)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any config key, value parsed as YAML; repeatable "
        "(e.g. --set train.epochs=5 --set 'space.shape=[funnel, constant]')",
    )
    _add_run_options(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "worker",
        help="join an existing study as one more worker, without a config file",
        description="Join an existing study (its config is stored with it) and run trials "
        "for it: start the same command on every machine that should work on the study.",
    )
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    p.add_argument(
        "--storage",
        metavar="URL",
        required=True,
        help="the study's Optuna storage, e.g. postgresql://user:pass@host/db",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI, e.g. http://host:5000 (default: the study's)",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="trials to add (default: study.trials of the stored config)",
    )
    _add_run_options(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "front",
        help="print the Pareto front of a study",
        description="Print the current Pareto front: trial number, state, "
        "objective values, the spec and the MLflow run id.",
    )
    p.add_argument("--study", metavar="NAME", help="study name (default: the storage's only study)")
    p.add_argument(
        "--storage",
        metavar="URL",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format; json is a list of {trial, state, values, spec, "
        "mlflow_run_id, metrics} (default: table)",
    )
    p.set_defaults(func=cmd_front)

    p = sub.add_parser(
        "ui",
        help="start the MLflow UI on the tracking store (localhost only)",
        description="Start `mlflow server` on the tracking URI, bound to 127.0.0.1.",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=DEFAULT_TRACKING,
        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING})",
    )
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.set_defaults(func=cmd_ui)

    for name, func, text in (
        ("metrics", cmd_metrics, "list the registered metrics, one line each"),
        ("spaces", cmd_spaces, "list the registered search spaces, one line each"),
        ("datasets", cmd_datasets, "list the datasets a config can name, one line each"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
    return parser


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on this machine, sharing the study, the --trials budget and "
        "the cores (default: 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codenas`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (a scheduler stopping the job) ends a search like Ctrl-C: the running trial is
    # recorded as failed in both stores and the process exits 130.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.func(args) or 0)
    except CodenasError as err:
        _err(str(err))
        return 2
    except KeyboardInterrupt:
        print(
            "\ncodenas: interrupted; the running trial was recorded as failed. Run the same "
            "command again to continue the study.",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # `codenas front | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
