"""Building blocks of the typed, frozen config: a strict base model and search-space ranges.

Ranges accept the long form ``{min: 8, max: 256, log: true}`` or a single value, which fixes
the parameter (``width: 64``). Choices accept a list or a single value. Every model forbids
unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

if TYPE_CHECKING:
    import optuna


class Frozen(BaseModel):
    """Base of every config model: immutable, unknown keys rejected, no type coercion surprises."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, validate_default=True)


def _scalar_to_range(value: Any) -> Any:
    if isinstance(value, bool):  # bool is an int to Python; never a valid bound
        raise ValueError(f"expected a number or a {{min, max}} mapping, got {value!r}")
    if isinstance(value, (int, float)):
        return {"min": value, "max": value}
    return value


class IntRange(Frozen):
    """An integer search range; ``min == max`` fixes the parameter to one value."""

    min: int
    max: int
    log: bool = False
    step: int = 1

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        return _scalar_to_range(value)

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        if self.min > self.max:
            raise ValueError(f"min <= max must hold, got min={self.min} max={self.max}")
        if self.log and self.min < 1:
            raise ValueError(f"a log range needs min >= 1, got min={self.min}")
        if self.step < 1:
            raise ValueError(f"step >= 1 must hold, got step={self.step}")
        if self.log and self.step != 1:
            raise ValueError(
                "log and step cannot be combined (Optuna samples log ranges with step 1)"
            )
        return self

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.min, self.max, log=self.log, step=self.step)


class FloatRange(Frozen):
    """A float search range; ``min == max`` fixes the parameter to one value."""

    min: float
    max: float
    log: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: Any) -> Any:
        return _scalar_to_range(value)

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if self.min > self.max:
            raise ValueError(f"min <= max must hold, got min={self.min} max={self.max}")
        if self.log and self.min <= 0:
            raise ValueError(f"a log range needs min > 0, got min={self.min}")
        return self

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.min, self.max, log=self.log)


def _to_tuple(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 0:
            raise ValueError("a choice needs at least one value, got an empty list")
        return tuple(value)
    return value


StrChoice = Annotated[tuple[str, ...], BeforeValidator(_to_tuple)]
"""A categorical choice of strings: a YAML list, or one value to fix it."""

IntChoice = Annotated[tuple[int, ...], BeforeValidator(_to_tuple)]
"""A categorical choice of integers: a YAML list, or one value to fix it."""


def check_choices(values: Sequence[Any], allowed: Sequence[Any], kind: str = "value") -> None:
    """Raise ``ValueError`` naming the first value of ``values`` that is not in ``allowed``."""
    from codenas.errors import unknown_name_message

    for value in values:
        if value not in allowed:
            raise ValueError(unknown_name_message(kind, str(value), [str(a) for a in allowed]))


def suggest_choice(trial: optuna.Trial, name: str, choices: Sequence[Any]) -> Any:
    return trial.suggest_categorical(name, list(choices))
