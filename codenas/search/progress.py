"""codenas's own progress bar for a search: trials done, failures, the front, the ETA."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


def _short(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.3g}"


class ProgressBar:
    """An Optuna callback drawing a tqdm bar over ``total`` trials.

    After each trial it shows the size of the Pareto front and, per objective, the best value
    on the front; failed and pruned trials are reported on one line each above the bar.
    """

    def __init__(
        self,
        total: int,
        names: list[str],
        directions: list[str],
        *,
        file: Any = None,
        disable: bool = False,
    ) -> None:
        from tqdm.auto import tqdm

        self.names = names
        self.directions = directions
        self.bar = tqdm(
            total=total,
            unit="trial",
            desc="search",
            file=file or sys.stderr,
            disable=disable,
            dynamic_ncols=True,
        )
        self.failed = 0
        self.pruned = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = trial.state.name
        if state == "FAIL":
            self.failed += 1
            reason = trial.user_attrs.get("fail_reason", "unknown reason")
            self.bar.write(f"trial {trial.number} failed: {reason}")
        elif state == "PRUNED":
            self.pruned += 1
            reason = trial.user_attrs.get("prune_reason", "")
            self.bar.write(f"trial {trial.number} pruned: {reason}".rstrip(": "))
        front = study.best_trials
        postfix = {"front": len(front)}
        if front:
            for i, (name, direction) in enumerate(zip(self.names, self.directions, strict=True)):
                pick = max if direction == "maximize" else min
                postfix[name] = _short(pick(t.values[i] for t in front))
        if self.failed:
            postfix["failed"] = self.failed
        if self.pruned:
            postfix["pruned"] = self.pruned
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
