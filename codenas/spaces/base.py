"""What every search space is: a config, a frozen spec, ``sample`` and ``build``.

A space turns an Optuna trial into a :class:`Spec` (plain, frozen, JSON-serialisable) and a spec
into a ``torch.nn.Module``. The two steps are kept apart so that the spec MLflow logged rebuilds
the exact model without Optuna. Built modules expose ``hidden_layers``, an ``nn.ModuleList`` whose
outputs are the hidden representations the coding metrics read.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from codenas.errors import ConfigError
from codenas.registry import Registry
from codenas.schema import Frozen

if TYPE_CHECKING:
    import optuna
    from torch import nn


class SurgeryError(ConfigError):
    """A space cannot perform this operation on this network (and says why)."""


class SpaceConfig(Frozen):
    """The ``space:`` section of a config; each space subclasses it with its ranges."""

    name: str


@dataclasses.dataclass(frozen=True)
class Spec:
    """A sampled architecture. Subclasses add their fields; every field is JSON-serialisable.

    Attributes:
        input_shape: shape of one input sample, e.g. ``(64,)`` or ``(1, 8, 8)``.
        n_outputs: number of classes (or regression targets) of the head.
    """

    space: ClassVar[str] = ""
    input_shape: tuple[int, ...]
    n_outputs: int

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON types, with ``"space"`` first."""
        out: dict[str, Any] = {"space": self.space}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    def adapt(self, input_shape: tuple[int, ...], n_outputs: int) -> Spec:
        """The same architecture for another input shape and number of outputs."""
        return dataclasses.replace(self, input_shape=tuple(input_shape), n_outputs=int(n_outputs))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spec:
        names = {f.name for f in dataclasses.fields(cls)}
        body = {k: v for k, v in data.items() if k != "space"}
        unknown = sorted(set(body) - names)
        missing = sorted(names - set(body))
        if unknown or missing:
            raise ConfigError(
                f"invalid {cls.space!r} spec: "
                + "; ".join(
                    part
                    for part in (
                        f"unknown keys {', '.join(unknown)}" if unknown else "",
                        f"missing keys {', '.join(missing)}" if missing else "",
                    )
                    if part
                )
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in body.items()}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"invalid {cls.space!r} spec: {err}") from None


