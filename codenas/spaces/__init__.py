"""Search spaces: an Optuna trial -> a frozen, serialisable :class:`Spec` -> a ``torch.nn.Module``.

Knows nothing of metrics, training or MLflow. A space owns its networks: the field of its
layer sizes and the surgery on its modules (:mod:`codenas.spaces.surgery`) are answered here,
so no caller names a space. To add a space, write one file with a :class:`Space` subclass
decorated with :func:`register_space` and import it here.
"""

from codenas.spaces import cnn as _cnn  # noqa: F401  (registers "cnn")
from codenas.spaces import mlp as _mlp  # noqa: F401  (registers "mlp")
from codenas.spaces.base import (
    SPACES,
    Space,
    SpaceConfig,
    Spec,
    all_layers_fields,
    build_model,
    get_space,
    layer_sizes,
    layers_field,
    register_space,
    space_of,
    spec_from_dict,
    with_layer_sizes,
)
from codenas.spaces.cnn import CNN, CNNConfig, CNNSpace, CNNSpec
from codenas.spaces.mlp import MLP, MLPConfig, MLPSpace, MLPSpec
from codenas.spaces.profiles import (
    SHAPES,
    ProfileConfig,
    fixed_widths,
    narrowest_width,
    width_profile,
)
from codenas.spaces.surgery import (
    SurgeryError,
    add_unit,
    fold_affine,
    keep_units,
    widen_units,
)

DEFAULT_SPACE = MLPSpace.name
"""The space of a config whose ``space:`` section names none."""

__all__ = [
    "CNN",
    "DEFAULT_SPACE",
    "MLP",
    "SHAPES",
    "SPACES",
    "CNNConfig",
    "CNNSpace",
    "CNNSpec",
    "MLPConfig",
    "MLPSpace",
    "MLPSpec",
    "ProfileConfig",
    "Space",
    "SpaceConfig",
    "Spec",
    "SurgeryError",
    "add_unit",
    "all_layers_fields",
    "build_model",
    "fixed_widths",
    "fold_affine",
    "get_space",
    "keep_units",
    "layer_sizes",
    "layers_field",
    "narrowest_width",
    "register_space",
    "space_of",
    "spec_from_dict",
    "widen_units",
    "width_profile",
    "with_layer_sizes",
]
