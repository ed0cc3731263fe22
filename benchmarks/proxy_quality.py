"""Proxy quality: which score, read after a brief training, ranks architectures as full training?

For one search config (dataset + space), a fixed sample of N architectures (Optuna's
``RandomSampler`` with ``--sample-seed``, so the same N every run) is trained once per seed with
codenas's own ``Evaluator`` / ``BriefTrainer``:

* at initialisation: NASWOT (``naswot``, ``activation_code_logdet``), synflow and the dead
  units are measured (no training);
* at the brief point (``--brief`` epochs, default the config's ``train.epochs``, i.e. what a
  search trains): validation loss and accuracy, every coding metric, the early score;
* the same run goes on to ``--full`` epochs with early stopping on the validation loss
  (``--patience``) and the best-validation weights restored; its test accuracy is the truth.

The first ``--brief`` epochs of the long run are exactly the brief training a search runs (same
seed, same batches; measuring does not draw random numbers), so one run gives both.

A *seed* changes the train/validation/test split (``data.seed``; for generated datasets the
sample as well), the initialisation and the batch order. For each score and seed: Kendall tau
and Spearman rho with the full-training test accuracy (over all candidates, and over the
non-degenerate ones: a network with a hidden layer dead on every sample at initialisation is
degenerate), the pick regret (best test accuracy minus that of the score's top pick, in
percentage points) and the top-5 overlap. Mean and standard deviation over seeds.

Every (architecture, seed, budget) record is cached in
``benchmarks/results/cache/proxy_quality_<dataset>.jsonl.gz`` (keyed by a hash of the spec, the
seed, the data and training settings and the budgets); a rerun only trains what is missing.

    python benchmarks/proxy_quality.py digits-mlp
    python benchmarks/proxy_quality.py factors-mlp
    python benchmarks/proxy_quality.py shapes-cnn --n 20 --seeds 0 --full 25 --patience 5
    python benchmarks/proxy_quality.py --cv digits digits_wide-space factors shapes  # early score
    # re-measure some metrics of the cached records (init and brief point only; the brief
    # training is re-run and checked against the cached validation loss; the truth is kept)
    python benchmarks/proxy_quality.py shapes-cnn --n 20 --seeds 0 --full 25 --patience 5 \
        --remeasure naswot activation_code_logdet naswot_channel_mean

Writes ``benchmarks/results/proxy_quality_<dataset>[_<tag>].json`` (``proxy_quality_cv.json``
for --cv, which reads those files). docs/proxy-quality.md has the results.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
CACHE_VERSION = 1

# Coding metrics read at the brief point (besides the config's own objectives and logged
# metrics); those that need labels or factors only where the dataset has them.
LABEL_FREE = (
    "dead_fraction",
    "effective_rank",
    "participation_ratio",
    "twonn_dimension",
    "capacity_usage",
    "layer_redundancy",
    "activation_code_logdet",
    "naswot",
    "unique_codes_fraction",
)
NEEDS_LABELS = ("linear_probe_accuracy",)
NEEDS_FACTORS = ("mig", "modularity")
# Read at initialisation (no training).
AT_INIT = ("naswot", "activation_code_logdet", "dead_fraction", "effective_rank")
# Read at every epoch in --sweep (cheap), to see how the ranking evolves with the budget.
CHEAP = ("effective_rank", "dead_fraction", "capacity_usage", "early_score")


# ----------------------------------------------------------------------------- machine


# ----------------------------------------------------------------------------- one run


def record_key(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def train_one(
    evaluator: Any,
    spec: Any,
    seed: int,
    *,
    brief: int,
    full: int,
    patience: int,
    sweep: Sequence[int],
    brief_names: Sequence[str],
) -> dict[str, Any]:
    """Initialisation scores, brief-point metrics and the full training of one spec, one seed."""
    import torch

    from codenas.metrics import synflow
    from codenas.spaces import build_model
    from codenas.training.loop import StopTraining, count_parameters

    start = time.perf_counter()
    torch.manual_seed(seed)  # exactly as Evaluator.evaluate: seed, build, fit
    model = build_model(spec)
    params = float(count_parameters(model))
    init, _ = evaluator.measure(model, AT_INIT, {"params": params})
    init["synflow"] = synflow(model, spec.input_shape)

    curve: dict[int, dict[str, float]] = {}
    checkpoints: dict[int, dict[str, float]] = {}
    brief_values: dict[str, float] = {}
    best = {"loss": math.inf, "epoch": 0, "state": None}

    def on_epoch_end(epoch: int, val: dict[str, float]) -> None:
        curve[epoch] = dict(val)
        run_values = {**val, "params": params}
        if epoch == brief:
            brief_values.update(evaluator.measure(model, brief_names, run_values)[0])
        if epoch in sweep:
            checkpoints[epoch] = evaluator.measure(model, CHEAP, run_values)[0]
        if val["val_loss"] < best["loss"]:
            best.update(loss=val["val_loss"], epoch=epoch, state=copy.deepcopy(model.state_dict()))
        elif epoch - best["epoch"] >= patience and epoch >= max(brief, *sweep):
            raise StopTraining

    result = evaluator.trainer.fit(model, seed=seed, on_epoch_end=on_epoch_end)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    final = evaluator.trainer.evaluate(model, evaluator.trainer.val_split, "val")
    final.update(evaluator.trainer.evaluate(model, evaluator.trainer.test_split, "test"))
    return {
        "init": init,
        "brief": brief_values,
        "checkpoints": {str(k): v for k, v in checkpoints.items()},
        "curve": {str(k): v for k, v in curve.items()},
        "full": {**final, "best_epoch": best["epoch"], "epochs": result.epochs},
        "seconds": time.perf_counter() - start,
    }


def remeasure_one(
    evaluator: Any, spec: Any, seed: int, record: dict[str, Any], *, brief: int, names: list[str]
) -> dict[str, Any]:
    """``record`` with ``names`` measured anew at initialisation and at the brief point.

    Rebuilds the network exactly as :func:`train_one` (seed, build, fit), trains only the
    ``brief`` epochs and checks that the brief validation loss is the cached one (the same
    weights), so the full-training truth of the record still belongs to these values.
    """
    import torch

    from codenas.spaces import build_model
    from codenas.training.loop import StopTraining, count_parameters

    start = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(spec)
    params = float(count_parameters(model))
    init, _ = evaluator.measure(model, names, {"params": params})
    brief_values: dict[str, float] = {}

    def on_epoch_end(epoch: int, val: dict[str, float]) -> None:
        if epoch == brief:
            brief_values.update(evaluator.measure(model, names, {**val, "params": params})[0])
            raise StopTraining

    evaluator.trainer.fit(model, seed=seed, on_epoch_end=on_epoch_end)
    cached = record["brief"]["val_loss"]
    if not math.isclose(brief_values["val_loss"], cached, rel_tol=1e-6):
        raise RuntimeError(
            f"brief val_loss {brief_values['val_loss']!r} != cached {cached!r}: the re-run "
            "did not reproduce the cached weights, so its values cannot join the cached truth"
        )
    out = copy.deepcopy(record)
    for part, values in (("init", init), ("brief", brief_values)):
        for key, value in values.items():
            if key.split("/")[0].split(".")[0] in names:
                out[part][key] = value
    out.setdefault("remeasured", {})[",".join(names)] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "seconds": time.perf_counter() - start,
    }
    return out


def write_cache(path: Path, cache: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as fh:
        for key, record in cache.items():
            fh.write(json.dumps({"key": key, "record": record}) + "\n")
    tmp.replace(path)


# ----------------------------------------------------------------------------- collect


def read_cache(path: Path) -> dict[str, Any]:
    """Records by key from ``path`` (gzip JSON lines), folding in a legacy plain ``.jsonl``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Any] = {}
    if path.exists():
        with gzip.open(path, "rt") as fh:
            for line in fh:
                if line.strip():
                    item = json.loads(line)
                    cache[item["key"]] = item["record"]
    legacy = path.with_suffix("")  # proxy_quality_<dataset>.jsonl
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                cache.setdefault(item["key"], item["record"])
        with gzip.open(path, "wt") as fh:
            for key, record in cache.items():
                fh.write(json.dumps({"key": key, "record": record}) + "\n")
        legacy.unlink()
    return cache


