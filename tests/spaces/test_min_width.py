"""``space.min_width``: the narrowest layer, by default no narrower than the classes."""

from __future__ import annotations

import optuna
import pytest

import codenas
from codenas.errors import ConfigError
from codenas.spaces import CNNConfig, CNNSpace, MLPConfig, MLPSpace

FUNNEL = {"depth": 5, "width": 64, "shape": "funnel", "activation": "relu", "dropout": 0.0}


def widths(params: dict, n_outputs: int = 10, **config: object) -> tuple[int, ...]:
    config = {"depth": {"min": 1, "max": 6}, **config}
    spec = MLPSpace(MLPConfig(**config)).sample(optuna.trial.FixedTrial(params), (16,), n_outputs)
    return spec.widths


def test_by_default_no_layer_is_narrower_than_the_classes() -> None:
    # width bounds the widest layer; a funnel of 5 layers used to end at 4 units for 10 classes.
    assert widths(FUNNEL) == (64, 32, 16, 10, 10)
    assert widths({**FUNNEL, "shape": "expand"}) == (10, 10, 16, 32, 64)
    assert widths(FUNNEL, n_outputs=3) == (64, 32, 16, 8, 4)
    assert widths(FUNNEL, n_outputs=1) == (64, 32, 16, 8, 4)  # a regression: at least 2
    assert widths({**FUNNEL, "depth": 6}, n_outputs=1) == (64, 32, 16, 8, 4, 2)


def test_min_width_set_is_honoured_but_never_above_the_widest_layer() -> None:
    assert widths(FUNNEL, min_width=4) == (64, 32, 16, 8, 4)
    assert widths(FUNNEL, min_width=20) == (64, 32, 20, 20, 20)
    # A sampled width below the floor: every layer that wide, the widest still `width`.
    assert widths({**FUNNEL, "width": 8}, width={"min": 4, "max": 64}) == (8, 8, 8, 8, 8)


def test_the_cnn_space_honours_it_too() -> None:
    params = {"depth": 4, "width": 32, "shape": "funnel", "kernel_size": 3, "activation": "relu"}
    space = CNNSpace(CNNConfig(width={"min": 8, "max": 32}))
    spec = space.sample(optuna.trial.FixedTrial(params), (1, 32, 32), 6)
    assert spec.channels == (32, 16, 8, 6)


def test_min_width_above_the_widest_allowed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"space: .*min_width <= width.max must hold"):
        codenas.load_config(None, ["space.min_width=300"])
    with pytest.raises(ConfigError, match=r"space.min_width: .*min_width >= 1"):
        codenas.load_config(None, ["space.min_width=0"])


def test_every_packaged_config_still_validates() -> None:
    for name in codenas.config.packaged_configs():
        assert codenas.load_config(name).space.min_width is None


def test_codenas_spaces_shows_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    from codenas.cli import main

    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    for space in ("mlp", "cnn"):  # (tests may register more spaces)
        block = out.split(f"keys of space {space!r}")[1].split("keys of space")[0]
        line = next(line for line in block.splitlines() if line.split()[:1] == ["min_width"])
        assert "null" in line and "narrowest layer" in line
