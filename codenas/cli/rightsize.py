"""``codenas rightsize``: a smaller architecture from a trial's neural code, queued in its study."""

from __future__ import annotations

import argparse

from codenas.cli._common import (
    add_study_options,
    print_rows,
    resolve_study,
    tracking_for_study,
)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    add_study_options(p)
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codenas.decisions.rightsize import enqueue, propose
    from codenas.search.pareto import spec_summary
    from codenas.search.storage import load_study
    from codenas.tracking.runs import study_config
    from codenas.workflows import run_queued

    study = resolve_study(args, "rightsize")
    uri, why = tracking_for_study(study, args.tracking_uri)
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
    print_rows(
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
            "\nnext: run it with --run (this command again), or with the next search of this "
            "study, which runs queued trials first"
        )
        return 0
    earlier = [
        t.number
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "WAITING" and t.number < number
    ]
    if earlier:
        # Optuna hands out waiting trials oldest first: the proposal runs after these.
        print(
            f"running the trials queued before it first (Optuna runs the oldest first): "
            f"{', '.join(map(str, earlier))}"
        )
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
