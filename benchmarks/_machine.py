"""What machine a benchmark ran on, recorded in every result file.

The benchmarks run as scripts (``python benchmarks/NAME.py``), so this module is imported as
``_machine`` from the benchmarks folder.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """CPU model, cores, the 1-minute load when the benchmark started, and the versions."""
    import numpy as np
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        load = float("nan")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_1min_at_start": load,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
