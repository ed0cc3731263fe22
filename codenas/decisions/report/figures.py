"""The figures of a neural-code report (matplotlib), each with its one-sentence reading guide.

Every figure of the report in one file (about 410 lines): they share the layout helpers, the
unit ordering and the reading-guide convention.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from codenas.evaluation.neural_code import NeuralCode

if TYPE_CHECKING:
    from matplotlib.figure import Figure


ARTIFACT_DIR = "report"
MAX_UNITS_SHOWN = 64  # columns of the factor matrices; more would be unreadable
MAX_CLASSES_SHOWN = 20
UNITS_PER_CLASS = 2
_DPI = 100


# ----------------------------------------------------------------------------- figures


def _new_figure(width: float = 7.5, height: float = 4.8) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI)


def _finish(fig: Figure, title: str, guide: str) -> Figure:
    """Title on top, the reading guide in small italics at the bottom, the axes in between.

    Both are wrapped to the figure's width; the margins follow their number of lines.
    """
    width_in, height_in = fig.get_figwidth(), fig.get_figheight()
    title_lines = [
        w for part in title.split("\n") for w in textwrap.wrap(part, int(width_in * 9.5))
    ]
    guide_lines = textwrap.wrap(guide, width=int(width_in * 14.5))
    line_title, line_guide = 12 * 1.25 / 72, 8.5 * 1.3 / 72  # inches per line
    top = 1.0 - (0.02 + line_title * len(title_lines)) / height_in
    bottom = (0.1 + line_guide * len(guide_lines)) / height_in
    fig.suptitle("\n".join(title_lines), fontsize=12, fontweight="bold", y=0.985, va="top")
    fig.text(
        0.5,
        0.06 / height_in,
        "\n".join(guide_lines),
        ha="center",
        va="bottom",
        fontsize=8.5,
        style="italic",
        color="0.25",
    )
    fig.tight_layout(rect=(0.0, bottom, 1.0, top), pad=0.6)
    return fig


def capacity_figure(code: NeuralCode) -> tuple[Figure, str, str]:
    """Width, alive units, effective rank and participation ratio per layer, and the
    right-size rule's proposal."""
    from codenas.decisions.rightsize import plan_layers, usage_from_code

    usage, cka = usage_from_code(code)
    plan = plan_layers(usage, cka, min_width=1)
    n = len(usage)
    fig = _new_figure(max(8.0, 1.6 * n + 3.0), 4.8)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(n)
    bars: list[tuple[str, list[float], str]] = [
        ("width", [u.width for u in usage], "0.82"),
        ("units alive", [u.alive for u in usage], "tab:blue"),
        ("effective rank", [u.effective_rank for u in usage], "tab:orange"),
        ("participation ratio", [u.participation_ratio or 0.0 for u in usage], "tab:green"),
    ]
    step = 0.8 / len(bars)
    for i, (label, values, color) in enumerate(bars):
        ax.bar(x - 0.4 + step * (i + 0.5), values, step, label=label, color=color)
    for p in plan:
        left, right = p.index - 0.42, p.index + 0.42
        if p.new_width is None:
            ax.text(
                p.index,
                p.usage.width * 1.03,
                f"removed\n(CKA {p.cka_previous:.2f})",
                ha="center",
                va="bottom",
                fontsize=8,
                color="black",
            )
        else:
            ax.hlines(
                p.new_width,
                left,
                right,
                colors="black",
                linewidth=2,
                label="rightsize keeps" if p.index == plan[0].index else "_nolegend_",
            )
    ax.set_xticks(x, [f"layer {k}\n{u.width} units" for k, u in enumerate(usage)])
    ax.set_xlabel("hidden layer (first to last)")
    ax.set_ylabel("units")
    # Headroom: the "removed" labels above the bars, the legend in one row above them.
    ax.set_ylim(0, max(u.width for u in usage) * 1.38)
    ax.legend(fontsize=8, loc="upper center", ncol=5, frameon=False, columnspacing=1.2)
    ax.grid(axis="y", alpha=0.3)
    title = "How much of each layer's width is used"
    guide = (
        "Grey is a layer's width, blue its units that fire at all, orange its effective rank "
        "(how many directions its activity spreads over); a tall grey bar over a short orange "
        "one is unused width, and the black line is what `codenas rightsize` would keep "
        "(1.5 x effective rank, at most the units alive)."
    )
    return _finish(fig, title, guide), title, guide


