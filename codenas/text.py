"""How numbers read in codenas's tables and messages."""

from __future__ import annotations

import math
from typing import Any


def format_number(value: Any, *, thousands: bool = False) -> str:
    """``12345`` for a whole float, ``0.9611`` (4 significant digits) otherwise.

    Non-floats print as they are; ``nan``/``inf`` as Python writes them; ``thousands`` adds the
    separators (``12,345``) of report pages.
    """
    if not isinstance(value, float):
        return str(value)
    if math.isfinite(value) and value == int(value) and abs(value) >= 1:
        return f"{int(value):,d}" if thousands else f"{int(value):d}"
    return f"{value:.4g}"
