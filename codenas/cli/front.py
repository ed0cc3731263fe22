"""``codenas front``: print the Pareto front of a study."""

from __future__ import annotations

import argparse

from codenas.cli._common import add_study_options, resolve_study


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
        "mlflow_run_id, metrics} (default: table)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codenas.search import pareto

    study = resolve_study(args, "front")
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
