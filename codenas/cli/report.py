"""``codenas report``: draw the neural code of a trial or trained run."""

from __future__ import annotations

import argparse

from codenas.cli._common import DEFAULT_TRACKING, existing_sqlite


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "report",
        help="draw the neural code of a trial or trained run: PNGs and one HTML page",
        description="For a trial run of a search (the weights it kept; re-trained with its "
        "seed where none were kept) or a `codenas "
        "train` run (its logged model), draw per-layer width vs effective rank and dead "
        "units, the CKA matrix between layers, and, where factors or labels are known, the "
        "unit x factor mutual information and DCI importances, class selectivity and the "
        "most selective units per class; write them as PNGs and one self-contained "
        "report.html, and log them to the run under report/. A run that has a report "
        "already (the end-of-search report of a Pareto member, an earlier `codenas report`) "
        "is shown where it is, not re-trained; --force draws it again.",
    )
    p.add_argument(
        "run_id",
        metavar="RUN_ID",
        help="the MLflow run id, or a unique start of it (the 12 characters `codenas front` shows)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: report-<run id>)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=DEFAULT_TRACKING,
        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING})",
    )
    p.add_argument("--no-log", action="store_true", help="do not log the files to the run")
    p.add_argument(
        "--force",
        action="store_true",
        help="draw the report again even if the run has one (by default an existing report, "
        "e.g. the end-of-search report of a Pareto member, is shown, not redone)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codenas.decisions.report import report_run

    existing_sqlite(args.tracking_uri, "MLflow database", "--tracking-uri")
    report = report_run(
        args.run_id,
        tracking_uri=args.tracking_uri,
        out_dir=args.out,
        log=not args.no_log,
        force=args.force,
    )
    if report.reused:
        print(
            f"{report.title} already has a neural-code report: {report.html} "
            "(--force draws it again)"
        )
        return 0
    print(f"neural-code report of {report.title}:")
    for note in report.notes:
        print(f"  note: {note}")
    for f in report.figures:
        print(f"  {f.path}  {f.title}")
    print(f"  {report.html}  (one page, images inlined)")
    if report.run_id:
        print(f"logged to run {report.run_id} under report/")
    return 0