class Space(ABC):
    """A family of architectures. Subclass it, set the class attributes, register it.

    A space owns its networks: besides sampling and building, it answers for its own specs and
    modules which spec field holds the hidden layer sizes (:attr:`layers_field`,
    :meth:`layer_sizes`, :meth:`with_layer_sizes`), which modules make a hidden layer's units
    and which one reads them (:meth:`unit_producers`, :meth:`unit_reader`: what
    :mod:`codenas.spaces.surgery` needs to keep, widen and fold), whether an affine map on a
    layer can be folded into what follows (:meth:`foldable`: where pooling happens), and the
    surgery only some spaces can do (:meth:`remove_layer`, :meth:`insert_identity`). No caller
    outside ``spaces/`` names a space or its fields.
    """

    name: ClassVar[str]
    config_model: ClassVar[type[SpaceConfig]]
    spec_type: ClassVar[type[Spec]]
    summary: ClassVar[str] = ""
    layers_field: ClassVar[str] = "widths"
    """The spec field (and trial user attribute) holding the hidden layer sizes, first to last."""
    example_input_shape: ClassVar[tuple[int, ...]] = (1,)
    """An input shape this space accepts, for a spec written without one."""

    def __init__(self, config: SpaceConfig) -> None:
        self.config = config

    @abstractmethod
    def sample(self, trial: optuna.Trial, input_shape: tuple[int, ...], n_outputs: int) -> Spec:
        """Draw one architecture from the trial (parameter names double as MLflow params)."""

    @staticmethod
    @abstractmethod
    def build(spec: Spec) -> nn.Module:
        """The module of ``spec``: deterministic given torch's seed; has ``hidden_layers``."""

    def check_input(self, input_shape: tuple[int, ...]) -> None:  # noqa: B027 (optional hook)
        """Raise :class:`ConfigError` if this space cannot take inputs of ``input_shape``.

        The default accepts any shape; a space that cannot (a CNN on tabular data) overrides it.
        """

    # ------------------------------------------------------------------ layer sizes

    @classmethod
    def layer_sizes(cls, spec: Spec) -> tuple[int, ...]:
        """The hidden layer sizes (units, channels) of ``spec``, first to last."""
        return tuple(int(w) for w in getattr(spec, cls.layers_field))

    @classmethod
    def with_layer_sizes(cls, spec: Spec, sizes: Sequence[int]) -> Spec:
        """``spec`` rebuilt with other hidden layer sizes (and so, possibly, another depth)."""
        return dataclasses.replace(spec, **{cls.layers_field: tuple(int(w) for w in sizes)})

    # ------------------------------------------------------------------ surgery

    @staticmethod
    def unit_producers(model: nn.Module, layer: int) -> list[nn.Module]:
        """The modules whose outputs are hidden layer ``layer``'s units (a ``Linear``, or a
        ``Conv2d`` and its batch norm), each indexed by unit along its first dimension."""
        raise SurgeryError("this space does not expose its layers for surgery")

    @staticmethod
    def unit_reader(model: nn.Module, layer: int) -> tuple[nn.Module, nn.Module | None]:
        """The ``Linear``/``Conv2d`` that reads hidden layer ``layer``'s units next (the next
        layer or the head), and the batch norm right behind it, if any."""
        raise SurgeryError("this space does not expose its layers for surgery")

    @classmethod
    def foldable(cls, spec: Spec, layer: int) -> bool:
        """Whether an affine map of layer ``layer``'s output can be folded into its reader
        (False where a non-linear step such as max pooling stands between them)."""
        return True

    @classmethod
    def remove_layer(cls, model: nn.Module, spec: Spec, layer: int) -> tuple[Spec, nn.Module]:
        """Hidden layer ``layer`` removed, its map folded into its reader where it is linear."""
        raise SurgeryError(f"{cls.name} networks cannot remove a layer by folding it")

    @classmethod
    def insert_identity(cls, model: nn.Module, spec: Spec, after: int) -> tuple[Spec, nn.Module]:
        """Net2DeeperNet: a layer that starts as the identity inserted after ``after``."""
        raise SurgeryError(f"{cls.name} networks cannot insert an identity layer")


SPACES: Registry[type[Space]] = Registry("search space")


def register_space(cls: type[Space]) -> type[Space]:
    """Class decorator: make a :class:`Space` available by its ``name`` in configs."""
    SPACES.add(cls.name, cls)
    return cls


def get_space(name: str) -> type[Space]:
    return SPACES.get(name)


def spec_from_dict(data: Mapping[str, Any]) -> Spec:
    """Rebuild a :class:`Spec` from its :meth:`Spec.to_dict` form (e.g. read from MLflow)."""
    if not isinstance(data, Mapping) or "space" not in data:
        raise ConfigError("a spec must be a mapping with a 'space' key")
    return get_space(str(data["space"])).spec_type.from_dict(data)


def build_model(spec: Spec | Mapping[str, Any]) -> nn.Module:
    """Build the module of a spec (or of its dict form)."""
    if not isinstance(spec, Spec):
        spec = spec_from_dict(spec)
    return get_space(spec.space).build(spec)


def space_of(spec: Spec | Mapping[str, Any]) -> type[Space]:
    """The registered space a spec (or its dict form) belongs to."""
    name = spec.space if isinstance(spec, Spec) else str(spec.get("space"))
    return get_space(name)


def layer_sizes(spec: Spec) -> tuple[int, ...]:
    """The hidden layer sizes of ``spec``, whatever its space (``Space.layer_sizes``)."""
    return space_of(spec).layer_sizes(spec)


def with_layer_sizes(spec: Spec, sizes: Sequence[int]) -> Spec:
    """``spec`` with other hidden layer sizes, whatever its space."""
    return space_of(spec).with_layer_sizes(spec, sizes)


def all_layers_fields() -> tuple[str, ...]:
    """Every registered space's layer-size field, each once (``("widths", "channels")``)."""
    return tuple(dict.fromkeys(cls.layers_field for _, cls in SPACES.items()))


def layers_field(space: str) -> str:
    """The spec field (and trial user attribute) holding the layer sizes of space ``space``."""
    return get_space(space).layers_field
