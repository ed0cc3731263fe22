"""What a sampler models: the trials built from their recorded parameters.

A trial's parameters (``depth``, ``width``, ``shape``) describe the network it trained, except
where a user attribute named by the space's layer field (``widths``, ``channels``) fixed the
layer sizes exactly: a code-sampler move, a ``codenas rightsize`` proposal, an architecture
seeded from another study (:func:`codenas.spaces.fixed_widths`). Such a trial records the
nearest parameters the space can hold (its parent's ``shape``, a clipped ``width``), not the
widths it was built with, so a model of parameters -> values (TPE's, GP's) must not read it:
it would learn values at points that were never trained.

:class:`ModelledSampler` gives its base sampler the study without those trials whenever the
base samples, and the whole study elsewhere (``before_trial``/``after_trial``, which may write).
Every sampler a search makes goes behind one (:func:`codenas.search.study.make_sampler`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseSampler

from codenas.search._optuna_private import StudyView

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState


def built_from_params(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was built from its recorded parameters: no user attribute named by a
    space's layer field fixed its layer sizes."""
    from codenas.spaces import all_layers_fields

    return all(trial.user_attrs.get(field) is None for field in all_layers_fields())


def modelled(study: Study) -> Study:
    """``study`` as a base sampler models it: its trials built from their parameters."""
    return StudyView(study, built_from_params)  # type: ignore[return-value]


class DelegatingSampler(BaseSampler):
    """A sampler in front of ``base``: every call goes to ``base`` as it is, unless a subclass
    changes it (:class:`ModelledSampler`, :class:`codenas.search.screen.ScreenedSampler`)."""

    def __init__(self, base: BaseSampler) -> None:
        self.base = base

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r})"

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.base.after_trial(study, trial, state, values)


class ModelledSampler(DelegatingSampler):
    """``base``, sampling from the trials built from their parameters (module docstring);
    ``before_trial``/``after_trial`` see the whole study.

    Args:
        base: any Optuna sampler; ``study.sampler.base`` is it.
    """

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(modelled(study), trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.base.sample_relative(modelled(study), trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.base.sample_independent(modelled(study), trial, param_name, param_distribution)
