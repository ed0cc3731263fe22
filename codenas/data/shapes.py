"""``shapes``: procedural dSprites-like sprites with known generative factors.

In the spirit of dSprites (Matthey et al., 2017), written here with numpy: one white sprite on a
black ``size x size`` image, rendered from five independent factors on a fixed grid. Every
sample is one grid point; the dataset is a seeded subsample of ``n_samples`` grid points drawn
without replacement, so no two samples share a factor vector.

=============  =========================================  ==========================
factor         values (level i of L)                      default levels L
=============  =========================================  ==========================
shape          square, ellipse, heart                     3
scale          linspace(0.5, 1.0, L)                      ``scales: 6``
orientation    2 pi i / L radians, counter-clockwise      ``orientations: 40``
x              linspace(0.2, 0.8, L), left to right       ``positions: 32``
y              linspace(0.2, 0.8, L), top to bottom       ``positions: 32``
=============  =========================================  ==========================

Geometry, in units of the image side: at scale 1 every sprite fits in a circle of radius
:data:`RADIUS` (0.2) around its position, which is the sprite's centroid, so a sprite never
leaves the image. The square has half-side ``r/sqrt(2)``, the ellipse semi-axes ``r`` and
``r/2``, the heart is the curve ``(X^2 + Y^2 - 1)^3 = X^2 Y^3`` scaled into the circle. As in
dSprites, the square (4-fold) and the ellipse (2-fold) look the same at some orientations,
so orientation is only fully identifiable from the heart.

Targets: ``task: {classify: FACTOR}`` (the factor's levels are the classes; a list of factors
makes their joint level the class) or
``task: {regress: all}`` / ``{regress: [FACTOR, ...]}`` (the factors' levels as real
targets, z-scored on the train part). Every sample carries its integer factor levels in the
order of :data:`FACTORS`, which the disentanglement metrics read.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from codenas.data.base import DataConfig, Dataset, FactorTask, register_dataset
from codenas.errors import DataError

FACTORS: tuple[str, ...] = ("shape", "scale", "orientation", "x", "y")
SPRITES: tuple[str, ...] = ("square", "ellipse", "heart")
RADIUS = 0.2  # circumscribed radius of a sprite at scale 1, in units of the image side
SCALE_RANGE = (0.5, 1.0)
POSITION_RANGE = (RADIUS, 1.0 - RADIUS)

# The heart curve (X^2 + Y^2 - 1)^3 <= X^2 Y^3 spans Y in [-1, 1.236]; its centroid is at
# Y = 0.2935 and its farthest point from there (the bottom tip) at distance 1.2935.
_HEART_CY = 0.2935
_HEART_R = 1.2935


class ShapesConfig(DataConfig):
    """``data:`` of ``shapes`` (see the module docstring for the grid)."""

    name: str = "shapes"
    size: Literal[32, 64] = 32
    n_samples: int = Field(4000, ge=30)
    scales: int = Field(6, ge=1)
    orientations: int = Field(40, ge=1)
    positions: int = Field(32, ge=1)
    cache: str | None = None
    task: FactorTask = FactorTask(classify="shape")

    @field_validator("task")
    @classmethod
    def _task(cls, value: FactorTask) -> FactorTask:
        value.factor_columns(FACTORS)
        return value

    @model_validator(mode="after")
    def _fits_grid(self) -> ShapesConfig:
        total = math.prod(self.levels)
        if self.n_samples > total:
            raise ValueError(
                f"n_samples <= grid size must hold, got n_samples={self.n_samples} and a grid "
                f"of {' x '.join(map(str, self.levels))} = {total}"
            )
        return self

    @property
    def levels(self) -> tuple[int, ...]:
        """Number of levels of each factor, in the order of :data:`FACTORS`."""
        return (len(SPRITES), self.scales, self.orientations, self.positions, self.positions)


def _grid(low: float, high: float, n: int) -> NDArray[np.float64]:
    return np.array([(low + high) / 2]) if n == 1 else np.linspace(low, high, n)


def factor_values(levels: NDArray[np.integer], config: ShapesConfig) -> dict[str, np.ndarray]:
    """The real values of factor levels.

    Args:
        levels: shape ``(n_samples, 5)``, integer levels in the order of :data:`FACTORS`.
        config: the grid.

    Returns:
        ``{"shape": index into SPRITES, "scale": multiplier of RADIUS, "orientation":
        radians, "x": column in [0, 1], "y": row in [0, 1]}``, each of shape ``(n_samples,)``.
    """
    levels = np.asarray(levels)
    positions = _grid(*POSITION_RANGE, config.positions)
    return {
        "shape": levels[:, 0],
        "scale": _grid(*SCALE_RANGE, config.scales)[levels[:, 1]],
        "orientation": 2 * np.pi * levels[:, 2] / config.orientations,
        "x": positions[levels[:, 3]],
        "y": positions[levels[:, 4]],
    }


def render_sprites(
    shape: NDArray[np.integer],
    scale: NDArray[np.floating],
    orientation: NDArray[np.floating],
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    *,
    size: int = 32,
    chunk: int = 1024,
) -> NDArray[np.uint8]:
    """Binary images of sprites, one per row of the factor arrays.

    Args:
        shape: ``(n,)`` indices into :data:`SPRITES`.
        scale: ``(n,)`` sprite size as a multiple of :data:`RADIUS`.
        orientation: ``(n,)`` counter-clockwise rotation in radians.
        x: ``(n,)`` centroid column in [0, 1] (0 = left edge of the image).
        y: ``(n,)`` centroid row in [0, 1] (0 = top edge of the image).
        size: side of the square images in pixels.
        chunk: images rendered per vectorised step (bounds memory at ``chunk * size**2``).

    Returns:
        ``(n, size, size)`` uint8 images, 1 inside the sprite and 0 outside.
    """
    shape, scale, orientation, x, y = (np.asarray(a) for a in (shape, scale, orientation, x, y))
    n = len(shape)
    out = np.zeros((n, size, size), dtype=np.uint8)
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size  # pixel centres
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        r = (RADIUS * scale[sl]).astype(np.float32)[:, None, None]
        cos = np.cos(orientation[sl]).astype(np.float32)[:, None, None]
        sin = np.sin(orientation[sl]).astype(np.float32)[:, None, None]
        dx = centres[None, None, :] - x[sl].astype(np.float32)[:, None, None]  # (c, 1, size)
        dy = centres[None, :, None] - y[sl].astype(np.float32)[:, None, None]  # (c, size, 1)
        # Rotate the sampling grid by -orientation. Rows grow downwards, so "up" is -dy: a
        # positive angle turns the sprite counter-clockwise as seen on screen.
        p = (cos * dx - sin * dy) / r
        q = (-sin * dx - cos * dy) / r  # q points up on screen
        kind = shape[sl]
        mask = np.zeros(p.shape, dtype=bool)
        for k, sprite in enumerate(SPRITES):
            rows = kind == k
            if rows.any():
                mask[rows] = _inside(sprite, p[rows], q[rows])
        out[sl] = mask
    return out


def _inside(sprite: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Whether local points ``(p, q)`` (unit circumscribed circle, q up) lie in ``sprite``."""
    if sprite == "square":
        return np.maximum(np.abs(p), np.abs(q)) <= 1 / math.sqrt(2)
    if sprite == "ellipse":
        return p**2 + (q / 0.5) ** 2 <= 1
    hx, hy = p * _HEART_R, q * _HEART_R + _HEART_CY
    return (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3 <= 0


def _generation_key(config: ShapesConfig) -> dict[str, Any]:
    """What the images depend on (not the task or the split fractions)."""
    return {
        "version": 1,
        "size": config.size,
        "n_samples": config.n_samples,
        "levels": list(config.levels),
        "seed": config.seed,
    }


def generate_shapes(config: ShapesConfig) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The images and factor levels of ``config``, read from ``config.cache`` when it matches.

    Returns:
        ``(images, levels)``: ``(n_samples, 1, size, size)`` uint8 in {0, 1}, and
        ``(n_samples, 5)`` int64 factor levels in the order of :data:`FACTORS`.
    """
    key = _generation_key(config)
    if config.cache is not None:
        cached = _read_cache(Path(config.cache).expanduser(), key)
        if cached is not None:
            return cached
    rng = np.random.default_rng(config.seed)
    flat = rng.choice(math.prod(config.levels), size=config.n_samples, replace=False)
    levels = np.stack(np.unravel_index(flat, config.levels), axis=1).astype(np.int64)
    values = factor_values(levels, config)
    images = render_sprites(
        values["shape"],
        values["scale"],
        values["orientation"],
        values["x"],
        values["y"],
        size=config.size,
    )[:, None]
    if config.cache is not None:
        _write_cache(Path(config.cache).expanduser(), key, images, levels)
    return images, levels


def _read_cache(
    path: Path, key: dict[str, Any]
) -> tuple[NDArray[np.uint8], NDArray[np.int64]] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = json.loads(str(npz["key"]))
            images, levels = npz["images"], npz["factors"]
    except Exception as err:
        raise DataError(
            f"data.cache: cannot read {str(path)!r} as a shapes cache ({err}); delete it or "
            "point data.cache elsewhere"
        ) from None
    if stored != key:
        diff = ", ".join(
            f"{k}={stored.get(k)!r} (now {v!r})" for k, v in key.items() if stored.get(k) != v
        )
        raise DataError(
            f"data.cache: {str(path)!r} holds sprites made with other settings ({diff}); "
            "delete it or point data.cache elsewhere"
        )
    return images, levels


def _write_cache(path: Path, key: dict[str, Any], images: np.ndarray, levels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so that a parallel worker never reads a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, images=images, factors=levels, key=np.array(json.dumps(key)))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"data.cache: cannot write {str(path)!r}: {err.strerror}") from None


@register_dataset(
    "shapes",
    config_model=ShapesConfig,
    summary="procedural dSprites-like sprites (shape, scale, orientation, x, y), 32 or 64 px",
    factors=True,
    cacheable=True,
)
def load_shapes(config: DataConfig) -> Dataset:
    """Generate (or read from ``data.cache``) the sprites and split them."""
    assert isinstance(config, ShapesConfig)
    images, levels = generate_shapes(config)
    grid = " x ".join(f"{n} {name}" for n, name in zip(config.levels, FACTORS, strict=True))
    return config.task.dataset(
        "shapes",
        config,
        images,
        levels,
        factor_names=FACTORS,
        level_counts=tuple(config.levels),
        description=f"shapes {config.size}x{config.size}, {config.n_samples} of {grid}",
    )
