"""``codenas edit``: inject a rule into a trained classifier by a closed-form weight change."""

from __future__ import annotations

import argparse
from typing import Any

from codenas.cli.erase import add_out_option, add_source_options, resolve_source
from codenas.decisions.edit_defaults import (
    DEFAULT_EXEMPLARS,
    DEFAULT_FINETUNE_STEPS,
    DEFAULT_FIRE_QUANTILE,
    DEFAULT_METHOD,
    DEFAULT_RANK,
    DEFAULT_RIDGE,
    METHODS,
)


def add_parser(subparsers: Any) -> None:
    """Add ``codenas edit`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "edit",
        help="inject a rule into a trained classifier by a closed-form weight change",
        description="Rewrite what a trained classifier predicts for the rows a rule names "
        "(rows whose factors have given levels: predict class C, or never predict class C), "
        "from a few exemplar training rows and with no gradient step: the head's weight and "
        "bias get the least change, measured on the code of the ordinary training rows "
        "(second moment of the head's inputs), that moves the exemplars' logits to what the "
        "rule asks (Bau et al. 2020; Santurkar et al. 2021; Meng et al. 2022, ROME); or, with "
        "--method unit, a detector of the rule's rows added to the last hidden layer (one "
        "unit; three forming a band for one level inside a factor's range) and read into the "
        "rule's class (it changed far fewer other rows, docs/editing.md). Prints, "
        "on validation rows never used to fit, the rule's success rate and the accuracy on the "
        "rows the rule does not touch, before and after, next to a fine-tuning baseline on "
        "the same exemplars, then logs the edited network as an MLflow run linked to its "
        "source. docs/editing.md explains the method and its limits.",
        epilog="a rule file (YAML):\n"
        "  when: {f1: 0}       # factor: level, or a list of levels; several factors: all hold\n"
        "  predict: 4          # or: never: 3\n"
        "examples:\n"
        "  codenas edit --study factors-mlp --trial 7 --when f1=0 --never 3\n"
        "  codenas edit RUN_ID --rule rule.yaml --exemplars 32 --out edited/\n"
        "  codenas edit --study factors-mlp --trial 7 --when f1=0 --predict 4 --method unit\n"
        "  codenas edit --spec edited/spec.yaml --weights edited/weights.pt --when f2=4 "
        "--predict 1 --no-log",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_options(p)
    p.add_argument("--rule", metavar="FILE", help="the rule, a YAML file (see below)")
    p.add_argument(
        "--when",
        action="append",
        default=[],
        metavar="FACTOR=LEVEL[,LEVEL]",
        help="or: the rows the rule names (repeat for several factors; all must hold)",
    )
    p.add_argument("--predict", type=int, metavar="CLASS", help="... should be classified CLASS")
    p.add_argument("--never", type=int, metavar="CLASS", help="... must never be classified CLASS")
    p.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help="head: rewrite the head's weights (same architecture); unit: add a detector of "
        "the rule's rows to the last hidden layer, wired to the rule's class: one unit, or "
        "three ReLU units forming a band for one level inside a factor's range (the spec gets "
        f"the units; MLPs) (default: {DEFAULT_METHOD})",
    )
    p.add_argument(
        "--quantile",
        type=float,
        default=DEFAULT_FIRE_QUANTILE,
        metavar="Q",
        help="--method unit: the unit fires above this quantile of the ordinary training rows' "
        f"detector scores (default: {DEFAULT_FIRE_QUANTILE})",
    )
    p.add_argument(
        "--exemplars",
        type=int,
        default=DEFAULT_EXEMPLARS,
        metavar="N",
        help=f"training rows of the rule the edit is fitted on (default: {DEFAULT_EXEMPLARS})",
    )
    p.add_argument(
        "--rank",
        type=int,
        default=DEFAULT_RANK,
        metavar="R",
        help=f"directions of the exemplars' keys the change may use (default: {DEFAULT_RANK})",
    )
    p.add_argument(
        "--ridge",
        type=float,
        default=DEFAULT_RIDGE,
        metavar="L",
        help=f"ridge on the ordinary rows' second moment, relative (default: {DEFAULT_RIDGE:g})",
    )
    p.add_argument(
        "--margin",
        type=float,
        metavar="M",
        help="logit gap the rule's class wins (loses) by on every exemplar (default: the median "
        "gap between the network's top two logits on its training rows)",
    )
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=DEFAULT_FINETUNE_STEPS,
        metavar="N",
        help="gradient steps of the fine-tuning baseline, 0 to skip it "
        f"(default: {DEFAULT_FINETUNE_STEPS})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="picks the exemplars")
    add_out_option(p, "the edited network")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codenas edit``; bad input raises a CodenasError before anything is written."""
    from codenas.decisions.edit import check_rule, edit, load_rule, rule_from_flags
    from codenas.decisions.source import check_out_dir, write_network
    from codenas.errors import ConfigError

    if args.rule is not None and (args.when or args.predict is not None or args.never is not None):
        raise ConfigError("give the rule as --rule FILE or as --when/--predict/--never, not both")
    if args.rule is None and not args.when:
        raise ConfigError("give a rule: --rule FILE, or --when FACTOR=LEVEL with --predict/--never")
    rule = (
        load_rule(args.rule) if args.rule else rule_from_flags(args.when, args.predict, args.never)
    )
    if args.exemplars < 1:
        raise ConfigError(f"--exemplars: at least 1, got {args.exemplars}")
    out = check_out_dir(args.out)
    source = resolve_source(args)
    check_rule(rule, source.data, exemplars=args.exemplars, rank=args.rank)
    print(f"editing {source.title}: {rule.describe()}; reading the network ...")
    result = edit(
        source,
        rule,
        exemplars=args.exemplars,
        rank=args.rank,
        ridge=args.ridge,
        margin=args.margin,
        finetune_steps=args.finetune_steps,
        seed=args.seed,
        log=not args.no_log,
        experiment=args.experiment,
        method=args.method,
        quantile=args.quantile,
    )
    print(result.summary())
    if out is not None:
        spec_path, weights = write_network(
            out, result.spec, result.model, source, f"{source.title} edited: {rule.describe()}"
        )
        print(f"\nwrote {spec_path} and {weights} (--spec/--weights of the next command)")
    if result.run_id:
        print(f"\nMLflow run {result.run_id} ({source.tracking_uri}), linked to the source")
        print(f"  model: mlflow.pytorch.load_model('runs:/{result.run_id}/model')")
    elif not args.no_log:
        print("\nnot logged: the source has no MLflow store here (pass --tracking-uri)")
    return 0
