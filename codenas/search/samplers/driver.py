"""``study.sampler: code`` for codenas's own driver: the config's options -> a CodeSampler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codenas.search.samplers.code import CodeSampler, check_options, make_base_sampler
from codenas.spaces import layers_field, narrowest_width

if TYPE_CHECKING:
    from codenas.config import Config
    from codenas.data import Dataset
    from codenas.search.samplers.inherit import Inheritance
    from codenas.spaces import Space


def code_sampler(
    config: Config, seed: int, *, data: Dataset | None = None, space: Space | None = None
) -> CodeSampler:
    """The code sampler of ``config`` (``study.sampler_options`` checked first).

    The warm start needs ``data`` and ``space`` (without them it is skipped); its candidates
    are seeded by ``study.seed``, not by the per-worker ``seed``, so that every worker ranks
    the same candidates. Moves write the exact layer sizes to the trial user attribute named
    by the space (``Space.layers_field``; :func:`codenas.spaces.profiles.fixed_widths`).
    """
    options: dict[str, Any] = dict(config.study.sampler_options)
    check_options(options)
    base = make_base_sampler(
        str(options.pop("base", "tpe")), seed, options.pop("base_options", None)
    )
    warm = bool(options.pop("warm_start", True))
    options.pop("inherit", None)  # the objective's business: inheritance_of
    options.pop("inherit_store", None)
    accuracy = options.pop("accuracy_objective", None)
    names = list(config.objective_names)
    if accuracy is None and "val_accuracy" in names:
        accuracy = "val_accuracy"
    if isinstance(accuracy, str):
        if accuracy not in names:
            from codenas.errors import ConfigError

            raise ConfigError(
                f"study.sampler_options.accuracy_objective: {accuracy!r} is not an objective "
                f"(objectives: {', '.join(names)})"
            )
        accuracy = names.index(accuracy)
    score = None
    if warm and data is not None and space is not None:
        from codenas.search.samplers.warmstart import naswot_score

        score = naswot_score(config, data, space)
    widths_attr = layers_field(config.space.name)
    # Moves never cut a layer below the space's narrowest width (space.min_width, by default
    # the number of classes; without the data, the explicit key or 1).
    if data is not None:
        floor = narrowest_width(config.space, data.n_outputs)
    else:
        floor = int(getattr(config.space, "min_width", None) or 1)
    options.setdefault("min_width", floor)
    return CodeSampler(
        base,
        seed=seed,
        accuracy_objective=accuracy,
        widths_attr=widths_attr,
        warm_start=score,
        warm_start_seed=int(config.study.seed),
        **options,
    )


def inheritance_of(config: Config) -> Inheritance | None:
    """The inheritance of ``study.sampler_options.inherit: true`` (code sampler), else ``None``."""
    options = config.study.sampler_options
    if config.study.sampler != "code" or not options.get("inherit", False):
        return None
    from codenas.search.samplers.inherit import Inheritance

    return Inheritance(str(options.get("inherit_store", "codenas-weights")))
