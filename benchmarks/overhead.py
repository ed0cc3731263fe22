"""What codenas costs on top of training: a whole search vs a plain PyTorch loop.

The same fixed list of 12 architectures is trained for the same steps, side by side in one run:

(a) ``codenas.search.run`` with the 12 architectures enqueued (sampling, Lightning Fabric,
    activation capture, metrics, MLflow logging, Pareto updates), on fresh SQLite stores
    ("cold": the stores' schemas are created in the timed run) and on stores that exist
    ("warm": a new study in files an earlier search made). The end-of-search neural-code
    reports (``tracking.report``) are off: they re-train the front, which is not search cost;
(b) a plain PyTorch loop over the same in-memory tensors (no evaluation of metrics, no
    tracking), with a validation pass at the end as the search does;
(c) the same loop under ``lightning.Trainer`` (quiet settings), to justify Fabric.

Each arm is repeated (default 3 rounds, interleaved) and the median reported. Prints a table and
writes ``benchmarks/results/overhead.json``.

    python benchmarks/overhead.py [--rounds 3] [--epochs 10] [--threads 1] [--profile]

``--profile`` runs one more (untimed) warm search under cProfile and prints, and writes to the
JSON, where its bookkeeping time goes: the seconds spent in each tracker hook, in Optuna's
storage writes and in training, and the profile's top lines by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _machine import machine

ARCHS = [  # (depth, width, shape, activation, dropout)
    (1, 16, "constant", "relu", 0.0),
    (1, 64, "constant", "tanh", 0.1),
    (1, 256, "constant", "gelu", 0.0),
    (2, 32, "funnel", "relu", 0.1),
    (2, 128, "expand", "gelu", 0.2),
    (2, 256, "constant", "relu", 0.0),
    (3, 64, "diamond", "tanh", 0.0),
    (3, 128, "hourglass", "relu", 0.1),
    (3, 256, "funnel", "gelu", 0.0),
    (4, 32, "constant", "relu", 0.0),
    (4, 128, "diamond", "relu", 0.2),
    (4, 256, "hourglass", "tanh", 0.1),
]
KEYS = ("depth", "width", "shape", "activation", "dropout")


def overrides(root: Path, epochs: int, threads: int, study: str = "overhead") -> list[str]:
    return [
        f"study.name={study}",
        "tracking.report=false",
        f"study.storage=sqlite:///{root / 'optuna.db'}",
        f"tracking.uri=sqlite:///{root / 'mlflow.db'}",
        f"train.epochs={epochs}",
        f"train.threads={threads}",
        "space.depth={min: 1, max: 4}",
        "space.width={min: 16, max: 256, log: true}",
        "constraints=[]",
    ]


# The functions whose cumulative time a --profile run reports (what a trial's bookkeeping costs,
# next to the training it wraps), as (label, cProfile file suffix, function name).
PROFILED = [
    ("search.run (the timed search)", "codenas/search/study.py", "run"),
    ("training (Fabric fit)", "codenas/training/loop.py", "fit"),
    ("Evaluator.evaluate (train + metrics)", "codenas/evaluation/evaluate.py", "evaluate"),
    ("tracker.trial_started", "codenas/tracking/tracker.py", "trial_started"),
    ("tracker.log_metrics", "codenas/tracking/tracker.py", "log_metrics"),
    ("tracker.__call__ (end run, Pareto)", "codenas/tracking/tracker.py", "__call__"),
    ("  of which update_front", "codenas/tracking/tracker.py", "update_front"),
    ("  of which Pareto plot (log_figure)", "mlflow/tracking/client.py", "log_figure"),
    ("MLflow log_batch", "mlflow/tracking/client.py", "log_batch"),
    ("MLflow create_run", "mlflow/tracking/client.py", "create_run"),
    ("MLflow set_terminated", "mlflow/tracking/client.py", "set_terminated"),
    ("MLflow log_text", "mlflow/tracking/client.py", "log_text"),
    ("MLflow set_tag", "mlflow/tracking/client.py", "set_tag"),
    ("Optuna set_trial_user_attr", "optuna/storages/_rdb/storage.py", "set_trial_user_attr"),
    ("Optuna set_trial_system_attr", "optuna/storages/_rdb/storage.py", "set_trial_system_attr"),
    ("Optuna set_trial_param", "optuna/storages/_rdb/storage.py", "set_trial_param"),
    ("Optuna set_trial_state_values", "optuna/storages/_rdb/storage.py", "set_trial_state_values"),
]


def profile_codenas(epochs: int, threads: int, top: int = 25) -> dict[str, object]:
    """One warm search under cProfile: seconds and calls per PROFILED function, top lines."""
    import io
    import pstats

    prof = cProfile.Profile()
    run_codenas(epochs, threads, warm=True, profiler=prof)
    stats = pstats.Stats(prof)
    rows = []
    for label, suffix, name in PROFILED:
        calls, cum = 0, 0.0
        for (file, _, func), (_, ncalls, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
            if func == name and file.endswith(suffix):
                calls, cum = calls + ncalls, cum + ct
        rows.append({"what": label, "calls": calls, "seconds": round(cum, 3)})
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(
        r"codenas|optuna/storages|mlflow/tracking", top
    )
    lines = [ln for ln in text.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return {"functions": rows, "top": lines[start:]}


def run_codenas(
    epochs: int, threads: int, warm: bool, profiler: cProfile.Profile | None = None
) -> dict[str, float]:
    import optuna

    import codenas

    with tempfile.TemporaryDirectory() as tmp:
        if warm:  # an earlier search made the stores; the timed one is a new study in them
            earlier = codenas.load_config(None, overrides(Path(tmp), 1, threads, "earlier"))
            codenas.search.run(earlier, n_trials=1)
        config = codenas.load_config(None, overrides(Path(tmp), epochs, threads))
        if profiler is not None:  # the timed search only, not the one that made the stores
            profiler.enable()
        start = time.perf_counter()
        study = codenas.search.run(
            config,
            n_trials=len(ARCHS),
            enqueue=[dict(zip(KEYS, arch, strict=True)) for arch in ARCHS],
        )
        total = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
        trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(trials) == len(ARCHS), [t.user_attrs.get("fail_reason") for t in study.trials]
        train = sum(t.user_attrs["metrics"]["time/train"] for t in trials)
        metrics = sum(t.user_attrs["metrics"]["time/metrics"] for t in trials)
        per_trial = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    return {"total": total, "train": train, "metrics": metrics, "trials_wall": sum(per_trial)}


def specs(data):
    from codenas.spaces import MLPSpec, width_profile

    for depth, width, shape, act, drop in ARCHS:
        yield MLPSpec(
            data.input_shape,
            data.n_outputs,
            tuple(width_profile(shape, depth, width, min_width=2)),
            act,
            drop,
        )


def run_plain(data, epochs: int) -> float:
    from codenas.spaces import build_model

    start = time.perf_counter()
    x, y, n = data.train.x, data.train.y, len(data.train)
    for k, spec in enumerate(specs(data)):
        torch.manual_seed(k)
        model = build_model(spec)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(k)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, 64):
                idx = perm[i : i + 64]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            (model(data.val.x).argmax(1) == data.val.y).float().mean()
    return time.perf_counter() - start


def run_trainer(data, epochs: int) -> float:
    import lightning as L

    from codenas.spaces import build_model

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Module(L.LightningModule):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            return F.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class Batches:
        def __init__(self, g: torch.Generator) -> None:
            self.g = g

        def __iter__(self):
            perm = torch.randperm(len(data.train), generator=self.g)
            for i in range(0, len(perm), 64):
                idx = perm[i : i + 64]
                yield data.train.x[idx], data.train.y[idx]

        def __len__(self) -> int:
            return (len(data.train) + 63) // 64

    start = time.perf_counter()
    for k, spec in enumerate(specs(data)):
        torch.manual_seed(k)
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            accelerator="cpu",
            devices=1,
        )
        trainer.fit(
            Module(build_model(spec)), train_dataloaders=Batches(torch.Generator().manual_seed(k))
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/overhead.json")
    parser.add_argument(
        "--profile", action="store_true", help="profile one more warm search (cProfile)"
    )
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from codenas.data import DataConfig, load_dataset

    data = load_dataset(DataConfig())
    import mlflow  # noqa: F401  (a one-off import cost, paid before timing any arm)

    rows: dict[str, list[float]] = {
        "plain": [],
        "trainer": [],
        "codenas": [],
        "codenas_warm": [],
        "codenas_train": [],
        "codenas_metrics": [],
    }
    for r in range(args.rounds):
        rows["plain"].append(run_plain(data, args.epochs))
        rows["trainer"].append(run_trainer(data, args.epochs))
        result = run_codenas(args.epochs, args.threads, warm=False)
        rows["codenas"].append(result["total"])
        rows["codenas_train"].append(result["train"])
        rows["codenas_metrics"].append(result["metrics"])
        rows["codenas_warm"].append(run_codenas(args.epochs, args.threads, warm=True)["total"])
        print(
            f"round {r + 1}/{args.rounds}: plain {rows['plain'][-1]:.2f}s, "
            f"trainer {rows['trainer'][-1]:.2f}s, codenas {result['total']:.2f}s cold, "
            f"{rows['codenas_warm'][-1]:.2f}s warm"
        )

    med = {k: statistics.median(v) for k, v in rows.items()}
    ratio = med["codenas"] / med["plain"]
    table = [
        ("plain PyTorch loop", med["plain"], 1.0),
        ("lightning.Trainer loop", med["trainer"], med["trainer"] / med["plain"]),
        ("codenas search, cold stores", med["codenas"], ratio),
        ("codenas search, warm stores", med["codenas_warm"], med["codenas_warm"] / med["plain"]),
        ("  of which training (Fabric)", med["codenas_train"], med["codenas_train"] / med["plain"]),
        ("  of which metrics", med["codenas_metrics"], med["codenas_metrics"] / med["plain"]),
    ]
    print(
        f"\n12 architectures x {args.epochs} epochs on digits, {args.threads} torch thread(s), "
        f"median of {args.rounds} rounds"
    )
    print(f"{'arm':32s} {'seconds':>8s} {'x plain':>8s}")
    for name, sec, x in table:
        print(f"{name:32s} {sec:8.2f} {x:8.2f}")
    out = {
        "machine": machine(),
        "epochs": args.epochs,
        "threads": args.threads,
        "rounds": args.rounds,
        "seconds": rows,
        "median": med,
        "ratio_codenas_over_plain": ratio,
        "ratio_warm_codenas_over_plain": med["codenas_warm"] / med["plain"],
        "ratio_trainer_over_plain": med["trainer"] / med["plain"],
    }
    if args.profile:
        out["profile"] = profile_codenas(args.epochs, args.threads)
        print("\nwhere one warm search's time goes (cProfile, cumulative seconds, untimed run)")
        print(f"{'function':40s} {'calls':>6s} {'seconds':>8s}")
        for row in out["profile"]["functions"]:
            print(f"{row['what']:40s} {row['calls']:6d} {row['seconds']:8.3f}")
        print("\ntop lines (codenas, Optuna storage, MLflow client) by cumulative time:")
        print("\n".join(out["profile"]["top"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    warm = med["codenas_warm"] / med["plain"]
    print(f"\nratio codenas / plain = {ratio:.2f} cold, {warm:.2f} warm (target <= 1.2)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
