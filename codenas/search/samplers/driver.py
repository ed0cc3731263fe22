"""``study.sampler: code`` for codenas's own driver: the config's options -> a CodeSampler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codenas.search.samplers.code import CodeSampler, check_options, make_base_sampler

if TYPE_CHECKING:
    from codenas.config import Config
    from codenas.data import Dataset
    from codenas.spaces import Space

WIDTH_ATTRS = {"mlp": "widths", "cnn": "channels"}
"""The trial user attribute through which each space takes exact widths
(:func:`codenas.spaces.profiles.fixed_widths`)."""


def code_sampler(
    config: Config, seed: int, *, data: Dataset | None = None, space: Space | None = None
) -> CodeSampler:
    """The code sampler of ``config`` (``study.sampler_options`` checked first).

    The warm start needs ``data`` and ``space`` (without them it is skipped); its candidates
    are seeded by ``study.seed``, not by the per-worker ``seed``, so that every worker ranks
    the same candidates. A space without exact widths (not ``mlp``/``cnn``) gets no moves.
    """
    options: dict[str, Any] = dict(config.study.sampler_options)
    check_options(options)
    base = make_base_sampler(
        str(options.pop("base", "tpe")), seed, options.pop("base_options", None)
    )
    warm = bool(options.pop("warm_start", True))
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
    widths_attr = WIDTH_ATTRS.get(config.space.name)
    if widths_attr is None:
        options["move_probability"] = 0.0
    options.setdefault("min_width", int(getattr(config.space, "min_width", 1)))
    return CodeSampler(
        base,
        seed=seed,
        accuracy_objective=accuracy,
        widths_attr=widths_attr or "widths",
        warm_start=score,
        warm_start_seed=int(config.study.seed),
        **options,
    )
