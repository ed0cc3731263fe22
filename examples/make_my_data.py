"""Write the example user data of ``configs/my-data.yaml``: ``my-data.csv`` (and ``.npz``).

A small synthetic table in the format codenas reads from users: 300 samples of 6 numeric
sensor readings generated from two known discrete factors, ``size`` (3 levels) and ``colour``
(4 levels). The config classifies ``size`` (``data.label: size``) and gives both columns as
factors. Run from the repository root::

    python examples/make_my_data.py          # rewrites examples/my-data.csv
    python examples/make_my_data.py --npz    # also writes examples/my-data.npz

The ``.npz`` variant holds the same data as arrays ``x`` (300, 6), ``y`` (300,) int,
``factors`` (300, 2) int and ``factor_names`` ["size", "colour"].
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, factors)``: features ``(n, 6)``, labels ``(n,)``, factors ``(n, 2)``."""
    rng = np.random.default_rng(seed)
    size = rng.integers(0, 3, n)
    colour = rng.integers(0, 4, n)
    mix = rng.standard_normal((2, 6))
    z = np.stack([size - 1.0, (colour - 1.5) / 1.5], axis=1)
    x = np.tanh(z @ mix) + 0.15 * rng.standard_normal((n, 6))
    return x, size, np.stack([size, colour], axis=1)


def main() -> None:
    x, y, factors = make()
    assert (y == factors[:, 0]).all()  # the label is the size factor
    header = [f"sensor_{i}" for i in range(1, x.shape[1] + 1)] + ["size", "colour"]
    lines = [",".join(header)]
    for row, (s, c) in zip(x, factors, strict=True):
        lines.append(",".join([*(f"{v:.4f}" for v in row), str(s), str(c)]))
    (HERE / "my-data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if "--npz" in sys.argv[1:]:
        np.savez(
            HERE / "my-data.npz",
            x=x.astype(np.float32),
            y=y,
            factors=factors,
            factor_names=np.array(["size", "colour"]),
        )


if __name__ == "__main__":
    main()
