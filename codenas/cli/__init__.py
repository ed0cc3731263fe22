"""The ``codenas`` command line: the only place that parses argv, prints and exits.

Every command is a thin layer over a documented Python call. Bad input is one line on stderr
and exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import contextlib
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
  codenas pick --require 'val_accuracy>=0.95' --out spec.yaml
  codenas rightsize --trial 7 --run       # a smaller spec from the trial's neural code
  codenas train spec.yaml --data wine --epochs 50
  codenas search --set data.name=wine --study wine --seed-from digits-mlp --top 3
  codenas report RUN_ID                   # figures of a network's neural code
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


# ----------------------------------------------------------------------------- commands


def cmd_search(args: argparse.Namespace) -> int:
    import codenas
    from codenas.config import resolve_config_path

    _, source = resolve_config_path(args.config)
    config = codenas.load_config(args.config, _search_overrides(args))
    if args.seed_from is not None:
        _seed(config, args, source)
    elif args.top is not None or args.seed_storage is not None:
        raise ConfigError("--top and --seed-storage need --seed-from STUDY")
    return _search(config, args, source)


def _seed(config: Any, args: argparse.Namespace, source: str) -> None:
    from codenas.decisions.transfer import describe_seed, seed_search
    from codenas.search.storage import load_study

    storage = args.seed_storage or config.study.storage
    _existing_sqlite(storage, "Optuna storage", "--seed-storage")
    origin = load_study(args.seed_from, storage)
    seeds, queued = seed_search(config, origin, top=args.top, source_label=source)
    print(
        f"seeded study {config.study.name!r} with {len(queued)} Pareto architecture(s) of "
        f"study {origin.study_name!r} (knee order; {len(seeds) - len(queued)} already there); "
        "they run first and count towards --trials:"
    )
    for seed in seeds:
        print(f"  {describe_seed(seed)}")


def _search(config: Any, args: argparse.Namespace, source: str) -> int:
    n_trials = args.trials if args.trials is not None else config.study.trials
    if n_trials < 1:
        raise ConfigError(f"--trials: must be at least 1, got {n_trials}")
    if args.workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {args.workers}")
    from codenas.workflows import search

    study = search(
        config,
        n_trials=n_trials,
        workers=args.workers,
        progress=not args.no_progress,
        source=source,
    )
    _print_front(study)
    _next_steps(config)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from codenas.config import Config
    from codenas.search.storage import load_study, stored_config

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
    from codenas.search.storage import load_study

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


def _tracking_for_study(study: Any, given: str | None) -> tuple[str | None, str]:
    """The tracking URI of a study's runs (``given``, else the stored one) or a reason why not."""
    from codenas.search.storage import stored_config
    from codenas.tracking.runs import sqlite_missing

    if given:
        _existing_sqlite(given, "MLflow database", "--tracking-uri")
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


def cmd_pick(args: argparse.Namespace) -> int:
    from codenas.decisions.picking import NoFeasibleTrial, format_values, pick
    from codenas.search.pareto import spec_summary
    from codenas.search.storage import load_study

    _existing_sqlite(args.storage, "Optuna storage", "--storage")
    study = load_study(args.study, args.storage)
    try:
        chosen = pick(study, require=args.require or (), prefer=args.prefer, knee=args.knee)
    except NoFeasibleTrial as err:
        print(f"codenas: {err}", file=sys.stderr)
        return 1
    front, ranking = chosen.front, chosen.ranking
    reqs = ", ".join(map(str, chosen.requirements))
    met = f"; {len(ranking)} meet {reqs}" if reqs else ""
    print(f"study {study.study_name!r}: {len(front)} trial(s) on the Pareto front{met}")
    print(f"{chosen.reason}.")
    row = chosen.row
    print(f"\npicked trial {row.trial}:")
    print(f"  {format_values(row, chosen.objectives)}")
    print(f"  spec: {spec_summary(row.spec)}")
    others = ", ".join(f"trial {r.trial} ({s:.4g})" for r, s in ranking[1:4])
    if others:
        what = "distance" if chosen.rule == "knee" else chosen.metric
        print(f"  runners-up by {what}: {others}")
    uri, why = (None, "--no-tag") if args.no_tag else _tracking_for_study(study, args.tracking_uri)
    if row.mlflow_run_id is None:
        print("  MLflow run: none recorded for this trial")
    elif uri is None:
        print(f"  MLflow run: {row.mlflow_run_id} (not tagged: {why})")
    else:
        from codenas.tracking.runs import mark_picked

        untagged = mark_picked(uri, study.study_name, row.mlflow_run_id, chosen.summary())
        extra = f"; previous pick untagged ({len(untagged)} run)" if untagged else ""
        print(f"  MLflow run: {row.mlflow_run_id} (tagged codenas.picked=true{extra})")
    if args.out:
        from codenas.decisions.transfer import write_spec_file
        from codenas.search.storage import stored_config
        from codenas.spaces import spec_from_dict

        config = None  # its data, train and metrics sections become `codenas train`'s defaults
        with contextlib.suppress(CodenasError):
            config = stored_config(study)
        path = write_spec_file(
            args.out,
            spec_from_dict(row.spec),
            source={
                "study": study.study_name,
                "trial": row.trial,
                "mlflow_run_id": row.mlflow_run_id,
                "rule": chosen.summary(),
                "values": row.values,
            },
            config=config,
            header=[
                f"trial {row.trial} of study {study.study_name!r}, picked by `codenas pick` "
                f"({chosen.rule})",
                f"train it fully:   codenas train {args.out} --epochs 50",
                f"on another task:  codenas train {args.out} --data wine",
            ],
        )
        print(f"\nspec written to {path}")
    print("\nnext:")
    print(f"  codenas rightsize --study {study.study_name} --trial {row.trial}")
    if args.out:
        print(f"  codenas train {args.out} --epochs 50      (--data NAME for another task)")
    if row.mlflow_run_id:
        print(f"  codenas report {row.mlflow_run_id}")
    return 0


