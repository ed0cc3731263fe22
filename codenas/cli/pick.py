"""``codenas pick``: choose one architecture from the Pareto front."""

from __future__ import annotations

import argparse
import contextlib
import sys

from codenas.cli._common import add_study_options, resolve_study, study_ref, tracking_for_study
from codenas.errors import CodenasError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "pick",
        help="choose one architecture from the Pareto front",
        description="Choose one trial from the Pareto front of a study: --require filters "
        "the front (any recorded value: objectives, per-layer metrics ...; never test_*), "
        "then --prefer METRIC takes the best on one metric, or --knee (the default) the "
        "member closest to the ideal point once every objective is scaled to [0, 1]. Prints "
        "the choice and why, tags its MLflow run codenas.picked=true (untagging the previous "
        "pick) and writes its spec with --out. Exit status 1 when no front member meets the "
        "requirements.",
        epilog="examples:\n"
        "  codenas pick --require 'val_accuracy>=0.95' --require 'params<=50000'\n"
        "  codenas pick shapes-cnn --require 'params<=20000'   # the study of that config\n"
        "  codenas pick --prefer val_accuracy --out spec.yaml\n"
        "  codenas pick --prefer hoyer_sparsity:min   # a metric with no better direction",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_options(p)
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codenas.decisions.picking import NoFeasibleTrial, format_values, pick
    from codenas.search.pareto import spec_summary

    study = resolve_study(args, "pick")
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
    uri, why = (None, "--no-tag") if args.no_tag else tracking_for_study(study, args.tracking_uri)
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
    print(f"  codenas rightsize {study_ref(study.study_name, args.storage)} --trial {row.trial}")
    if args.out:
        print(f"  codenas train {args.out} --epochs 50      (--data NAME for another task)")
    if row.mlflow_run_id:
        print(f"  codenas report {row.mlflow_run_id}")
    return 0
