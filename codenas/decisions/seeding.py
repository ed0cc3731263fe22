"""Seed a new search with a source study's Pareto architectures (``codenas search --seed-from``).

Architectures travel as trial parameters (``depth``, ``width``, ``shape`` ...), which the space
turns into a spec for the new data's input and output sizes; values outside the new config's
ranges are clipped into them, and an architecture whose categorical value the new space does
not offer is left out, each with a note.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from codenas.errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from codenas.config import Config


# ----------------------------------------------------------------------------- seeding


@dataclasses.dataclass(frozen=True)
class Seed:
    """One source architecture to queue in a new search.

    Attributes:
        trial: its trial number in the source study.
        params: trial parameters valid for the new config's space.
        user_attrs: exact widths (a right-sized source trial), else empty.
        notes: what had to change (clipped values), for people.
    """

    trial: int
    params: dict[str, Any]
    user_attrs: dict[str, Any]
    notes: tuple[str, ...] = ()


def _fit_param(name: str, value: Any, field: Any) -> tuple[Any, str | None]:
    """``value`` made valid for the space config ``field``; raises ``LookupError`` if it can't."""
    from codenas.schema import FloatRange, IntRange

    if isinstance(field, IntRange):
        v = int(value)
        if field.step > 1:
            v = field.min + round((v - field.min) / field.step) * field.step
        fitted = min(max(v, field.min), field.max)
        if fitted != int(value):
            return (
                fitted,
                f"{name} {value} -> {fitted} (space.{name} is [{field.min}, {field.max}])",
            )
        return fitted, None
    if isinstance(field, FloatRange):
        clipped = min(max(float(value), field.min), field.max)
        if clipped != float(value):
            return clipped, (
                f"{name} {value:.4g} -> {clipped:.4g} (space.{name} is [{field.min}, {field.max}])"
            )
        return clipped, None
    if isinstance(field, tuple):
        if value not in field:
            raise LookupError(
                f"{name} {value!r} is not offered by the new space ({', '.join(map(str, field))})"
            )
        return value, None
    raise LookupError(f"{name} is not a sampled parameter of the new space")


def seeds_from(source: optuna.Study, config: Config, *, top: int | None = None) -> list[Seed]:
    """The Pareto architectures of ``source`` as parameters for ``config``'s space.

    Members are taken in knee order (closest to the ideal point first, see
    :mod:`codenas.decisions.picking`): the first ``top`` that fit the new space (all by default).

    Raises:
        ConfigError: the two studies use different spaces, ``top < 1``, the source has no
            front, or no architecture fits the new space.
    """
    from codenas.decisions.picking import knee_ranking
    from codenas.search.pareto import front_rows, objective_names
    from codenas.search.storage import stored_config

    where = f"--seed-from {source.study_name!r}"
    if top is not None and top < 1:
        raise ConfigError(f"--top: must be at least 1, got {top}")
    source_space = stored_config(source).space.name
    if source_space != config.space.name:
        raise ConfigError(
            f"{where}: its architectures come from the {source_space!r} space, but the new "
            f"search samples the {config.space.name!r} space; seed from a study of the same space"
        )
    rows = front_rows(source)
    if not rows:
        raise ConfigError(f"{where}: the study has no Pareto front yet (no COMPLETE trial)")
    directions = [d.name.lower() for d in source.directions]
    ordered = [r for r, _ in knee_ranking(rows, objective_names(source), directions)]
    trials = source.get_trials(deepcopy=False)
    seeds: list[Seed] = []
    refused: list[str] = []
    from codenas.spaces import layers_field

    field_name = layers_field(config.space.name)
    for row in ordered:
        if top is not None and len(seeds) == top:
            break
        trial = trials[row.trial]
        params, notes = {}, []
        try:
            for name, value in trial.params.items():
                fitted, note = _fit_param(name, value, getattr(config.space, name, None))
                params[name] = fitted
                if note:
                    notes.append(note)
        except LookupError as err:
            refused.append(f"trial {row.trial}: {err}")
            continue
        user_attrs = {}
        if field_name and trial.user_attrs.get(field_name) is not None:
            widths = [int(w) for w in trial.user_attrs[field_name]]
            if params.get("depth") != len(widths):
                notes.append(f"its exact {field_name} {widths} dropped: depth was clipped")
            else:
                top_width = getattr(config.space, "width", None)
                if top_width is not None and max(widths) > top_width.max:
                    widths = [min(w, top_width.max) for w in widths]
                    notes.append(f"{field_name} clipped to space.width.max {top_width.max}")
                user_attrs[field_name] = widths
        seeds.append(Seed(row.trial, params, user_attrs, tuple(notes)))
    if not seeds:
        raise ConfigError(
            f"{where}: none of its {len(ordered)} Pareto architecture(s) fits the new space: "
            + "; ".join(refused)
        )
    if refused:
        seeds[0] = dataclasses.replace(
            seeds[0], notes=(*seeds[0].notes, *(f"left out {r}" for r in refused))
        )
    return seeds


