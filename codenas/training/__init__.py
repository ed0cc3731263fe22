"""The brief training loop (Lightning Fabric over in-memory tensors), threads and seeds."""

from codenas.training.loop import BriefTrainer, StopTraining, TrainResult, count_parameters
from codenas.training.runtime import default_threads, set_threads, trial_seed

__all__ = [
    "BriefTrainer",
    "StopTraining",
    "TrainResult",
    "count_parameters",
    "default_threads",
    "set_threads",
    "trial_seed",
]