def cka_figure(code: NeuralCode) -> tuple[Figure, str, str]:
    """Linear CKA between every pair of hidden layers."""
    from codenas.metrics import cka_matrix

    m = cka_matrix(code.layers)
    n = len(m)
    fig = _new_figure(max(5.0, 0.7 * n + 3.5), max(4.2, 0.6 * n + 2.8))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis")
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="black" if m[i, j] > 0.6 else "white",
                )
    labels = [f"{k}\n({w})" for k, w in enumerate(code.widths)]
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), [f"{k} ({w})" for k, w in enumerate(code.widths)])
    ax.set_xlabel("hidden layer (width)")
    ax.set_ylabel("hidden layer (width)")
    fig.colorbar(im, ax=ax, label="linear CKA (1 = same representation)")
    title = "Similarity between layers (linear CKA)"
    guide = (
        "Bright cells off the diagonal are layers computing nearly the same representation "
        "(Nguyen, Raghu & Kornblith 2021); a layer at 0.95 or more with the one before it is "
        "a candidate for removal."
    )
    return _finish(fig, title, guide), title, guide


def _unit_order(score: NDArray[np.float64]) -> NDArray[np.int64]:
    """Units (rows of ``score``, ``(n_units, n_factors)``) grouped by their best factor, then
    by their best score, highest first: how MIG reads the matrix, made visible."""
    top = score.max(axis=1)
    best = np.where(top > 0, score.argmax(axis=1), score.shape[1])  # silent units last
    return np.lexsort((-top, best))


