"""``codenas front``: print the Pareto front of a study."""

from __future__ import annotations

import argparse

from codenas.cli._common import add_study_options, resolve_study, rung_note


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "front",
        help="print the Pareto front of a study",
        description="Print the current Pareto front: trial number, state, "
        "objective values, the spec and the MLflow run id.",
    )
    add_study_options(p, tracking=False)
    p.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format; json is a list of {trial, state, values, spec, "
        "mlflow_run_id, metrics, lineage, rung} (default: table)",
    )
    p.add_argument(
        "--rung",
        type=int,
        metavar="K",
        help="with search.schedule: the trials non-dominated at rung K among all that reached "
        "it, with their values there (default: the front of the trials that completed the top "
        "rung, trained the full train.epochs)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codenas.search import pareto, schedule

    study = resolve_study(args, "front")
    names = pareto.objective_names(study)
    if args.rung is not None:
        rows = schedule.rung_front(study, args.rung)
        names = [n for n in names if any(n in r.values for r in rows)] or names
    else:
        rows = pareto.front_rows(study)
    if args.format == "json":
        print(pareto.to_json(rows))
    elif args.format == "csv":
        print(pareto.to_csv(rows, names), end="")
    else:
        if args.rung is not None:
            print(
                f"Non-dominated at rung {args.rung} of study {study.study_name!r} "
                f"({len(rows)} trials; values at that rung, compared metrics only):"
            )
        else:
            print(
                f"Pareto front of study {study.study_name!r}: {len(rows)} of "
                f"{len(study.trials)} trials"
            )
        print(pareto.format_table(rows, names))
        if args.rung is None:
            note = rung_note(study)
            if note:
                print(note)
    return 0
