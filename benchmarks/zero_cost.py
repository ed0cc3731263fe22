"""Which zero-cost score, read at initialisation, ranks architectures of the same size?

No new training: the truth is the full training of ``benchmarks/proxy_quality.py``, whose
records (``benchmarks/results/cache/proxy_quality_<dataset>.jsonl.gz``) hold, per (spec, seed),
the scores it measured at initialisation (``naswot``, ``activation_code_logdet`` (mean over
layers), ``synflow``, ``params``, ``effective_rank``, ``dead_fraction``) and the full-training
test accuracy. The specs are those in ``benchmarks/results/proxy_quality_<dataset>.json``
(exactly the ones trained; regenerating them with ``sample_specs`` today gives other specs
where the narrowest-width floor has changed since), the records are looked up by the same key
as ``proxy_quality.collect`` builds. For the scores the cache lacks, each network is rebuilt
exactly as ``train_one`` built it (``torch.manual_seed(seed)``, then build, on the same data
split and metric rows) and measured at initialisation, one forward pass:

* ``swap`` (SWAP, Peng et al. ICLR 2024): distinct unit patterns, batches of 128 rows (the
  NASWOT batch, codenas's default) and ``swap@16`` with batches of 16 (the authors' code);
* ``meco`` (MeCo, Jiang et al. NeurIPS 2023): smallest eigenvalue of each layer's unit
  correlation over the sample rows, summed over layers; for a CNN also ``meco@1input``, the
  paper's form (one input, channels correlated over the positions of its feature maps);
* ``zico`` (ZiCo, Li et al. ICLR 2023; added in a later round, after the choice below was made
  without it): the inverse coefficient of variation of the loss gradients, one backward pass
  per half of the zero-cost rung's batch (128 seeded training rows and their labels, as
  ``codenas.search.screen`` reads them), ``codenas.metrics.zico``.

``naswot`` and ``activation_code_logdet`` are measured anew as well: the cached values predate
today's definition (the ridge and the batches of 128). Before any new score counts, the rebuilt
network's effective rank is compared with the cached one: a mismatch means other weights or
rows, and the run stops.

Per task, the specs are split into size bands by log10(params) (quantile bands of about 15
specs: 4 for 60 specs, 2 for shapes' 20; specs of equal size share a band). For each score:
Kendall tau-b with the full-training test accuracy within each band, averaged over the bands
and then over the seeds (a score constant within a band counts tau 0 there), with a 95%
bootstrap interval over specs (specs resampled within their band, the same draw for every
seed, 1,000 draws); beside it the global tau and the tau after regressing log10(params) out
of both the score and the accuracy (least squares with an intercept, per seed).

Roles: ``digits`` and ``factors`` (MLPs, 60 specs x 3 seeds each) are the development tasks:
the chosen score is the one with the highest mean within-band tau over them (each task
weighing the same). ``digits_wide-space`` (another digits space) is reported beside them
and takes no part in the choice. ``shapes`` (a CNN, 20 specs, 1 seed) is held out.

    python benchmarks/zero_cost.py [--draws 1000] [--threads 1]

Writes ``benchmarks/results/zero_cost.json``; docs/zero-cost.md has the table.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine
from proxy_quality import CACHE_VERSION, brief_metric_names, read_cache, record_key

RESULTS = Path(__file__).resolve().parent / "results"

TASKS: dict[str, dict[str, str]] = {
    "digits": {"role": "development"},
    "factors": {"role": "development"},
    "digits_wide-space": {"role": "development (extra; not used to choose)"},
    "shapes": {"role": "held out"},
}
CHOOSE_ON = ("digits", "factors")
# Cached at initialisation by proxy_quality.train_one, and whether higher is better. NASWOT and
# activation_code_logdet are measured anew (the cached values predate today's definition).
CACHED = {
    "synflow": 1.0,
    "params": 1.0,
    "effective_rank": 1.0,
    "dead_fraction": -1.0,
}
BAND_SIZE = 15


# ----------------------------------------------------------------------------- measuring


def task_setup(result: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of one proxy-quality run, as ``proxy_quality.collect`` had them."""
    sweep = sorted(int(e) for e in result["budget_sweep"])
    return {
        "config": result["config"],
        "overrides": list(result["overrides"]),
        "seeds": [int(s) for s in result["seeds"]],
        "brief": int(result["brief_epochs"]),
        "full": int(result["full_epochs_max"]),
        "patience": int(result["patience"]),
        "sweep": sweep,
        "specs": result["specs"],
    }