def cmd_rightsize(args: argparse.Namespace) -> int:
    from codenas.decisions.rightsize import enqueue, propose
    from codenas.search.pareto import spec_summary
    from codenas.search.storage import load_study
    from codenas.tracking.runs import study_config
    from codenas.workflows import run_queued

    _existing_sqlite(args.storage, "Optuna storage", "--storage")
    study = load_study(args.study, args.storage)
    uri, why = _tracking_for_study(study, args.tracking_uri)
    # Tracking is needed to run the proposal (--run); reading the code logs at most values.
    config = study_config(study, args.storage, uri, tracking=args.run or uri is not None)
    threshold = None if args.keep_depth else args.cka_threshold
    proposal = propose(
        study, args.trial, config=config, margin=args.margin, cka_threshold=threshold
    )
    print(
        f"right-sizing trial {proposal.trial} of study {study.study_name!r} "
        f"({spec_summary(proposal.spec.to_dict())}); layer usage from {proposal.source}."
    )
    _print_rows(
        ("layer", "width", "alive", "eff.rank", "part.ratio", "CKA prev", "new", "rule"),
        [
            (
                str(p.index),
                str(p.usage.width),
                str(p.usage.alive),
                f"{p.usage.effective_rank:.2f}",
                "-"
                if p.usage.participation_ratio is None
                else f"{p.usage.participation_ratio:.2f}",
                "-" if p.cka_previous is None else f"{p.cka_previous:.3f}",
                "removed" if p.new_width is None else str(p.new_width),
                p.reason,
            )
            for p in proposal.plan
        ],
    )
    for note in proposal.notes:
        print(f"note: {note}")
    if proposal.recomputed and uri is not None:
        run_id = study.trials[proposal.trial].user_attrs.get("mlflow_run_id")
        if run_id:
            from codenas.tracking.runs import log_values

            log_values(
                uri,
                run_id,
                proposal.recomputed,
                {"codenas.rightsize.recomputed": ", ".join(sorted(proposal.recomputed))},
            )
            print(f"recorded the recomputed values on the trial's MLflow run {run_id}")
    elif proposal.recomputed:
        print(f"recomputed values not recorded in MLflow ({why})")
    if not proposal.changed:
        print("\nnothing to cut: every layer uses its width (by this rule); nothing queued")
        return 0
    change = 100.0 * (proposal.params_after - proposal.params_before) / proposal.params_before
    print(
        f"\nproposal: {spec_summary(proposal.new_spec.to_dict())} "
        f"(params {proposal.params_before:,} -> {proposal.params_after:,}, {change:+.0f}%)"
    )
    number, queued = enqueue(study, proposal)
    if queued:
        print(
            f"queued as trial {number} of study {study.study_name!r}: params "
            f"{proposal.params}, user attributes {proposal.user_attrs}"
        )
    else:
        print(f"already in the study as trial {number}; not queued again")
    if not args.run:
        print(
            "\nnext: run it with --run, or with the next search of this study "
            f"(codenas search --study {study.study_name} --storage {args.storage} --trials 1)"
        )
        return 0
    trial = run_queued(config, study, number)
    from codenas.decisions.picking import format_values
    from codenas.search.pareto import objective_names, row_of

    names = objective_names(study)
    fresh = load_study(study.study_name, args.storage)
    front = {t.number for t in fresh.best_trials}
    print(f"\ntrial {number} ({trial.state.name}):")
    if trial.state.name != "COMPLETE":
        print(f"  {trial.user_attrs.get('fail_reason') or trial.user_attrs.get('prune_reason')}")
        return 0
    original = row_of(fresh.trials[proposal.trial], names)
    print(f"  now:    {format_values(row_of(trial, names), names)}")
    print(f"  before: {format_values(original, names)}   (trial {proposal.trial})")
    print(f"  on the Pareto front: {'yes' if number in front else 'no'}")
    run_id = trial.user_attrs.get("mlflow_run_id")
    if uri is not None and run_id:
        from codenas.tracking.runs import set_tags

        set_tags(uri, run_id, {"codenas.rightsized_from": str(proposal.trial)})
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from codenas.decisions.transfer import load_spec_file, train, train_config
    from codenas.search.pareto import spec_summary

    spec_file = load_spec_file(args.spec)
    config = train_config(
        spec_file,
        data=args.data,
        overrides=args.set or (),
        epochs=args.epochs,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
    )
    budget = "" if args.epochs else " (the spec file's / config's budget; --epochs N for more)"
    print(
        f"training {spec_summary(spec_file.spec.to_dict())} on {config.data.name} for "
        f"{config.train.epochs} epoch(s){budget}"
    )
    trained = train(
        spec_file.spec, config, seed=args.seed, log=not args.no_log, source=spec_file.source
    )
    if trained.adapted_from is not None:
        a, b = trained.adapted_from, trained.spec
        print(
            f"  adapted: input {tuple(a.input_shape)} -> {tuple(b.input_shape)}, "
            f"outputs {a.n_outputs} -> {b.n_outputs}"
        )
    m = trained.metrics
    shown = [
        k
        for k in (
            "val_accuracy",
            "test_accuracy",
            "val_r2",
            "test_r2",
            "test_loss",
            "params",
            "capacity_usage",
            "effective_rank",
            "dead_fraction",
            "layer_redundancy",
            "mig",
            "linear_probe_accuracy",
        )
        if k in m
    ]
    print("  " + "  ".join(f"{k}={m[k]:.4g}" for k in shown))
    if trained.run_id:
        print(f"  MLflow run {trained.run_id} in experiment {config.experiment!r}")
        print(
            f"  model: mlflow.pytorch.load_model('runs:/{trained.run_id}/model') "
            f"({trained.model_uri})"
        )
        print(f"\nnext:\n  codenas report {trained.run_id} --tracking-uri {config.tracking.uri}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from codenas.decisions.report import report_run

    _existing_sqlite(args.tracking_uri, "MLflow database", "--tracking-uri")
    report = report_run(
        args.run_id, tracking_uri=args.tracking_uri, out_dir=args.out, log=not args.no_log
    )
    print(f"neural-code report of {report.title}:")
    for note in report.notes:
        print(f"  note: {note}")
    for f in report.figures:
        print(f"  {f.path}  {f.title}")
    print(f"  {report.html}  (one page, images inlined)")
    if report.run_id:
        print(f"logged to run {report.run_id} under report/")
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
    from codenas.tracking import codenas_experiments, runs_table_url

    base = f"http://127.0.0.1:{args.port}"
    print(
        f"MLflow UI on {base} (Ctrl-C to stop); the runs of each codenas experiment:",
        file=sys.stderr,
    )
    for name, experiment_id in codenas_experiments(uri):
        print(f"  {name}: {runs_table_url(base, experiment_id)}", file=sys.stderr)
    print("Filter the Pareto front with  tags.`codenas.pareto` = 'true'", file=sys.stderr)
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
    from codenas.data import DATASETS

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
    _add_run_options(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "worker",
        help="join an existing study as one more worker, without a config file",
        description="Join an existing study (its config is stored with it) and run trials "
        "for it: start the same command on every machine that should work on the study.",
    )
    _add_study_options(p, storage_required=True)
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
    _add_study_options(p, tracking=False)
    p.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format; json is a list of {trial, state, values, spec, "
        "mlflow_run_id, metrics} (default: table)",
    )
    p.set_defaults(func=cmd_front)

    p = sub.add_parser(
        "pick",
        help="choose one architecture from the Pareto front",
        description="Choose one trial from the Pareto front of a study: --require filters "
        "the front (any recorded value: objectives, per-layer metrics, test_accuracy ...), "
        "then --prefer METRIC takes the best on one metric, or --knee (the default) the "
        "member closest to the ideal point once every objective is scaled to [0, 1]. Prints "
        "the choice and why, tags its MLflow run codenas.picked=true (untagging the previous "
        "pick) and writes its spec with --out. Exit status 1 when no front member meets the "
        "requirements.",
        epilog="examples:\n"
        "  codenas pick --require 'val_accuracy>=0.95' --require 'params<=50000'\n"
        "  codenas pick --prefer val_accuracy --out spec.yaml\n"
        "  codenas pick --prefer hoyer_sparsity:min   # a metric with no better direction",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_study_options(p)
    p.add_argument(
        "--require",
        action="append",
        metavar="METRIC>=X",
        help="keep front members with METRIC <=, >=, <, > or == X; repeatable",
    )
    rule = p.add_mutually_exclusive_group()
    rule.add_argument(
        "--prefer",
        metavar="METRIC[:max|:min]",
        help="the best on this metric (direction: the study's for an objective, else the "
        "metric's own); ties go to the other objectives, then the lower trial number",
    )
    rule.add_argument(
        "--knee",
        action="store_true",
        help="the member closest to the ideal point, objectives scaled to [0, 1] (default)",
    )
    p.add_argument("--out", metavar="SPEC.yaml", help="write the chosen spec to this file")
    p.add_argument("--no-tag", action="store_true", help="do not tag the MLflow run")
    p.set_defaults(func=cmd_pick)

    p = sub.add_parser(
        "rightsize",
        help="propose a smaller architecture from a trial's neural code, and queue it",
        description="Read a trial's per-layer capacity usage (effective rank, dead units, "
        "participation ratio, CKA between layers; re-training the trial with its seed when "
        "the search did not record them) and propose a smaller spec: layers whose CKA with "
        "the layer before is at least --cka-threshold are removed (Nguyen, Raghu & Kornblith "
        "2021), every other layer is cut to ceil(margin x effective rank) units (Roy & "
        "Vetterli 2007), at most its units alive. The proposal is queued into the same study; "
        "--run trains it now, so the front shows whether the smaller network keeps the "
        "accuracy. docs/picking.md explains the rule.",
    )
    _add_study_options(p)
    p.add_argument("--trial", type=int, required=True, metavar="N", help="the trial to right-size")
    p.add_argument(
        "--margin",
        type=float,
        default=1.5,
        metavar="M",
        help="units kept per effective-rank dimension, >= 1 (default: 1.5)",
    )
    p.add_argument(
        "--cka-threshold",
        type=float,
        default=0.95,
        metavar="T",
        help="remove a layer whose linear CKA with the layer kept before it is >= T "
        "(default: 0.95)",
    )
    p.add_argument("--keep-depth", action="store_true", help="never remove a layer")
    p.add_argument("--run", action="store_true", help="train the queued proposal right away")
    p.set_defaults(func=cmd_rightsize)

    p = sub.add_parser(
        "train",
        help="train a spec fully, on its own or another dataset, and log the model",
        description="Train a spec file (from `codenas pick --out`) on the study's data or any "
        "other dataset or config, adapting the input and output sizes, and log an MLflow run "
        "with the test metrics, the coding metrics of the trained network and the model "
        "(mlflow.pytorch.load_model('runs:/<run_id>/model') reloads it).",
        epilog="examples:\n"
        "  codenas train spec.yaml --epochs 50\n"
        "  codenas train spec.yaml --data wine\n"
        "  codenas train spec.yaml --data npz --set data.path=my.npz\n"
        "  codenas train spec.yaml --data my-config.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", metavar="SPEC", help="spec file (YAML or JSON)")
    p.add_argument(
        "--data",
        metavar="NAME|CONFIG",
        help="a dataset name (`codenas datasets`) or a config file whose data/train/metrics "
        "sections to use (default: the ones stored in the spec file, else digits)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set data.path=my.csv --set train.lr=0.01",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (default: the config's)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="training seed (default: 0)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI (default: the spec's study's, else {DEFAULT_TRACKING})",
    )
    p.add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment (default: codenas-train)",
    )
    p.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "report",
        help="draw the neural code of a trial or trained run: PNGs and one HTML page",
        description="For a trial run of a search (re-trained with its seed) or a `codenas "
        "train` run (its logged model), draw per-layer width vs effective rank and dead "
        "units, the CKA matrix between layers, and, where factors or labels are known, the "
        "unit x factor mutual information and DCI importances, class selectivity and the "
        "most selective units per class; write them as PNGs and one self-contained "
        "report.html, and log them to the run under report/.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id")
    p.add_argument("--out", metavar="DIR", help="output folder (default: report-<run id>)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=DEFAULT_TRACKING,
        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING})",
    )
    p.add_argument("--no-log", action="store_true", help="do not log the files to the run")
    p.set_defaults(func=cmd_report)

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


def _add_study_options(
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
