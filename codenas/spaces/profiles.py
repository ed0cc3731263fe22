"""Width profiles ("shapes") across the layers of a network.

``width`` is always the *widest* layer, so a profile never builds a network wider than the
sampled width, whatever its depth. Consecutive widths differ by the factor ``ratio``
(2 by default), rounded, and never fall below ``min_width``.

===========  ===============================================  ==================
shape        layer i of d (k_i = min(i, d-1-i), m = max k_i)  d = 5, width = 64
===========  ===============================================  ==================
constant     width                                            64 64 64 64 64
funnel       width / ratio**i                                 64 32 16 8 4
expand       width / ratio**(d-1-i)                           4 8 16 32 64
diamond      width / ratio**(m - k_i)                         16 32 64 32 16
hourglass    width / ratio**k_i                               64 32 16 32 64
===========  ===============================================  ==================
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("constant", "funnel", "expand", "diamond", "hourglass")


def width_profile(
    shape: str, depth: int, width: int, *, ratio: float = 2.0, min_width: int = 1
) -> list[int]:
    """Widths of ``depth`` layers whose widest layer has ``width`` units.

    Args:
        shape: one of :data:`SHAPES`.
        depth: number of hidden layers, >= 1.
        width: width of the widest layer, >= 1.
        ratio: factor between consecutive widths in the non-constant shapes, >= 1.
        min_width: floor of every width.

    Returns:
        A list of ``depth`` positive integers.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    if depth < 1 or width < 1 or ratio < 1 or min_width < 1:
        raise ValueError(
            f"depth, width, min_width >= 1 and ratio >= 1 must hold, got "
            f"depth={depth} width={width} ratio={ratio} min_width={min_width}"
        )
    edge = [min(i, depth - 1 - i) for i in range(depth)]
    top = max(edge)
    exponents = {
        "constant": [0] * depth,
        "funnel": list(range(depth)),
        "expand": list(range(depth - 1, -1, -1)),
        "diamond": [top - k for k in edge],
        "hourglass": edge,
    }[shape]
    return [max(min_width, round(width / ratio**e)) for e in exponents]
