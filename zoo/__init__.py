"""Classic CNN Zoo: classic convolutional networks in PyTorch, TensorFlow/Keras, MXNet Gluon and JAX/Flax.

    >>> import zoo
    >>> zoo.list_models("resnet*")
    >>> model = zoo.create_model("resnet50", framework="tf", num_classes=10)
    >>> zoo.get_spec("resnet50").params
"""
from . import contract, weights
from .errors import (
    FrameworkUnavailableError,
    InputError,
    InputShapeError,
    UnknownModelError,
    WeightFileError,
    WeightMismatchError,
    ZooError,
)
from .inputs import InputSignature
from .registry import (
    FRAMEWORKS,
    REFERENCE_FRAMEWORK,
    FamilyConfig,
    Framework,
    ModelSpec,
    available_frameworks,
    backend,
    create_model,
    framework_info,
    get_spec,
    list_models,
)

__all__ = [
    "FRAMEWORKS", "REFERENCE_FRAMEWORK", "FamilyConfig", "Framework", "FrameworkUnavailableError", "InputError",
    "InputShapeError", "InputSignature", "ModelSpec", "UnknownModelError", "WeightFileError", "WeightMismatchError", "ZooError",
    "available_frameworks", "backend", "contract", "create_model", "framework_info", "get_spec", "list_models", "weights",
]
