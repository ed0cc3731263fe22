"""What each coding metric costs, on activation matrices from 1,000 to 10,000 rows and 64 to
4,096 units.

Every registered, non-``run`` metric is timed on synthetic ReLU activations (float32, as
``capture_activations`` returns them) with 10-class labels and three factors (3, 5 and 8
levels). Network-scope metrics get two layers of the same shape. Each cell is the median of
``--repeats`` runs (default 3; a metric whose first run takes over 10 s is run once). Every
metric is called once on a tiny input first, so import costs are not timed.

The model-based metrics fit scikit-learn models whose cost grows with rows x units (and, for
gradient boosting, classes); cells where they would take minutes are skipped, and the table says
so (``skip``). Targets on 2 cores: every capacity, redundancy and binary-code measure under 1 s
at 10,000 x 1,024.

Prints a table and writes ``benchmarks/results/metrics_cost.json``.

    python benchmarks/metrics_cost.py [--rows 1000 2048 10000] [--units 64 256 1024 4096]
                                      [--repeats 3] [--only NAME ...] [--merge] [--out PATH]

``--only`` with ``--merge`` re-times some metrics (after a change to them) and replaces just
their cells in the existing JSON; each such re-run is recorded with its machine state under
``reruns``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine

from codenas.metrics import METRICS, MetricInfo

FAMILIES = {
    "capacity": (
        "dead_fraction",
        "effective_rank",
        "participation_ratio",
        "hoyer_sparsity",
        "twonn_dimension",
        "capacity_usage",
    ),
    "redundancy": ("layer_redundancy",),
    "codes": ("activation_code_logdet", "naswot", "unique_codes_fraction"),
    "labels": ("class_selectivity", "unit_label_information", "linear_probe_accuracy"),
    "factors": ("mig", "sap_continuous", "sap", "modularity", "dci_forest", "dci"),
}
FAST_FAMILIES = ("capacity", "redundancy", "codes")

# Largest rows x units each model-based metric is run at (a few seconds to a minute there on
# 2 cores); beyond, it is skipped. Gradient boosting scans every unit for each of its
# 100 x n_classes trees per factor: about 15 s for 2,048 x 64 and one 5-class factor.
MODEL_LIMITS: dict[str, int] = {
    "dci": 2_048 * 64,
    "dci_forest": 10_000 * 64,
    "sap": 10_000 * 256,
    "modularity": 10_000 * 1_024,
    "linear_probe_accuracy": 10_000 * 1_024,
}
SLOW_RUN_S = 10.0
TARGET = (10_000, 1_024, 1.0)


def _family(name: str) -> str:
    for family, names in FAMILIES.items():
        if name in names:
            return family
    return "other"


def make_data(n: int, d: int, seed: int = 0) -> dict[str, Any]:
    """Two ReLU layers with some structure (low-rank drive + noise), labels and factors."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    factors = np.stack([rng.integers(0, k, n) for k in (3, 5, 8)], axis=1)
    drive = np.c_[np.eye(10)[labels], factors / np.array([2.0, 4.0, 7.0])]
    layers = []
    for _ in range(2):
        w = rng.standard_normal((drive.shape[1], d)).astype(np.float32)
        noise = rng.standard_normal((n, d), dtype=np.float32)
        layers.append(np.maximum(0.0, drive.astype(np.float32) @ w + noise))
    return {"layers": layers, "labels": labels, "factors": factors}


def call(info: MetricInfo, data: dict[str, Any]) -> Any:
    kwargs = {need: data[need] for need in info.needs}
    assert info.fn is not None
    if info.scope == "network":
        return info.fn(data["layers"], **kwargs)
    return info.fn(data["layers"][0], **kwargs)


