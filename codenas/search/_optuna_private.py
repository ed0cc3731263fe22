"""The one place codenas reads what Optuna keeps without a public API.

Optuna stores the parameters of a queued (WAITING) trial, given to ``study.enqueue_trial``,
in the trial's system attribute ``"fixed_params"``; ``FrozenTrial.params`` stays empty until
the trial runs, and no public accessor exists (Optuna 5.1). codenas needs them to recognise an
architecture that is already queued (right-sizing, seeding). Every such read goes through
:func:`queued_params`; ``tests/search/test_trust.py`` checks on a real study that the key still
means this, so an Optuna release that moves it fails that test instead of silently queueing
duplicates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

_FIXED_PARAMS = "fixed_params"  # optuna/study/study.py enqueue_trial, optuna/trial/_trial.py


def queued_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The parameters a WAITING trial was queued with (``{}`` if none were given)."""
    return dict(trial.system_attrs.get(_FIXED_PARAMS, {}))
