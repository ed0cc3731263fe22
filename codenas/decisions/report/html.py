"""The report's files: the PNGs and one self-contained HTML page."""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codenas.evaluation.neural_code import NeuralCode

if TYPE_CHECKING:
    pass

from codenas.decisions.report.figures import _DPI, draw
from codenas.text import format_number


@dataclasses.dataclass(frozen=True)
class FigureFile:
    """One figure of a report: ``name.png`` with its title and reading guide."""

    name: str
    title: str
    guide: str
    path: Path


@dataclasses.dataclass(frozen=True)
class Report:
    """The files of one report.

    Attributes:
        out_dir: the folder written; html: ``report.html`` in it; figures: the PNGs.
        title: what network the report is about.
        run_id: the MLflow run the files were logged to, or ``None``.
        notes: caveats shown on the page (e.g. a re-training that differs from the trial).
        reused: the report existed already and was not written again (its figures are the
            PNGs found beside it, without titles).
    """

    out_dir: Path
    html: Path
    figures: list[FigureFile]
    title: str
    run_id: str | None = None
    notes: tuple[str, ...] = ()
    reused: bool = False


def existing_report(html_path: Path, title: str) -> Report:
    """The report whose page is ``html_path``, as it is on disk (``reused=True``)."""
    out = html_path.parent
    figures = [FigureFile(p.stem, "", "", p) for p in sorted(out.glob("*.png"))]
    return Report(out, html_path, figures, title, reused=True)


# ----------------------------------------------------------------------------- files


_KEY_METRICS = (
    "val_accuracy",
    "test_accuracy",
    "val_r2",
    "test_r2",
    "val_loss",
    "test_loss",
    "params",
    "capacity_usage",
    "effective_rank",
    "dead_fraction",
    "layer_redundancy",
    "mig",
    "dci_forest.disentanglement",
    "class_selectivity.mean",
    "linear_probe_accuracy",
)


def write_report(
    code: NeuralCode, out_dir: str | Path, *, notes: Sequence[str] = (), subtitle: str = ""
) -> Report:
    """Draw every figure of ``code`` into ``out_dir`` as PNGs and one ``report.html``."""
    from codenas.search.pareto import spec_summary

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, fig, title, guide in draw(code):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=_DPI)
        figures.append(FigureFile(name, title, guide, path))
    if len(code.layers) == 1:
        notes = [*notes, "One hidden layer: no CKA matrix between layers to draw."]
    page = _html(code, figures, notes, subtitle, spec_summary(code.spec.to_dict()))
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return Report(out, html_path, figures, code.title, notes=tuple(notes))


def _html(
    code: NeuralCode,
    figures: Sequence[FigureFile],
    notes: Sequence[str],
    subtitle: str,
    summary: str,
) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(k)}</th>"
        f"<td>{format_number(float(code.metrics[k]), thousands=True)}</td></tr>"
        for k in _KEY_METRICS
        if k in code.metrics
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>codenas report: {esc(code.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}figure{margin:2em 0}"
        "figcaption{font-style:italic;color:#444}table{border-collapse:collapse}"
        "th,td{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}"
        ".note{background:#fff6d6;padding:.5em 1em}</style></head><body>",
        f"<h1>Neural code of {esc(code.title)}</h1>",
        f"<p><code>{esc(summary)}</code>{' &middot; ' + esc(subtitle) if subtitle else ''}</p>",
        f"<p>Activations of {len(code.layers[0])} validation samples; widths "
        f"{esc(', '.join(map(str, code.widths)))}.</p>",
    ]
    parts += [f"<p class='note'>{esc(n)}</p>" for n in notes]
    if rows:
        parts.append(f"<table>{rows}</table>")
    for f in figures:
        data = base64.b64encode(f.path.read_bytes()).decode("ascii")
        parts.append(
            # The reading guide is printed in the PNG itself (an image logged alone keeps it);
            # the page gives it only as the image's text alternative, not a second time.
            f"<figure><h2>{esc(f.title)}</h2><img alt='{esc(f.guide)}' "
            f"src='data:image/png;base64,{data}'></figure>"
        )
    parts.append("<p><small>Written by codenas.</small></p></body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- entry points


def _compare(recorded: dict[str, float], now: dict[str, float]) -> list[str]:
    for name in ("val_accuracy", "val_r2", "val_loss"):
        if name in recorded and name in now:
            if abs(recorded[name] - now[name]) > 1e-3 * max(1.0, abs(recorded[name])):
                return [
                    f"The network was trained again for this report and does not reproduce the "
                    f"trial exactly: {name} {now[name]:.4g} now, {recorded[name]:.4g} in the "
                    "search (non-deterministic kernels or another device)."
                ]
            return []
    return []