def time_metric(info: MetricInfo, data: dict[str, Any], repeats: int) -> tuple[float, int]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(info, data)
        times.append(time.perf_counter() - start)
        if times[0] > SLOW_RUN_S:
            break
    return statistics.median(times), len(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 2_048, 10_000])
    parser.add_argument("--units", type=int, nargs="+", default=[64, 256, 1_024, 4_096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="metric names to time (default: all)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the timed cells in an existing --out file (recorded under 'reruns')",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "metrics_cost.json"
    )
    args = parser.parse_args(argv)

    infos = [info for _, info in METRICS.items() if info.scope != "run"]
    if args.only:
        infos = [info for info in infos if info.name in args.only]
    order = {name: k for k, name in enumerate(n for names in FAMILIES.values() for n in names)}
    infos.sort(key=lambda info: order.get(info.name, len(order)))

    warm = make_data(60, 8)
    for info in infos:  # imports and first-call costs stay out of the timings
        call(info, warm)

    grid = [(n, d) for n in args.rows for d in args.units]
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n, d in grid:
        data = make_data(n, d)
        for info in infos:
            limit = MODEL_LIMITS.get(info.name)
            row: dict[str, Any] = {"metric": info.name, "family": _family(info.name)}
            row.update(rows=n, units=d)
            if limit is not None and n * d > limit:
                row.update(seconds=None, repeats=0, skipped=f"rows x units > {limit:,}")
            else:
                seconds, reps = time_metric(info, data, args.repeats)
                row.update(seconds=seconds, repeats=reps, skipped=None)
            results.append(row)
            shown = "skip" if row["seconds"] is None else f"{row['seconds']:.3f}s"
            print(f"{n:>6} x {d:<5} {info.name:<24} {shown}", file=sys.stderr, flush=True)

    run = {
        "machine": machine(),
        "seconds_total": round(time.perf_counter() - started, 1),
        "metrics": [info.name for info in infos],
    }
    reruns: list[dict[str, Any]] = []
    if args.merge and args.out.exists():
        # Replace these metrics' cells in the existing results, keep every other cell.
        previous = json.loads(args.out.read_text())
        fresh = {(r["metric"], r["rows"], r["units"]) for r in results}
        kept = [r for r in previous["results"] if (r["metric"], r["rows"], r["units"]) not in fresh]
        results = kept + results
        reruns = [*previous.get("reruns", []), run]
        run = {k: previous[k] for k in ("machine", "seconds_total", "metrics") if k in previous}

    names = sorted({r["metric"] for r in results}, key=lambda m: order.get(m, len(order)))
    grid = sorted({(r["rows"], r["units"]) for r in results})
    cell = {(r["metric"], r["rows"], r["units"]): r["seconds"] for r in results}
    cols = [f"{n}x{d}" for n, d in grid]
    width = max(8, *(len(c) for c in cols))
    header = f"{'metric':<24}" + "".join(f"{c:>{width + 1}}" for c in cols)
    lines = [header, "-" * len(header)]
    for name in names:
        shown = [cell.get((name, n, d)) for n, d in grid]
        texts = ["skip" if v is None else f"{v:.3f}" for v in shown]
        lines.append(f"{name:<24}" + "".join(f"{t:>{width + 1}}" for t in texts))
    table = "\n".join(lines)
    print(table)

    n_t, d_t, budget = TARGET
    checks = {}
    for r in results:
        if r["family"] in FAST_FAMILIES and (r["rows"], r["units"]) == (n_t, d_t):
            checks[r["metric"]] = r["seconds"] is not None and r["seconds"] < budget
    if checks:
        bad = [m for m, ok in checks.items() if not ok]
        verdict = "all under" if not bad else f"OVER for {', '.join(bad)} at"
        where = f"{budget:.0f} s at {n_t:,} x {d_t:,}"
        print(f"\ntarget: capacity/redundancy/code metrics {verdict} {where}")

    payload = {
        **run,
        "repeats": args.repeats,
        "statistic": "median of repeats (one run when the first exceeds 10 s)",
        "data": "ReLU activations, float32; 10-class labels; factors with 3, 5, 8 levels; "
        "network-scope metrics on two layers of the given shape",
        "model_limits_rows_x_units": MODEL_LIMITS,
        "target": {"rows": n_t, "units": d_t, "seconds": budget, "met": checks},
        "reruns": reruns,
        "results": results,
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
