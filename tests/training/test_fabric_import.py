"""Lightning Fabric imported without torchmetrics and the Trainer, in a fresh interpreter (the
test process has imported both long before)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, operator, sys
    import torch
    from lightning_utilities.core.imports import compare_version

    from codenas.config import TrainConfig, validate_config
    from codenas.data import load_dataset
    from codenas.spaces import MLPSpec, build_model
    from codenas.training.loop import BriefTrainer

    data = load_dataset(validate_config({{"data": {{"name": "{name}"}}}}, "t.yaml").data)
    trainer = BriefTrainer(data, TrainConfig(epochs=1, accelerator="cpu"))
    after_trainer = sorted(m for m in ("torchmetrics", "lightning.pytorch", "scipy.signal")
                           if m in sys.modules)
    import lightning_fabric.utilities.imports as fabric_imports
    stood_in = fabric_imports._TORCHMETRICS_GREATER_EQUAL_1_0_0
    torch.manual_seed(0)
    spec = MLPSpec(input_shape=data.input_shape, n_outputs=data.n_outputs, widths=(8,))
    result = trainer.fit(build_model(spec), seed=0)
    import torchmetrics
    print(json.dumps({{
        "after_trainer": after_trainer,
        "stood_in": stood_in,
        "real": compare_version("torchmetrics", operator.ge, "1.0.0"),
        "has_metric": hasattr(torchmetrics, "Metric"),
        "metrics": sorted(result.metrics),
    }}))
    """
)


def python(script: str) -> object:
    """What ``script``, run in a fresh interpreter, printed last, as JSON."""
    path = os.environ.get("PYTHONPATH")
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(name: str) -> dict:
    got = python(SCRIPT.format(name=name))
    assert isinstance(got, dict)
    return got


def test_a_trainer_leaves_torchmetrics_and_the_trainer_unimported() -> None:
    got = run("iris")
    assert got["after_trainer"] == []
    # Fabric's own version comparison saw the installed torchmetrics' version, as it would
    # have with the real package
    assert got["stood_in"] is got["real"] is True
    # and the stand-in is gone: a later import gives the real package
    assert got["has_metric"]
    assert "val_accuracy" in got["metrics"]


def test_a_regression_task_still_scores_r2_with_torchmetrics() -> None:
    got = run("diabetes")
    assert got["after_trainer"] == []
    assert {"val_r2", "test_r2"} <= set(got["metrics"])


def test_without_the_standalone_package_fabric_comes_from_lightning() -> None:
    script = (
        "import sys, json\n"
        "sys.modules['lightning_fabric'] = None  # as if pytorch-lightning shipped no copy\n"
        "from codenas.training.fabric import Fabric\n"
        "fabric = Fabric(accelerator='cpu', devices=1)\n"
        "print(json.dumps([Fabric.__module__, str(fabric.device)]))\n"
    )
    assert python(script) == ["lightning.fabric.fabric", "cpu"]
