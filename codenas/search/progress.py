"""codenas's own progress bar for a search: trials done, failures, the front, the ETA."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from codenas.search._optuna_private import best_trials, trials_after

if TYPE_CHECKING:
    import optuna


def _short(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:  # a count (params): exact
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.3g}"


class ProgressBar:
    """An Optuna callback drawing a tqdm bar over ``total`` trials (a count without a bar when
    ``total`` is ``None``: a search bounded by its timeout only).

    After each trial it shows the size of the Pareto front and, per objective, the best value
    on the front (labelled "best of each": the values come from different members); failed
    and pruned trials are reported on one line each above the bar.
    """

    def __init__(
        self,
        total: int | None,
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
        self.bar.set_postfix_str(self.postfix(study, trial), refresh=False)
        self.bar.update(1)

    def postfix(self, study: optuna.Study, after: optuna.trial.FrozenTrial | None = None) -> str:
        """``front=N, best of each: a=.., b=..``: each objective's best value on the front,
        from whichever member has it (not one trial's values), then failures and prunings;
        ``after``: the trial that just ended (the study as read after it)."""
        front = best_trials(study, None if after is None else trials_after(study, after))
        parts = [f"front={len(front)}"]
        if front:
            best = []
            for i, (name, direction) in enumerate(zip(self.names, self.directions, strict=True)):
                pick = max if direction == "maximize" else min
                best.append(f"{name}={_short(pick(t.values[i] for t in front))}")
            parts.append("best of each: " + ", ".join(best))
        if self.failed:
            parts.append(f"failed={self.failed}")
        if self.pruned:
            parts.append(f"pruned={self.pruned}")
        return ", ".join(parts)

    def close(self) -> None:
        self.bar.close()
