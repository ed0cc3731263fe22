"""Reading a config: YAML files and packaged configs, ``key=value`` overrides, one-line errors."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from codenas.config.models import DEFAULT_CONFIG, Config, validate_config
from codenas.errors import ConfigError

# ----------------------------------------------------------------------------- loading


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``key.path=value`` overrides applied (values parsed as YAML)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        path, value = _parse_override(item)
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {item!r}: {where} is not a mapping, got {child!r}")
            node = child
        node[path[-1]] = value
    return out


def packaged_configs() -> list[str]:
    """Names of the configs shipped with codenas (usable in place of a path)."""
    root = resources.files("codenas") / "configs"
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{source}: cannot read the config: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    return {} if raw is None else raw


def resolve_config_path(path: str | Path | None) -> tuple[Path, str]:
    """The file of ``path``: a YAML file, or the name of a packaged config (default one if None)."""
    if path is None:
        path = DEFAULT_CONFIG
    candidate = Path(path)
    if candidate.is_file():
        return candidate, str(path)
    name = str(path).removesuffix(".yaml")
    if name in packaged_configs():
        packaged = resources.files("codenas") / "configs" / f"{name}.yaml"
        return Path(str(packaged)), f"{name} (packaged)"
    raise ConfigError(
        f"{path}: no such config file (packaged configs: {', '.join(packaged_configs())})"
    )


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load and validate a search config.

    Args:
        path: a YAML file, the name of a packaged config (``codenas.config.packaged_configs()``),
            or ``None`` for the default digits MLP search.
        overrides: ``"key.path=value"`` strings (values parsed as YAML), applied before
            validation, e.g. ``["train.epochs=3", "space.width.max=512"]``.

    Returns:
        The frozen :class:`Config`.

    Raises:
        ConfigError: a one-line message naming the file and key path.
    """
    file, source = resolve_config_path(path)
    raw = _read_yaml(file, source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(raw).__name__}")
    return validate_config(apply_overrides(raw, overrides), source)