def one_input_meco(model: Any, x: Any) -> float:
    """MeCo as the paper has it for a CNN: one input, channels over its feature maps' positions."""
    import torch

    from codenas.metrics import correlation_min_eigenvalue

    maps: list[Any] = []
    handles = [
        layer.register_forward_hook(lambda _m, _i, out: maps.append(out.detach()[0]))
        for layer in model.hidden_layers
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    total = 0.0
    for fmap in maps:
        flat = fmap.reshape(fmap.shape[0], -1).T.double().numpy()  # (H * W, C)
        if flat.shape[0] >= 2:
            total += correlation_min_eigenvalue(flat)
    return total


def measure_task(name: str, setup: Mapping[str, Any]) -> dict[str, Any]:
    """Per seed, per spec: the cached init scores, the new ones and the truth."""
    import torch

    import codenas
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.metrics import MODEL_SCORES, capture_layers, compute_metrics, meco, swap
    from codenas.spaces import build_model

    dataset = name.split("_")[0]
    cache = read_cache(RESULTS / "cache" / f"proxy_quality_{dataset}.jsonl.gz")
    fallback = json.loads((RESULTS / f"proxy_quality_{name}.json").read_text())["records"]
    per_seed: dict[str, list[dict[str, Any]]] = {}
    timings: dict[str, list[float]] = {}
    from_cache = 0
    for seed in setup["seeds"]:
        config = codenas.load_config(
            setup["config"],
            [
                *setup["overrides"],
                f"data.seed={seed}",
                f"train.epochs={setup['full']}",
                "constraints=[]",
            ],
        )
        data = load_dataset(config.data)
        evaluator = Evaluator(config, data, source=setup["config"])
        names = brief_metric_names(config, data)
        train_cfg = config.train.model_dump(exclude={"epochs", "threads"})
        # The zero-cost rung's rows (codenas.search.screen.zero_cost_scorer): 128 seeded rows.
        picked = torch.as_tensor(
            np.random.default_rng(config.data.seed).permutation(len(data.train))[:128]
        )
        screen_x, screen_y = data.train.x[picked], data.train.y[picked]
        rows = []
        for i, spec in enumerate(setup["specs"]):
            payload = {
                "version": CACHE_VERSION,
                "spec": spec,
                "seed": seed,
                "data": config.data.model_dump(mode="json"),
                "train": train_cfg,
                "samples": config.metrics.samples,
                "brief": setup["brief"],
                "full": setup["full"],
                "patience": setup["patience"],
                "sweep": setup["sweep"],
                "names": names,
            }
            key = record_key(payload)
            if key in cache:
                record = cache[key]
                from_cache += 1
            else:  # the results file's copy (6 significant digits)
                record = fallback[str(seed)][i]
            torch.manual_seed(seed)  # exactly as train_one: seed, build, measure
            model = build_model(spec)
            start = time.perf_counter()
            captured = capture_layers(model, evaluator.sample_x, codes=True)
            timings.setdefault("capture", []).append(time.perf_counter() - start)
            now = compute_metrics(
                ["effective_rank", "naswot", "activation_code_logdet"],
                captured.units,
                codes=captured.codes,
            )
            check, cached = now["effective_rank"], float(record["init"]["effective_rank"])
            if not math.isclose(check, cached, rel_tol=1e-5):
                raise SystemExit(
                    f"{name} seed {seed} spec {i}: effective rank of the rebuilt network "
                    f"{check!r} != cached {cached!r}: not the network the truth belongs to"
                )
            # NASWOT's definition has changed since the cache was written (ridge, batches):
            # today's, as a search computes it.
            new = {k: float(now[k]) for k in ("naswot", "activation_code_logdet")}
            for label, fn in (
                ("swap", lambda c=captured: swap(c.codes)),
                ("swap@16", lambda c=captured: swap(c.codes, batch_size=16)),
                ("meco", lambda c=captured: meco(c.units)),
                ("zico", lambda m=model, x=screen_x, y=screen_y: MODEL_SCORES["zico"](m, x, y)),
            ):
                start = time.perf_counter()
                new[label] = fn()
                timings.setdefault(label, []).append(time.perf_counter() - start)
            if spec["space"] == "cnn":
                start = time.perf_counter()
                new["meco@1input"] = one_input_meco(model, evaluator.sample_x)
                timings.setdefault("meco@1input", []).append(time.perf_counter() - start)
            scores = {k: sign * float(record["init"][k]) for k, sign in CACHED.items()}
            scores.update(new)
            rows.append(
                {
                    "scores": scores,
                    "test_accuracy": float(record["full"]["test_accuracy"]),
                    "params": float(record["init"]["params"]),
                }
            )
        per_seed[str(seed)] = rows
        print(f"[{name}] seed {seed}: {len(rows)} specs measured", file=sys.stderr, flush=True)
    return {
        "per_seed": per_seed,
        "records_from_cache": from_cache,
        "records_from_results_file": sum(len(r) for r in per_seed.values()) - from_cache,
        "median_ms": {k: 1000 * statistics.median(v) for k, v in timings.items()},
    }


# ----------------------------------------------------------------------------- statistics


def tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b along the last axis (batched); 0 where either side is constant."""
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    num = (dx * dy).sum(axis=(-1, -2))
    den = np.sqrt((dx != 0).sum(axis=(-1, -2)) * (dy != 0).sum(axis=(-1, -2)).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def bands_of(params: Sequence[float]) -> np.ndarray:
    """Quantile bands of log10(params), about BAND_SIZE specs each; equal sizes share one."""
    from scipy.stats import rankdata

    n = len(params)
    n_bands = max(2, n // BAND_SIZE)
    ranks = rankdata(np.log10(params), method="average")
    return np.minimum(n_bands - 1, ((ranks - 1) * n_bands / n).astype(int))


def finite(col: Sequence[float]) -> np.ndarray:
    a = np.asarray(col, dtype=float)
    ok = np.isfinite(a)
    low = a[ok].min() - 1.0 if ok.any() else 0.0
    return np.where(ok, a, low)  # -inf (e.g. a synflow of 0) ranks last


def residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def analyse(
    measured: Mapping[str, Any],
    specs: Sequence[Mapping[str, Any]],
    draws: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Within-band, global and size-regressed tau per score for one task."""
    from scipy.stats import kendalltau

    seeds = list(measured["per_seed"])
    first = measured["per_seed"][seeds[0]]
    params = np.array([r["params"] for r in first])
    log_params = np.log10(params)
    bands = bands_of(params)
    members = [np.flatnonzero(bands == b) for b in range(bands.max() + 1)]
    # Cells of one band and one activation function, of 4 specs or more.
    activation = np.array([str(spec.get("activation", "")) for spec in specs])
    cells = [
        idx
        for m in members
        for a in sorted(set(activation[m]))
        if (idx := m[activation[m] == a]).size >= 4
    ]
    names = list(first[0]["scores"])
    truth = {s: np.array([r["test_accuracy"] for r in measured["per_seed"][s]]) for s in seeds}
    # One bootstrap draw: each band's members resampled with replacement, for every seed.
    draws_idx = [rng.choice(m, size=(draws, m.size), replace=True) for m in members]

    def column(score: str, s: str) -> np.ndarray:
        return finite([r["scores"][score] for r in measured["per_seed"][s]])

    def within(score: str, groups: Sequence[np.ndarray]) -> float:
        return float(
            np.mean(
                [np.mean([tau_b(column(score, s)[g], truth[s][g]) for g in groups]) for s in seeds]
            )
        )

    def boot(score: str) -> np.ndarray:  # (draws,): the mean over seeds and bands per draw
        per_seed = [
            np.mean([tau_b(column(score, s)[idx], truth[s][idx]) for idx in draws_idx], axis=0)
            for s in seeds
        ]
        return np.mean(per_seed, axis=0)

    def ci(values: np.ndarray) -> list[float]:
        return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]

    size_boot = boot("params")
    size_within = within("params", members)
    out: dict[str, Any] = {}
    for score in names:
        glob, resid, with_size = [], [], []
        for s in seeds:
            col, t = column(score, s), truth[s]
            glob.append(float(tau_b(col, t)))
            check = kendalltau(col, t).statistic
            assert math.isnan(check) or math.isclose(glob[-1], check, abs_tol=1e-9)
            resid.append(float(tau_b(residual(col, log_params), residual(t, log_params))))
            with_size.append(float(tau_b(col, params)))
        draws_score = boot(score)
        point = within(score, members)
        out[score] = {
            "within_band_tau": point,
            "within_band_ci95": ci(draws_score),
            "within_band_tau_per_seed": [
                float(np.mean([tau_b(column(score, s)[m], truth[s][m]) for m in members]))
                for s in seeds
            ],
            # Paired, same draws: does the score rank within a band better than size does?
            "minus_params_within_band": point - size_within,
            "minus_params_ci95": ci(draws_score - size_boot),
            "within_band_and_activation_tau": within(score, cells) if cells else math.nan,
            "global_tau": float(np.mean(glob)),
            "size_regressed_tau": float(np.mean(resid)),
            "tau_with_log_params": float(np.mean(with_size)),
        }
    return {
        "n_specs": int(params.size),
        "seeds": [int(s) for s in seeds],
        "bands": len(members),
        "band_sizes": [int(m.size) for m in members],
        "band_log10_params": [
            [float(log_params[m].min()), float(log_params[m].max())] for m in members
        ],
        "band_activation_cells": [int(c.size) for c in cells],
        "scores": out,
    }


