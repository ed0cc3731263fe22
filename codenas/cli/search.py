"""``codenas search``: run (or continue) a multi-objective architecture search."""

from __future__ import annotations

import argparse
import time
from typing import Any

from codenas.cli._common import (
    DEFAULT_STORAGE,
    DEFAULT_TRACKING,
    add_run_options,
    existing_sqlite,
    next_steps,
    print_front,
)
from codenas.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
        help="trials to add to the study (default: study.trials of the config; with --timeout, "
        "as many as fit before it)",
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
    p.add_argument(
        "--seed-from",
        metavar="STUDY",
        help="queue the Pareto architectures of this study first (same space; adapted to the "
        "new data's input and output sizes, values clipped into the new ranges)",
    )
    p.add_argument(
        "--seed-storage",
        metavar="URL",
        help="Optuna storage of the --seed-from study (default: this search's storage)",
    )
    p.add_argument(
        "--top",
        type=int,
        metavar="K",
        help="with --seed-from: only the K front members closest to the knee (default: all)",
    )
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.started = time.time()  # a --timeout counts from here
    warm_workers(args)
    import codenas
    from codenas.config import resolve_config_path

    _, source = resolve_config_path(args.config)
    config = codenas.load_config(args.config, _search_overrides(args))
    if args.seed_from is not None:
        _seed(config, args, source)
    elif args.top is not None or args.seed_storage is not None:
        raise ConfigError("--top and --seed-storage need --seed-from STUDY")
    return search_with(config, args, source)


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


def _seed(config: Any, args: argparse.Namespace, source: str) -> None:
    from codenas.decisions.seeding import describe_seed, seed_search
    from codenas.search.storage import load_study

    storage = args.seed_storage or config.study.storage
    existing_sqlite(storage, "Optuna storage", "--seed-storage")
    origin = load_study(args.seed_from, storage)
    seeds, queued = seed_search(config, origin, top=args.top, source_label=source)
    print(
        f"seeded study {config.study.name!r} with {len(queued)} Pareto architecture(s) of "
        f"study {origin.study_name!r} (knee order; {len(seeds) - len(queued)} already there); "
        "they run first and count towards --trials:"
    )
    for seed in seeds:
        print(f"  {describe_seed(seed)}")


def warm_workers(args: argparse.Namespace) -> None:
    """With ``--workers N > 1``, start the preloaded fork server first: its imports run on
    another core while this process imports and checks the config (worker 0 is this one)."""
    if args.workers > 1:
        from codenas.search import forkserver

        forkserver.warm_up()


def with_timeout(config: Any, args: argparse.Namespace, source: str) -> Any:
    """``config`` with ``--timeout`` as its ``study.timeout``; without ``--trials`` the trial
    count is then unbounded (``study.trials: null``): the time is the budget."""
    if args.timeout is None:
        return config
    from codenas.config import Config
    from codenas.config.models import parse_duration

    try:
        seconds = parse_duration(args.timeout)
    except ValueError as err:
        raise ConfigError(f"--timeout: {err}") from None
    data = config.to_dict()
    data["study"]["timeout"] = seconds
    if args.trials is None:
        data["study"]["trials"] = None
    return Config.from_dict(data, source=source)


def search_with(config: Any, args: argparse.Namespace, source: str) -> int:
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials: must be at least 1, got {args.trials}")
    if args.workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {args.workers}")
    config = with_timeout(config, args, source)
    n_trials = args.trials if args.trials is not None else config.study.trials
    from codenas.search import forkserver
    from codenas.search.budget import command_clock
    from codenas.workflows import search

    try:
        with command_clock(getattr(args, "started", None) or time.time()):
            study = search(
                config,
                n_trials=n_trials,
                workers=args.workers,
                progress=not args.no_progress,
                source=source,
            )
    finally:
        forkserver.stop()  # no process outlives the command
    print_front(study)
    next_steps(config)
    return 0
