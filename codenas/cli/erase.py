"""``codenas erase``: remove a known factor from a layer's code (LEACE folded into weights)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_TRACKING = "sqlite:///mlflow.db"


def add_source_options(p: argparse.ArgumentParser) -> None:
    """The SOURCE of an edit: RUN_ID, or --trial with --study/--storage, or --spec/--weights."""
    p.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN_ID",
        help="an MLflow run: a trial of a search (its kept weights; re-trained with its seed "
        "where none were kept) or a `codenas train` / erase / distil run (its logged model)",
    )
    p.add_argument("--trial", type=int, metavar="N", help="or: trial N of a study (the same)")
    p.add_argument(
        "--study", metavar="NAME", help="with --trial: the study (default: the only one)"
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        default=DEFAULT_STORAGE,
        help=f"with --trial: the Optuna storage (default: {DEFAULT_STORAGE})",
    )
    p.add_argument("--spec", metavar="FILE", help="or: a spec file (codenas pick --out) ...")
    p.add_argument("--weights", metavar="FILE", help="... and its torch.save-d state_dict")
    p.add_argument(
        "--data",
        metavar="NAME|CONFIG",
        help="with --spec: the dataset or config (default: the spec file's)",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI (default: the study's; for RUN_ID {DEFAULT_TRACKING})",
    )
    p.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default: the source's)")
    p.add_argument("--no-log", action="store_true", help="do not log to MLflow")


def add_out_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--out DIR``: write the resulting network as spec.yaml + weights.pt."""
    p.add_argument(
        "--out",
        metavar="DIR",
        help=f"also write {what} to DIR as spec.yaml + weights.pt (a state_dict that "
        "codenas.spaces.build_model(spec) loads; --spec/--weights of a next command)",
    )


def resolve_source(args: argparse.Namespace) -> Any:
    from codenas.decisions.source import resolve

    return resolve(
        run_id=args.run_id,
        study=args.study,
        storage=args.storage,
        trial=args.trial,
        spec=args.spec,
        weights=args.weights,
        tracking_uri=args.tracking_uri,
        data=args.data,
    )


def add_parser(subparsers: Any) -> None:
    """Add ``codenas erase`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "erase",
        help="remove a known factor from a layer's code, folded into the weights (no training)",
        description="Erase a concept (a generative factor the dataset knows per row) from one "
        "hidden layer of a trained network with LEACE (Belrose et al. 2023: the least-squares "
        "affine map after which no linear classifier predicts the factor better than a "
        "constant), computed in closed form from the layer's activations on the training rows "
        "and folded into the next layer's weights and bias: the edited network has the same "
        "architecture and is not retrained. Prints, before and after, on validation rows: the "
        "task's accuracy, and linear-probe accuracy of every factor at the edited layer, every "
        "later layer and the logits (a probe fitted on the training rows, and one fitted on "
        "fresh rows), then logs the edited network as an MLflow run linked to its source. "
        "docs/editing.md explains the method and its limits.",
        epilog="examples:\n"
        "  codenas erase --study factors-mlp --trial 7 --factor f1\n"
        "  codenas erase RUN_ID --factor scale --layer 0 --downstream\n"
        "  codenas erase --spec spec.yaml --weights model.pt --factor f2 --no-log --out erased/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_options(p)
    p.add_argument("--factor", required=True, metavar="NAME", help="the factor to erase")
    p.add_argument(
        "--layer",
        type=int,
        metavar="K",
        help="the hidden layer, 0-based (default: the last one, which the head reads)",
    )
    p.add_argument(
        "--downstream",
        action="store_true",
        help="also erase the factor from every later layer, each eraser fitted on the network "
        "edited so far (what a later non-linearity re-creates is erased again)",
    )
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="validation rows the probes read (default: metrics.samples)",
    )
    p.add_argument(
        "--method",
        choices=("leace", "orthogonal"),
        default="leace",
        help="leace: the least-squares LEACE eraser on the shrunk covariance (default); "
        "orthogonal: project out the factor's directions without whitening (moves the code "
        "far more: it cost most of the task's accuracy on factors, docs/editing.md)",
    )
    add_out_option(p, "the edited network")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codenas erase``; bad input raises a CodenasError before anything is written."""
    from codenas.decisions.erase import check_request, erase
    from codenas.decisions.source import check_out_dir, write_network
    from codenas.errors import ConfigError

    if args.samples is not None and args.samples < 20:
        raise ConfigError(f"--samples: at least 20 rows, got {args.samples}")
    out = check_out_dir(args.out)
    source = resolve_source(args)
    check_request(source.spec, source.data, args.factor, args.layer)
    print(f"erasing {args.factor!r} from {source.title}; reading the network ...")
    result = erase(
        source,
        args.factor,
        layer=args.layer,
        log=not args.no_log,
        experiment=args.experiment,
        samples=args.samples,
        downstream=args.downstream,
        method=args.method,
    )
    print(result.summary())
    if out is not None:
        spec_path, weights = write_network(
            out,
            source.spec,
            result.model,
            source,
            f"{source.title} with factor {args.factor!r} erased (codenas erase)",
        )
        print(f"\nwrote {spec_path} and {weights} (--spec/--weights of the next command)")
    if result.run_id:
        print(f"\nMLflow run {result.run_id} ({source.tracking_uri}), linked to the source")
        print(f"  model: mlflow.pytorch.load_model('runs:/{result.run_id}/model')")
    elif not args.no_log:
        print("\nnot logged: the source has no MLflow store here (pass --tracking-uri)")
    return 0