# ----------------------------------------------------------------------------- main


def print_table(name: str, role: str, table: Mapping[str, Any]) -> None:
    print(
        f"\n{name} ({role}): {table['n_specs']} specs x {len(table['seeds'])} seed(s), "
        f"{table['bands']} size bands of {table['band_sizes']} specs"
    )
    print(
        f"{'score':24s} {'within-band tau':>16s} {'95% CI':>16s} {'global tau':>11s} "
        f"{'size-regr. tau':>15s} {'tau w/ size':>12s} {'minus params [95% CI]':>24s} "
        f"{'band x act.':>11s}"
    )
    rows = table["scores"]
    for score in sorted(rows, key=lambda k: -rows[k]["within_band_tau"]):
        r = rows[score]
        lo, hi = r["within_band_ci95"]
        print(
            f"{score:24s} {r['within_band_tau']:16.3f} [{lo:6.3f}, {hi:6.3f}] "
            f"{r['global_tau']:11.3f} {r['size_regressed_tau']:15.3f} "
            f"{r['tau_with_log_params']:12.3f} {r['minus_params_within_band']:6.3f} "
            f"[{r['minus_params_ci95'][0]:6.3f}, {r['minus_params_ci95'][1]:6.3f}] "
            f"{r['within_band_and_activation_tau']:11.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap draws (default 1000)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--out", type=Path, default=RESULTS / "zero_cost.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = machine()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    tasks: dict[str, Any] = {}
    for name, spec in TASKS.items():
        result = json.loads((RESULTS / f"proxy_quality_{name}.json").read_text())
        setup = task_setup(result)
        t0 = time.perf_counter()
        measured = measure_task(name, setup)
        table = analyse(measured, setup["specs"], args.draws, rng)
        tasks[name] = {
            "role": spec["role"],
            "config": setup["config"],
            "overrides": setup["overrides"],
            "truth": (
                f"full-training test accuracy (<= {setup['full']} epochs, patience "
                f"{setup['patience']}, best-validation weights)"
            ),
            "seconds": time.perf_counter() - t0,
            "records_from_cache": measured["records_from_cache"],
            "records_from_results_file": measured["records_from_results_file"],
            "median_ms_per_network": measured["median_ms"],
            **table,
            "specs": setup["specs"],
            "records": {
                seed: [
                    {
                        "scores": {k: float(f"{v:.6g}") for k, v in r["scores"].items()},
                        "test_accuracy": r["test_accuracy"],
                    }
                    for r in rows
                ]
                for seed, rows in measured["per_seed"].items()
            },
        }
        print_table(name, spec["role"], table)
    candidates = list(tasks[CHOOSE_ON[0]]["scores"])
    dev_mean = {
        s: float(np.mean([tasks[t]["scores"][s]["within_band_tau"] for t in CHOOSE_ON]))
        for s in candidates
        if all(s in tasks[t]["scores"] for t in CHOOSE_ON)
    }
    chosen = max(dev_mean, key=lambda s: dev_mean[s])
    print("\nmean within-band tau on the development tasks (" + ", ".join(CHOOSE_ON) + "):")
    for s in sorted(dev_mean, key=lambda k: -dev_mean[k]):
        print(f"  {s:24s} {dev_mean[s]:6.3f}")
    held = tasks["shapes"]["scores"][chosen]
    print(
        f"chosen: {chosen}; on held-out shapes ({tasks['shapes']['n_specs']} specs, 1 seed): "
        f"within-band tau {held['within_band_tau']:.3f} "
        f"[{held['within_band_ci95'][0]:.3f}, {held['within_band_ci95'][1]:.3f}]"
    )
    seconds = time.perf_counter() - started
    out = {
        "benchmark": "zero_cost",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": info,
        "seconds": seconds,
        "draws": args.draws,
        "band_rule": f"quantile bands of log10(params), max(2, n // {BAND_SIZE}) bands",
        "choose_on": list(CHOOSE_ON),
        "rule": "highest mean within-band tau over the development tasks, each weighing the same",
        "development_mean_within_band_tau": dev_mean,
        "chosen": chosen,
        "tasks": tasks,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\n{seconds:.0f} s in all; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