def enqueue_seeds(study: optuna.Study, seeds: Sequence[Seed]) -> list[int]:
    """Queue ``seeds`` into ``study`` (skipping ones already queued or run).

    Returns:
        The numbers of the trials queued now.
    """
    from codenas.decisions.rightsize import params_of
    from codenas.search.storage import enqueue
    from codenas.spaces import all_layers_fields

    existing = [
        (params_of(t), {k: t.user_attrs.get(k) for k in all_layers_fields()})
        for t in study.get_trials(deepcopy=False)
    ]
    numbers = []
    for seed in seeds:
        attrs = {k: seed.user_attrs.get(k) for k in all_layers_fields()}
        if any(p == seed.params and a == attrs for p, a in existing):
            continue
        user_attrs = {**seed.user_attrs, "codenas.seeded_from": seed.trial}
        numbers.append(enqueue(study, seed.params, user_attrs))
        existing.append((seed.params, attrs))
    return numbers


def seed_search(
    config: Config, source: optuna.Study, *, top: int | None = None, source_label: str = "config"
) -> tuple[list[Seed], list[int]]:
    """Open (or create) the study of ``config`` and queue ``source``'s Pareto architectures.

    Nothing else happens: no trial runs, and an existing study's trials, runs and parent run
    are left as they are. A new study gets its MLflow parent run here, as a search creates it
    with its study (so the search that follows, or a worker joining it, finds it at once).
    The queued trials then run first in the usual ``codenas.search.run(config)``; they count
    towards its ``n_trials``.

    Args:
        source_label: where ``config`` came from (accepted for the command line's call; the
            errors raised here name their keys themselves).

    Returns:
        ``(seeds, queued trial numbers)``.

    Raises:
        CodenasError: a bad config, dataset or storage (before anything is stored), or see
            :func:`seeds_from`.
    """
    from codenas.data import load_dataset
    from codenas.search.storage import open_study, storage_for
    from codenas.search.study import quiet_optuna
    from codenas.search.tracker import make_tracker
    from codenas.spaces import get_space

    seeds = seeds_from(source, config, top=top)
    # The checks a search makes before it stores anything (its data fits its space).
    space = get_space(config.space.name)(config.space)
    space.check_input(load_dataset(config.data).input_shape)
    with quiet_optuna():  # no "A new study created" line, as a search prints none
        study, created = open_study(config, storage_for(config))
    if created:
        make_tracker(config, study, created=True)  # the study's parent run, as a search does
    return seeds, enqueue_seeds(study, seeds)


def describe_seed(seed: Seed) -> str:
    """``"trial 3: depth=2 width=64 ... (notes)"`` for people."""
    shown = " ".join(
        f"{k}={f'{v:.3g}' if isinstance(v, float) else v}" for k, v in seed.params.items()
    )
    extra = " ".join(f"{k}={v}" for k, v in seed.user_attrs.items())
    notes = f" ({'; '.join(seed.notes)})" if seed.notes else ""
    return f"trial {seed.trial}: {shown}{' ' + extra if extra else ''}{notes}"
