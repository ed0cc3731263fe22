"""How a training run is set up on this machine: torch/BLAS threads and per-trial seeds."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config


def trial_seed(config: Config, trial: optuna.Trial, origin: int | None) -> int:
    """The training seed of a trial; a retry (``origin`` set) reuses its original's seed."""
    return int(config.study.seed) * 1_000_003 + (trial.number if origin is None else origin)


def default_threads(workers: int = 1) -> int:
    """Torch threads per worker: the cores this process may use, split between workers."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def set_threads(threads: int) -> None:
    """Pin torch's and the BLAS libraries' (numpy, scikit-learn) threads of this process.

    Threads beyond the cores a worker owns do not add speed; on a busy machine they spin and
    wait for each other (more than 10x slower on 2 shared cores).
    """
    import threadpoolctl
    import torch

    torch.set_num_threads(threads)
    threadpoolctl.threadpool_limits(limits=threads)
