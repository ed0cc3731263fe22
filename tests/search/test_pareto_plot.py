"""The Pareto figure is readable (labels that do not collide) and has an interactive twin."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import optuna

from codenas.search import pareto


def crowded_study(tmp_path: Path) -> optuna.Study:
    """60 trials on a real SQLite storage whose front has clusters of near-equal members."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(
        study_name="crowded",
        directions=["maximize", "maximize", "minimize"],
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
    )
    study.set_user_attr("codenas.objectives", ["val_accuracy", "capacity_usage", "params"])
    for _ in range(60):
        params = float(int(10 ** rng.uniform(2.5, 5)))
        accuracy = min(0.98, 0.5 + 0.1 * np.log10(params) + rng.normal(0, 0.03))
        usage = float(np.clip(1.2 - 0.2 * np.log10(params) + rng.normal(0, 0.05), 0, 1))
        study.add_trial(
            optuna.create_trial(
                values=[accuracy, usage, params], user_attrs={"spec": {"space": "mlp"}}
            )
        )
    return study


def test_front_labels_do_not_collide(tmp_path: Path) -> None:
    study = crowded_study(tmp_path)
    fig = pareto.plot_front(study)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.get_size_inches() * fig.dpi
    assert width >= 1500 and height >= 500  # three panels, each readable at a glance
    front = {str(t.number) for t in study.best_trials}
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_text() in front]
        assert {t.get_text() for t in labels} == front, "every member labelled"
        boxes = [t.get_window_extent(renderer) for t in labels]
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b), "two labels overlap"


def test_front_html_is_interactive_and_self_contained(tmp_path: Path) -> None:
    study = crowded_study(tmp_path)
    html = pareto.front_html(study)
    assert html.startswith("<!doctype html>") and "Pareto front of study 'crowded'" in html
    assert "plotly.js" in html.lower() or "Plotly.newPlot" in html
    assert '<script src="https://cdn.plot.ly' not in html  # plotly.js inlined: works offline
    assert len(html) > 1_000_000
    assert "capacity_usage" in html and "Trial" in html
