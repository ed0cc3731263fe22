"""``codenas train``: train a spec fully, on its own or another dataset, and log the model."""

from __future__ import annotations

import argparse

from codenas.cli._common import DEFAULT_TRACKING


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
