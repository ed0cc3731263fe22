"""Search spaces: an Optuna trial -> a frozen, serialisable :class:`Spec` -> a ``torch.nn.Module``.

Knows nothing of metrics, training or MLflow. To add a space, write one file with a
:class:`Space` subclass decorated with :func:`register_space` and import it here.
"""

from codenas.spaces import cnn as _cnn  # noqa: F401  (registers "cnn")
from codenas.spaces import mlp as _mlp  # noqa: F401  (registers "mlp")
from codenas.spaces.base import (
    SPACES,
    Space,
    SpaceConfig,
    Spec,
    build_model,
    get_space,
    register_space,
    spec_from_dict,
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

__all__ = [
    "CNN",
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
    "build_model",
    "fixed_widths",
    "get_space",
    "narrowest_width",
    "register_space",
    "spec_from_dict",
    "width_profile",
]