def _top_units(score: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    if score.shape[0] <= k:
        return np.arange(score.shape[0])
    return np.sort(np.argsort(-score.max(axis=1), kind="stable")[:k])


def factor_mi_figure(
    code: NeuralCode,
) -> tuple[Figure, str, str, NDArray[np.int64], NDArray[np.float64]]:
    """Unit x factor normalised mutual information of the last hidden layer, MIG-sorted."""
    from codenas.metrics import discrete_entropy, mig, mutual_information_matrix

    assert code.factors is not None
    acts = code.layers[-1]
    mi = mutual_information_matrix(acts, code.factors)
    h = np.asarray(discrete_entropy(code.factors), dtype=np.float64)
    norm = mi / np.where(h > 0, h, 1.0)
    keep = _top_units(norm, MAX_UNITS_SHOWN)
    order = keep[_unit_order(norm[keep])]
    shown = norm[order].T  # factors x units
    gaps = []
    for j in range(norm.shape[1]):
        col = np.sort(norm[:, j])[::-1]
        gaps.append(col[0] - (col[1] if len(col) > 1 else 0.0))
    score = mig(acts, code.factors)
    labels = [f"{n}  (gap {g:.2f})" for n, g in zip(_factor_names(code), gaps, strict=True)]
    fig, ax = _factor_heatmap(
        shown, float(norm.max()), labels, order, norm[order], "I(unit; factor) / H(factor)"
    )
    subset = (
        "" if len(order) == acts.shape[1] else f", {len(order)} most informative of {acts.shape[1]}"
    )
    ax.set_xlabel(f"unit of the last hidden layer (sorted by the factor it informs most{subset})")
    ax.set_ylabel("generative factor")
    title = f"What each unit knows about each factor (MIG = {score:.2f})"
    guide = (
        "A disentangled code has one bright cell per column (white lines group the units by the "
        "factor they inform most) and, in each row, one unit far brighter than the next: that "
        "gap, per factor in the row label, is what MIG averages (Chen et al. 2018)."
    )
    return _finish(fig, title, guide), title, guide, order, norm[order]


def dci_figure(
    code: NeuralCode, order: NDArray[np.int64], groups: NDArray[np.float64]
) -> tuple[Figure, str, str]:
    """DCI importance matrix (extra-trees, as ``dci_forest``), in the MI figure's unit order.

    ``groups``: the MI figure's ``(n_units, n_factors)`` matrix in that order, whose factor
    groups are marked here too.
    """
    from codenas.metrics.disentanglement import dci_from_importance, importance_matrix

    assert code.factors is not None
    # The rows in the order the search's ``dci_forest`` metric gets them (a positional split),
    # so that the D and C shown here are the logged ones.
    x = np.asarray(code.layers[-1], dtype=np.float64)
    y = code.factors.astype(np.int64)
    n_train = math.ceil(0.9 * len(x))
    importance, accuracy = importance_matrix(x, y, n_train, "forest")
    d, c = dci_from_importance(importance)
    shown = importance[order].T
    fig, ax = _factor_heatmap(
        shown, float(shown.max()), _factor_names(code), order, groups, "importance (rows sum to 1)"
    )
    ax.set_xlabel("unit of the last hidden layer (same order as the mutual-information figure)")
    ax.set_ylabel("factor predicted")
    ax.set_title(
        f"disentanglement {d:.2f}, completeness {c:.2f}, informativeness {accuracy:.2f}",
        fontsize=9,
    )
    title = "Which units each factor's predictor uses (DCI importance)"
    guide = (
        "Each row is one factor's extra-trees predictor (Eastwood & Williams 2018); a "
        "disentangled code puts each unit's importance on a single row (disentanglement) and each "
        "row's on few units (completeness); informativeness is their test accuracy."
    )
    return _finish(fig, title, guide), title, guide


def _factor_heatmap(
    shown: NDArray[np.float64],
    vmax: float,
    row_labels: Sequence[str],
    order: NDArray[np.int64],
    groups: NDArray[np.float64],
    colorbar_label: str,
) -> tuple[Figure, Any]:
    """A factors x units heat map (rows ``row_labels``, columns the units ``order``), with the
    white lines between factor groups and a colour bar; the callers add the axis labels."""
    fig = _new_figure(max(6.5, 0.16 * len(order) + 3.5), max(4.4, 0.45 * len(row_labels) + 3.0))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(
        shown,
        aspect="auto",
        vmin=0.0,
        vmax=max(1e-9, vmax),
        cmap="magma",
        interpolation="nearest",
    )
    ax.set_yticks(range(len(row_labels)), list(row_labels))
    _unit_ticks(ax, order)
    _group_lines(ax, groups)
    fig.colorbar(im, ax=ax, label=colorbar_label)
    return fig, ax


def _group_lines(ax: Any, score: NDArray[np.float64]) -> None:
    """White lines between the groups of units (columns) that inform the same factor most."""
    top = score.max(axis=1)
    best = np.where(top > 0, score.argmax(axis=1), score.shape[1])
    for k in np.flatnonzero(np.diff(best)) + 1:
        ax.axvline(k - 0.5, color="white", linewidth=1.5)


def _factor_names(code: NeuralCode) -> list[str]:
    assert code.factors is not None
    n = code.factors.shape[1]
    names = list(code.factor_names)
    return names if len(names) == n else [f"f{j}" for j in range(n)]


def _unit_ticks(ax: Any, order: NDArray[np.int64]) -> None:
    n = len(order)
    stride = max(1, math.ceil(n / 32))
    ticks = list(range(0, n, stride))
    ax.set_xticks(ticks, [str(int(order[t])) for t in ticks], fontsize=7, rotation=90)


def selectivity_figure(code: NeuralCode) -> tuple[Figure, str, str]:
    """Distribution of the class selectivity index, one curve per layer."""
    from codenas.metrics import selectivity_index

    assert code.labels is not None
    fig = _new_figure(7.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(0.0, 1.0, 21).tolist()
    colors = _layer_colors(len(code.layers))
    for k, acts in enumerate(code.layers):
        si = selectivity_index(acts, code.labels)
        weights = np.full(len(si), 1.0 / len(si))
        ax.hist(
            si,
            bins=bins,
            weights=weights,
            histtype="step",
            linewidth=2,
            color=colors[k],
            label=f"layer {k} ({len(si)} units, median {np.median(si):.2f})",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("class selectivity index (0 = same response to every class, 1 = one class only)")
    ax.set_ylabel("share of the layer's units")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    title = "Class selectivity of the units, per layer"
    guide = (
        "Mass near 0 is a distributed code; a tail towards 1 marks class-specific units, which "
        "is not a virtue in itself: networks that generalise well rely little on them "
        "(Morcos et al. 2018; Leavitt & Morcos 2021)."
    )
    return _finish(fig, title, guide), title, guide


def _layer_colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.15 + 0.7 * k / max(1, n - 1)) for k in range(n)]


def selective_units_figure(code: NeuralCode) -> tuple[Figure, str, str]:
    """The most selective units of the last hidden layer per class, with their class profile."""
    from codenas.metrics import selectivity_index

    assert code.labels is not None
    acts = np.asarray(code.layers[-1], dtype=np.float64)
    y = code.labels.astype(np.int64)
    si = selectivity_index(acts, y)
    n_classes = int(y.max()) + 1
    shifted = acts - np.minimum(acts.min(axis=0), 0.0)
    means = np.stack([shifted[y == c].mean(axis=0) for c in range(n_classes)])  # classes x units
    preferred = means.argmax(axis=0)
    classes = list(range(min(n_classes, MAX_CLASSES_SHOWN)))
    rows, labels = [], []
    for c in classes:
        units = np.where(preferred == c)[0]
        units = units[np.argsort(-si[units], kind="stable")][:UNITS_PER_CLASS]
        for u in units:
            rows.append(u)
            labels.append(f"class {c}: unit {u} (SI {si[u]:.2f})")
    if not rows:  # every unit is silent
        rows, labels = [0], [f"unit 0 (SI {si[0]:.2f})"]
    profile = means[: len(classes), rows].T
    profile = profile / np.where(
        profile.max(axis=1, keepdims=True) > 0, profile.max(axis=1, keepdims=True), 1.0
    )
    fig = _new_figure(max(6.0, 0.45 * len(classes) + 4.5), max(3.8, 0.26 * len(rows) + 2.4))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(
        profile, aspect="auto", vmin=0.0, vmax=1.0, cmap="Blues", interpolation="nearest"
    )
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel(
        "class"
        + (f" (first {MAX_CLASSES_SHOWN} of {n_classes})" if n_classes > MAX_CLASSES_SHOWN else "")
    )
    ax.set_ylabel(f"unit (top {UNITS_PER_CLASS} per class it prefers)")
    fig.colorbar(im, ax=ax, label="mean activity for the class / unit's maximum")
    missing = [c for c in classes if c not in preferred]
    title = "Most selective units per class (last hidden layer)"
    guide = (
        "Each row is one unit's mean activity per class, scaled to its largest; a single dark "
        "cell means the unit fires for one class only"
        + (f"; no unit prefers class(es) {', '.join(map(str, missing))}" if missing else "")
        + "."
    )
    return _finish(fig, title, guide), title, guide


def draw(code: NeuralCode) -> list[tuple[str, Figure, str, str]]:
    """Every figure the code supports, as ``(name, figure, title, guide)``."""
    out = []
    fig, title, guide = capacity_figure(code)
    out.append(("capacity", fig, title, guide))
    if len(code.layers) > 1:  # one layer has no other to compare with
        fig, title, guide = cka_figure(code)
        out.append(("cka", fig, title, guide))
    if code.factors is not None:
        fig, title, guide, order, groups = factor_mi_figure(code)
        out.append(("factor_mi", fig, title, guide))
        fig, title, guide = dci_figure(code, order, groups)
        out.append(("dci_importance", fig, title, guide))
    if code.labels is not None:
        fig, title, guide = selectivity_figure(code)
        out.append(("selectivity", fig, title, guide))
        fig, title, guide = selective_units_figure(code)
        out.append(("selective_units", fig, title, guide))
    return out
