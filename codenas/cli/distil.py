"""``codenas distil``: train a right-sized student from a trained network (knowledge
distillation)."""

from __future__ import annotations

import argparse
from typing import Any

from codenas.cli.erase import add_out_option, add_source_options, resolve_source


def add_parser(subparsers: Any) -> None:
    """Add ``codenas distil`` to the CLI's subparsers."""
    from codenas.decisions.distil_defaults import (
        DEFAULT_ALPHA,
        DEFAULT_HINT,
        DEFAULT_INIT,
        DEFAULT_TEMPERATURE,
        DEFAULT_TRANSFER,
    )

    p = subparsers.add_parser(
        "distil",
        help="distil a trained network into a student sized from its neural code",
        description="Train a smaller student from a trained teacher. The student's "
        "architecture comes from the teacher's code by the right-size rule (`codenas "
        "rightsize`: drop layers with CKA >= --cka-threshold to the layer before, cut each "
        "other layer to ceil(--margin x effective rank) units) unless --student gives one. It "
        "is trained for the teacher config's budget with knowledge distillation (Hinton et al. "
        "2015: (1 - alpha) x label loss + alpha x T^2 x KL between softened logits), on the "
        "training rows and on a transfer set the teacher labels at every step (--transfer), "
        "optionally starting from the teacher's own weights cut to the student's widths "
        "(--init teacher) and with a FitNets hint term (each student layer regresses, through "
        "a linear map, the teacher layer it stands for). A search trial is trained briefly: "
        "sized from its code the student can end far below it, so distilling a trial without "
        "--margin or --student prints a warning. Prints and logs (an MLflow run linked to the "
        "teacher) the student's accuracy next to the teacher's, its coding metrics and the "
        "CKA between each student layer and its teacher layer. docs/editing.md has the "
        "measurements behind the defaults.",
        epilog="examples:\n"
        "  codenas distil --study digits-mlp --trial 7 --margin 4\n"
        "  codenas distil RUN_ID --student '{space: mlp, widths: [32], "
        "activation: relu, dropout: 0}'\n"
        "  codenas distil --study digits-mlp --trial 7 --temperature 2 --alpha 0.5 --hint 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_options(p)
    p.add_argument(
        "--student",
        metavar="SPEC",
        help="the student: a spec file or an inline spec mapping (default: the right-size rule "
        "on the teacher's code)",
    )
    p.add_argument(
        "--margin",
        type=float,
        metavar="M",
        help="right-size rule: units kept per effective-rank dimension (default: 1.5)",
    )
    p.add_argument(
        "--cka-threshold",
        type=float,
        metavar="T",
        help="right-size rule: drop a layer with CKA >= T to the layer kept before (default: 0.95)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        metavar="T",
        help=f"softmax temperature of the distilled logits (default: {DEFAULT_TEMPERATURE:g})",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=DEFAULT_ALPHA,
        metavar="A",
        help=f"weight of the distillation term, 1 - A on the labels (default: {DEFAULT_ALPHA:g})",
    )
    p.add_argument(
        "--hint",
        type=float,
        default=DEFAULT_HINT,
        metavar="H",
        help=f"weight of the FitNets hint term (default: {DEFAULT_HINT:g}, off)",
    )
    p.add_argument(
        "--transfer",
        choices=("none", "mixup", "noise"),
        default=DEFAULT_TRANSFER,
        help="transfer set labelled by the teacher beside the training rows: random mixes of "
        "two training rows, or training rows plus noise of half a feature's std "
        f"(default: {DEFAULT_TRANSFER})",
    )
    p.add_argument(
        "--init",
        choices=("random", "teacher"),
        default=DEFAULT_INIT,
        help="student initialisation: the space's, or the teacher's weights cut to the "
        f"student's widths (its most-used units) (default: {DEFAULT_INIT})",
    )
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (default: the teacher's config)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="student seed (default: 0)")
    add_out_option(p, "the student")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codenas distil``; bad input raises a CodenasError before anything is written."""
    from codenas.decisions.distil import brief_trial_warning, check_settings, distil, parse_student
    from codenas.decisions.source import check_out_dir, write_network
    from codenas.errors import ConfigError

    check_settings(args.temperature, args.alpha, args.hint, args.transfer, args.init, "--")
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs: must be at least 1, got {args.epochs}")
    student = None
    if args.student is not None:
        student = _student(args.student, parse_student)
    out = check_out_dir(args.out)
    source = resolve_source(args)
    warning = brief_trial_warning(source, student, args.margin)
    if warning is not None:
        print(warning)
    print(f"distilling {source.title}; reading the teacher ...")
    result = distil(
        source,
        student=student,
        margin=args.margin,
        cka_threshold=args.cka_threshold,
        temperature=args.temperature,
        alpha=args.alpha,
        hint=args.hint,
        transfer=args.transfer,
        init=args.init,
        epochs=args.epochs,
        seed=args.seed,
        log=not args.no_log,
        experiment=args.experiment,
    )
    print(result.summary())
    if out is not None:
        spec_path, weights = write_network(
            out,
            result.student_spec,
            result.model,
            source,
            f"student distilled from {source.title} (codenas distil)",
        )
        print(f"\nwrote {spec_path} and {weights} (--spec/--weights of the next command)")
    if result.run_id:
        print(f"\nMLflow run {result.run_id} ({source.tracking_uri}), linked to the teacher")
        print(f"  model: mlflow.pytorch.load_model('runs:/{result.run_id}/model')")
    elif not args.no_log:
        print("\nnot logged: the teacher has no MLflow store here (pass --tracking-uri)")
    return 0


def _student(text: str, parse: Any) -> Any:
    """An inline student may leave out input_shape and n_outputs (the teacher's data's)."""
    import yaml

    from codenas.errors import ConfigError

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None
    if isinstance(raw, dict):
        from codenas.spaces import SPACES

        space = SPACES.get(str(raw["space"])) if raw.get("space") in SPACES else None
        raw.setdefault("input_shape", list(space.example_input_shape if space else (1,)))
        raw.setdefault("n_outputs", 1)
        return parse(yaml.safe_dump(raw))
    if raw is None or not isinstance(raw, str):
        raise ConfigError(f"--student {text!r}: neither a spec file nor a spec mapping")
    return parse(text)