def sample_specs(space: Any, data: Any, n: int, seed: int) -> list[Any]:
    """``n`` architectures drawn by Optuna's RandomSampler with ``seed``: the same every run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask(), data.input_shape, data.n_outputs) for _ in range(n)]


def brief_metric_names(config: Any, data: Any) -> list[str]:
    from codenas.evaluation.evaluate import metric_names

    names = [*metric_names(config), *LABEL_FREE, "early_score"]
    if data.task == "classification":
        names += NEEDS_LABELS
    if data.has_factors:
        names += NEEDS_FACTORS
    return list(dict.fromkeys(names))


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Train what the cache lacks; return every record of this config, per seed."""
    import torch

    import codenas
    from codenas.data import load_dataset
    from codenas.evaluation.evaluate import Evaluator
    from codenas.spaces import get_space

    torch.set_num_threads(args.threads)
    base = codenas.load_config(args.config, args.set)
    brief = args.brief or base.train.epochs
    sweep = sorted({e for e in args.sweep if e <= brief} | {brief})
    dataset = base.data.name
    cache_path = RESULTS / "cache" / f"proxy_quality_{dataset}.jsonl.gz"
    cache = read_cache(cache_path)

    per_seed: dict[int, list[dict[str, Any]]] = {}
    specs_out: list[dict[str, Any]] = []
    trained = 0
    for seed in args.seeds:
        config = codenas.load_config(
            args.config,
            [*args.set, f"data.seed={seed}", f"train.epochs={args.full}", "constraints=[]"],
        )
        data = load_dataset(config.data)
        space = get_space(config.space.name)(config.space)
        specs = sample_specs(space, data, args.n, args.sample_seed)
        specs_out = [s.to_dict() for s in specs]
        evaluator = Evaluator(config, data, source=args.config)
        names = brief_metric_names(config, data)
        train_cfg = config.train.model_dump(exclude={"epochs", "threads"})
        rows = []
        for i, spec in enumerate(specs):
            payload = {
                "version": CACHE_VERSION,
                "spec": spec.to_dict(),
                "seed": seed,
                "data": config.data.model_dump(mode="json"),
                "train": train_cfg,
                "samples": config.metrics.samples,
                "brief": brief,
                "full": args.full,
                "patience": args.patience,
                "sweep": sweep,
                "names": names,
            }
            key = record_key(payload)
            if args.remeasure:
                if key not in cache:
                    raise SystemExit(f"--remeasure: record {i} of seed {seed} is not cached")
                if ",".join(args.remeasure) not in cache[key].get("remeasured", {}):
                    cache[key] = remeasure_one(
                        evaluator, spec, seed, cache[key], brief=brief, names=args.remeasure
                    )
                    write_cache(cache_path, cache)  # after each: an interrupted run resumes
                    trained += 1
                    print(
                        f"[{args.config} seed {seed}] {i + 1}/{len(specs)} re-measured "
                        f"{cache[key]['remeasured'][','.join(args.remeasure)]['seconds']:.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
            if key not in cache:
                record = train_one(
                    evaluator,
                    spec,
                    seed,
                    brief=brief,
                    full=args.full,
                    patience=args.patience,
                    sweep=sweep,
                    brief_names=names,
                )
                cache[key] = record
                # One gzip member per record: appending keeps earlier records if interrupted.
                with gzip.open(cache_path, "at") as fh:
                    fh.write(json.dumps({"key": key, "record": record}) + "\n")
                trained += 1
                full = record["full"]
                print(
                    f"[{args.config} seed {seed}] {i + 1}/{len(specs)} "
                    f"brief val_acc={record['brief'].get('val_accuracy', math.nan):.3f} "
                    f"full test_acc={full.get('test_accuracy', math.nan):.3f} "
                    f"(epoch {full['best_epoch']}/{full['epochs']}) {record['seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
            rows.append(cache[key])
        per_seed[seed] = rows
    return {
        "config": args.config,
        "dataset": dataset,
        "space": base.space.name,
        "brief": brief,
        "sweep": sweep,
        "specs": specs_out,
        "per_seed": per_seed,
        "trained_now": trained,
        "task": data.task,
    }


# ----------------------------------------------------------------------------- scores


def _layers(values: Mapping[str, float], name: str) -> list[float]:
    out, k = [], 0
    while f"{name}/layer_{k}" in values:
        out.append(float(values[f"{name}/layer_{k}"]))
        k += 1
    return out


def candidate_scores(
    record: Mapping[str, Any], spec: Mapping[str, Any], names: Sequence[str]
) -> dict[str, float]:
    """Every score of one record, oriented so that higher is better."""
    from codenas.metrics import get_metric

    b, init = record["brief"], record["init"]
    out: dict[str, float] = {}
    for name in ("val_accuracy", "val_loss", *names):
        if name not in b:
            continue
        direction = get_metric(name).direction
        if direction is None:
            continue
        out[f"{name}"] = float(b[name]) * (1.0 if direction == "maximize" else -1.0)
    eranks = _layers(b, "effective_rank")
    dead = _layers(b, "dead_fraction")
    widths = spec.get("widths") or spec.get("channels")
    out["effective_rank_min"] = min(eranks)
    out["effective_rank_last"] = eranks[-1]
    out["capacity_usage_last"] = eranks[-1] / widths[-1]
    out["dead_fraction_last"] = -dead[-1]
    out["init/naswot"] = float(init["naswot"])
    out["init/activation_code_logdet"] = float(init["activation_code_logdet"])
    if "naswot_channel_mean" in init:
        out["init/naswot_channel_mean"] = float(init["naswot_channel_mean"])
    out["init/synflow"] = float(init["synflow"])
    out["params"] = float(init["params"])  # larger first: the usual baseline orientation
    # Recomputed from the brief values: the cached value may predate the current formula.
    from codenas.evaluation.early_score import early_score

    out["early_score"] = early_score(b, {"n_outputs": int(spec["n_outputs"])})
    return out


def degenerate(record: Mapping[str, Any]) -> bool:
    """Dead from the start: some hidden layer has no unit active on any sample at init."""
    return any(v >= 1.0 for v in _layers(record["init"], "dead_fraction"))


def rank_sum(columns: Sequence[Sequence[float]]) -> list[float]:
    """Sum of the ranks (higher is better) of several score columns."""
    from scipy.stats import rankdata

    return list(np.sum([rankdata(np.nan_to_num(c, nan=-np.inf)) for c in columns], axis=0))


def quality(
    score: Sequence[float], truth: Sequence[float], mask: Sequence[bool] | None = None
) -> dict[str, float]:
    """tau, rho, pick regret (pp) and top-5 overlap of ``score`` against ``truth``."""
    from scipy.stats import kendalltau, spearmanr

    s = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf, neginf=-1e300)
    t = np.asarray(truth, dtype=float)
    out = {
        "tau": float(kendalltau(s, t).statistic),
        "rho": float(spearmanr(s, t).statistic),
    }
    top = np.flatnonzero(s == s.max())  # ties at the top: their mean accuracy
    out["regret_pp"] = float(100 * (t.max() - t[top].mean()))
    k = min(5, len(s))
    out["top5"] = len(set(np.argsort(-s, kind="stable")[:k]) & set(np.argsort(-t)[:k])) / k
    if mask is not None and np.any(~np.asarray(mask)):
        m = np.asarray(mask)
        out["tau_nondegenerate"] = float(kendalltau(s[m], t[m]).statistic)
    else:
        out["tau_nondegenerate"] = out["tau"]
    return out


def score_table(collected: Mapping[str, Any], truth_key: str = "test_accuracy") -> dict[str, Any]:
    """Per score: mean and std over seeds of tau, rho, tau (non-degenerate), regret, top-5.

    Also tau with the mean over seeds of the full-training test accuracy (a less noisy truth),
    and two noise ceilings: tau between seeds of the truth itself, and tau between the
    full-training validation and test accuracies of the same runs.
    """
    from scipy.stats import kendalltau

    specs = collected["specs"]
    names = None
    per_score: dict[str, list[dict[str, float]]] = {}
    truths: dict[Any, list[float]] = {}
    columns_per_seed: dict[Any, dict[str, list[float]]] = {}
    masks: dict[Any, list[bool]] = {}
    val_test = []
    for seed, rows in collected["per_seed"].items():
        if names is None:
            names = [k for k in rows[0]["brief"] if "/" not in k]
        scores = [candidate_scores(r, s, names) for r, s in zip(rows, specs, strict=True)]
        truths[seed] = [r["full"][truth_key] for r in rows]
        masks[seed] = [not degenerate(r) for r in rows]
        columns = {k: [s.get(k, math.nan) for s in scores] for k in scores[0]}
        columns["ranksum(val_loss, effective_rank_min)"] = rank_sum(
            [columns["val_loss"], columns["effective_rank_min"]]
        )
        columns_per_seed[seed] = columns
        if truth_key == "test_accuracy":
            val = [r["full"]["val_accuracy"] for r in rows]
            val_test.append(float(kendalltau(val, truths[seed]).statistic))
    mean_truth = list(np.mean([truths[s] for s in truths], axis=0))
    for seed, columns in columns_per_seed.items():
        for key, col in columns.items():
            q = quality(col, truths[seed], masks[seed])
            s_col = np.nan_to_num(np.asarray(col, dtype=float), nan=-np.inf, neginf=-1e300)
            q["tau_mean_truth"] = float(kendalltau(s_col, mean_truth).statistic)
            per_score.setdefault(key, []).append(q)
    seeds = list(truths)
    ceilings = [
        float(kendalltau(truths[seeds[i]], truths[seeds[j]]).statistic)
        for i in range(len(seeds))
        for j in range(i + 1, len(seeds))
    ]
    table = {}
    for key, runs in per_score.items():
        row = {}
        for stat in runs[0]:
            vals = [r[stat] for r in runs]
            row[stat] = float(np.mean(vals))
            row[f"{stat}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            row[f"{stat}_per_seed"] = vals
        table[key] = row
    return {
        "scores": table,
        "seed_to_seed_tau_of_truth": ceilings,
        "val_test_tau_of_full_training": val_test,
        "degenerate_per_seed": {str(k): int(len(m) - sum(m)) for k, m in masks.items()},
        "truth": truth_key,
    }


def budget_sweep(collected: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Mean tau over seeds with the full-training test accuracy, per brief budget (epochs)."""
    from scipy.stats import kendalltau

    from codenas.evaluation.early_score import early_score

    out: dict[str, dict[str, float]] = {}
    n_out = int(collected["specs"][0]["n_outputs"])
    for epoch in collected["sweep"]:
        taus: dict[str, list[float]] = {}
        for rows in collected["per_seed"].values():
            truth = [r["full"]["test_accuracy"] for r in rows]
            points = [r["checkpoints"][str(epoch)] for r in rows]
            columns = {
                "val_loss": [-p["val_loss"] for p in points],
                "val_accuracy": [p.get("val_accuracy", math.nan) for p in points],
                "early_score": [early_score(p, {"n_outputs": n_out}) for p in points],
            }
            for key, col in columns.items():
                taus.setdefault(key, []).append(float(kendalltau(col, truth).statistic))
        out[str(epoch)] = {k: float(np.mean(v)) for k, v in taus.items()}
    return out


def compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record for the results JSON: no per-epoch curves, floats to 6 significant digits."""

    def r(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.6g}")
        if isinstance(value, dict):
            return {k: r(v) for k, v in value.items()}
        return value

    return {k: r(record[k]) for k in ("init", "brief", "full", "seconds")}


def print_table(title: str, table: Mapping[str, Any], order: Sequence[str] | None = None) -> None:
    rows = table["scores"]
    keys = order or sorted(rows, key=lambda k: -rows[k]["tau"])
    print(f"\n{title}")
    print(
        f"{'score':40s} {'tau':>13s} {'rho':>13s} {'tau (non-deg.)':>15s} "
        f"{'regret pp':>12s} {'top-5':>6s} {'tau (seed-mean truth)':>22s}"
    )
    for key in keys:
        r = rows[key]
        print(
            f"{key:40s} {r['tau']:6.3f} ± {r['tau_std']:4.2f} "
            f"{r['rho']:6.3f} ± {r['rho_std']:4.2f} "
            f"{r['tau_nondegenerate']:8.3f} ± {r['tau_nondegenerate_std']:4.2f} "
            f"{r['regret_pp']:6.2f} ± {r['regret_pp_std']:4.2f} {r['top5']:6.2f} "
            f"{r['tau_mean_truth']:15.3f} ± {r['tau_mean_truth_std']:4.2f}"
        )
    ceil = table["seed_to_seed_tau_of_truth"]
    if ceil:
        print(
            f"seed-to-seed tau of the full-training {table['truth']} (noise ceiling): "
            + ", ".join(f"{c:.3f}" for c in ceil)
        )
    vt = table.get("val_test_tau_of_full_training")
    if vt:
        print(
            "tau between full-training validation and test accuracy, same runs: "
            + ", ".join(f"{c:.3f}" for c in vt)
        )
    print(f"degenerate (dead at init) per seed: {table['degenerate_per_seed']}")


# ----------------------------------------------------------------------------- cv


def formula_family() -> dict[str, dict[str, float]]:
    """The candidate early scores the cross-validation chooses from: name -> parameters.

    ``-log(val_loss) + a * log(min(1, erank_min / C)) - b * dead_last`` (see
    :func:`codenas.evaluation.early_score.early_score`); ``a = b = 0`` is the validation loss alone.
    """
    out: dict[str, dict[str, Any]] = {"val_loss": {"a": 0.0, "b": 0.0, "capped": True}}
    weights_b = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    for b in weights_b[1:]:
        out[f"dead b={b:g}"] = {"a": 0.0, "b": b, "capped": True}
    for capped in (True, False):
        for a in (0.25, 0.5, 1.0, 2.0):
            for b in weights_b:
                kind = "capped" if capped else "raw"
                out[f"{kind} a={a:g} b={b:g}"] = {"a": a, "b": b, "capped": capped}
    return out


def formula_column(
    rows: Sequence[Mapping[str, Any]], n_outputs: int, params: Mapping[str, Any]
) -> list[float]:
    from codenas.evaluation.early_score import early_score

    return [
        early_score(
            r["brief"],
            {"n_outputs": n_outputs},
            rank_weight=params["a"],
            dead_weight=params["b"],
            capped=params["capped"],
        )
        for r in rows
    ]


def run_cv(args: argparse.Namespace) -> int:
    """Leave-one-dataset-out choice of the early score's weights.

    For each held-out dataset, the weights are chosen by the mean Kendall tau with the
    full-training test accuracy on the *other* datasets, and scored on the held-out one: its
    test split never takes part in choosing. (The full-training *validation* accuracy is not
    used to choose: the brief validation loss is read on the same validation rows, and the full
    training stops early on them, so that truth favours the validation loss.)
    """
    results: dict[str, Any] = {}  # benchmark -> its results; several may share a dataset
    for name in args.config:
        path = Path(name)
        if not path.exists():
            path = RESULTS / f"proxy_quality_{name}.json"
        results[path.stem.removeprefix("proxy_quality_")] = json.loads(path.read_text())
    group = {bench: data["dataset"] for bench, data in results.items()}
    datasets = list(dict.fromkeys(group.values()))
    family = formula_family()

    def per_bench(data: Mapping[str, Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
        """tau and regret of a formula (``None``: brief validation accuracy) on one benchmark."""
        taus, regrets = [], []
        n_out = int(data["specs"][0]["n_outputs"])
        for rows in data["records"].values():
            if params is None:
                col = [r["brief"]["val_accuracy"] for r in rows]
            else:
                col = formula_column(rows, n_out, params)
            q = quality(col, [r["full"]["test_accuracy"] for r in rows])
            taus.append(q["tau"])
            regrets.append(q["regret_pp"])
        return {
            "tau": float(np.mean(taus)),
            "tau_per_seed": taus,
            "regret_pp": float(np.mean(regrets)),
            "regret_pp_per_seed": regrets,
        }

    selection = {
        b: {f: per_bench(d, p)["tau"] for f, p in family.items()} for b, d in results.items()
    }
    names = list(family)  # simplest first: ties go to the simpler formula

    def best(held_in: Sequence[str]) -> str:
        def key(f: str) -> tuple[float, int]:
            per_dataset = [
                np.mean([selection[b][f] for b in results if group[b] == d]) for d in held_in
            ]
            return float(np.mean(per_dataset)), -names.index(f)

        return max(names, key=key)

    folds: dict[str, Any] = {}
    print("\nleave-one-dataset-out: weights chosen on the other datasets (each dataset weighs the")
    print("same), scored on the held-out one: tau with the full-training test accuracy")
    print(
        f"{'held out':22s} {'chosen':18s} {'tau':>6s} {'val_loss':>9s} {'val_acc':>8s} "
        f"{'regret pp':>10s} {'(val_loss)':>10s} {'(val_acc)':>10s}"
    )
    for held_out in datasets:
        chosen = best([d for d in datasets if d != held_out])
        for bench, data in results.items():
            if group[bench] != held_out:
                continue
            scored = per_bench(data, family[chosen])
            loss = per_bench(data, family["val_loss"])
            acc = per_bench(data, None)
            folds[bench] = {"chosen": chosen, "early": scored, "val_loss": loss, "val_acc": acc}
            print(
                f"{bench:22s} {chosen:18s} {scored['tau']:6.3f} {loss['tau']:9.3f} "
                f"{acc['tau']:8.3f} {scored['regret_pp']:10.2f} {loss['regret_pp']:10.2f} "
                f"{acc['regret_pp']:10.2f}"
            )
    final = best(datasets)
    print(f"chosen on all datasets: {final}")
    single = single_score_lodo(results, group, datasets)
    print("\nselection table (mean tau with full-training test accuracy):")
    for f in names:
        print(f"  {f:18s} " + " ".join(f"{b}={selection[b][f]:.3f}" for b in results))
    out = {
        "benchmarks": group,
        "family": family,
        "truth": "full-training test accuracy; a fold chooses on the other datasets only",
        "selection": selection,
        "folds": folds,
        "final": final,
        "final_params": family[final],
        "single_score": single,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "note": args.note,
    }
    path = RESULTS / "proxy_quality_cv.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {path}")
    return 0


def single_score_lodo(
    results: Mapping[str, Any], group: Mapping[str, str], datasets: Sequence[str]
) -> dict[str, Any]:
    """The "best single score", chosen without the held-out dataset, against the post-hoc best.

    Candidates: every score the benchmarks all report (oriented higher-better), the early score
    aside. For each held-out dataset the candidate with the highest mean tau on the *other*
    datasets (each dataset weighs the same) is scored on it; beside it, the best score on the
    held-out data itself, which is selected post hoc (the maximum of ~20 taus on the same data)
    and so biased upwards.
    """
    tables = {b: d["table"]["scores"] for b, d in results.items()}
    common = sorted(set.intersection(*(set(t) for t in tables.values())) - {"early_score"})

    def mean_tau(score: str, held_in: Sequence[str]) -> float:
        per_dataset = [
            np.mean([tables[b][score]["tau"] for b in results if group[b] == d]) for d in held_in
        ]
        return float(np.mean(per_dataset))

    out: dict[str, Any] = {"candidates": common, "folds": {}}
    print("\nbest single score, leave-one-dataset-out (chosen on the others) vs post hoc:")
    for held_out in datasets:
        others = [d for d in datasets if d != held_out]
        chosen = max(common, key=lambda s: (mean_tau(s, others), -common.index(s)))
        for bench in results:
            if group[bench] != held_out:
                continue
            rows = tables[bench]
            post_hoc = max(rows, key=lambda s: rows[s]["tau"])
            out["folds"][bench] = {
                "chosen": chosen,
                "tau": rows[chosen]["tau"],
                "tau_std": rows[chosen]["tau_std"],
                "post_hoc": post_hoc,
                "post_hoc_tau": rows[post_hoc]["tau"],
            }
            print(
                f"  {bench:22s} chosen {chosen:28s} tau {rows[chosen]['tau']:6.3f}   "
                f"post hoc {post_hoc:28s} {rows[post_hoc]['tau']:6.3f}"
            )
    return out


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="+", help="packaged config name(s) or YAML path(s)")
    parser.add_argument("--n", type=int, default=60, help="architectures (default 60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the sample of specs")
    parser.add_argument(
        "--brief", type=int, default=None, help="brief epochs (default: train.epochs)"
    )
    parser.add_argument("--full", type=int, default=200, help="most epochs of the full training")
    parser.add_argument("--patience", type=int, default=20, help="early stopping on val loss")
    parser.add_argument("--sweep", type=int, nargs="*", default=[1, 2, 3, 5])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--cv", action="store_true", help="choose the early score (LODO)")
    parser.add_argument("--note", default="", help="a note stored in the JSON")
    parser.add_argument("--tag", default="", help="suffix of the output file name")
    parser.add_argument(
        "--remeasure",
        nargs="+",
        default=[],
        metavar="METRIC",
        help="re-measure these metrics of the cached records at init and at the brief point",
    )
    args = parser.parse_args(argv)
    if args.cv:
        return run_cv(args)
    if len(args.config) != 1:
        parser.error("give one config (several only with --cv)")
    args.config = args.config[0]
    info = machine()
    started = time.perf_counter()
    collected = collect(args)
    table = score_table(collected)
    sweep = budget_sweep(collected)
    print_table(
        f"{args.config}: {args.n} architectures, seeds {args.seeds}, brief {collected['brief']} "
        f"epochs, full <= {args.full} (patience {args.patience}); truth: full-training test "
        "accuracy",
        table,
    )
    print("\ntau with the full-training test accuracy by brief budget (mean over seeds):")
    for epoch, row in sweep.items():
        print(f"  {int(epoch):3d} epochs: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    out = {
        "config": args.config,
        "dataset": collected["dataset"],
        "space": collected["space"],
        "n": args.n,
        "seeds": args.seeds,
        "sample_seed": args.sample_seed,
        "brief_epochs": collected["brief"],
        "full_epochs_max": args.full,
        "patience": args.patience,
        "overrides": args.set,
        "note": args.note,
        "remeasured": args.remeasure,
        "machine": info,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "seconds": time.perf_counter() - started,
        "trained_now": collected["trained_now"],
        "record_seconds_total": sum(
            r["seconds"] for rows in collected["per_seed"].values() for r in rows
        ),
        "table": table,
        "budget_sweep": sweep,
        "specs": collected["specs"],
        "records": {
            str(seed): [compact(r) for r in rows] for seed, rows in collected["per_seed"].items()
        },
    }
    tag = f"_{args.tag}" if args.tag else ""
    path = RESULTS / f"proxy_quality_{collected['dataset']}{tag}.json"
    path.write_text(json.dumps(out, default=float) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
