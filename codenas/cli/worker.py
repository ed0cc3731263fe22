"""``codenas worker``: join an existing study as one more worker, without a config file."""

from __future__ import annotations

import argparse
import time

from codenas.cli._common import add_run_options, add_study_options, existing_sqlite
from codenas.cli.search import search_with, warm_workers
from codenas.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "worker",
        help="join an existing study as one more worker, without a config file",
        description="Join an existing study (its config is stored with it) and run trials "
        "for it: start the same command on every machine that should work on the study.",
    )
    add_study_options(p, storage_required=True, positional=False)
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="trials to add (default: study.trials of the stored config; with --timeout, as "
        "many as fit before it)",
    )
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.started = time.time()  # a --timeout counts from here
    warm_workers(args)
    from codenas.config import Config
    from codenas.search.storage import load_study, stored_config

    existing_sqlite(args.storage, "Optuna storage", "--storage")
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
    return search_with(config, args, source)
