"""Import a reference implementation's model into the zoo.

    >>> conversion = zoo.convert.from_keras(keras.applications.MobileNetV2(weights=None))
    >>> conversion.name, conversion.knobs            # ('mobilenet_v2', {'padding': 'same', ...})
    >>> model = conversion.create("torch")           # the same network in PyTorch, Keras' weights loaded

`from_torchvision(model)`, `from_timm(model)`, `from_keras(model)` and `from_gluon(net)` read a built
reference model (its weights as they are: random, trained, or loaded from a file the user has) and
return a `Conversion`: the registered zoo model, the knobs that make the zoo build the reference's
variant of it, and the canonical weight mapping (`zoo.weights`). Nothing is downloaded. A reference
model the zoo cannot build raises `ConversionError`, naming what differs.

One module per family (`zoo.convert.resnet`, ...) registers, for each library, a function that
recognises that library's builds of the family and converts them; `zoo.convert.common` holds what
they share. The reference libraries are imported by the caller, never here.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ZooError

LIBRARIES = ("torchvision", "timm", "keras", "gluon")


class ConversionError(ZooError, ValueError):
    """A reference model that no registered zoo model with any knobs reproduces; the message says what differs."""


@dataclass(frozen=True)
class Conversion:
    """A reference model as the zoo builds it: `zoo.create_model(name, framework, **knobs)` with `weights`."""

    name: str
    knobs: Mapping[str, Any]
    weights: Mapping[str, np.ndarray] = field(repr=False)
    reference: str  # what was converted, e.g. "keras.applications.ResNet50"

    def create(self, framework: str = "torch"):
        """The zoo's model in `framework`, built with the knobs and holding the reference's weights."""
        from ..registry import backend, create_model

        model = create_model(self.name, framework, **self.knobs)
        backend(framework).load_weights(model, self.weights)
        return model


# library -> functions model -> Conversion | None (None: not a model of that function's family)
Converter = Callable[[Any], "Conversion | None"]
_CONVERTERS: dict[str, list[Converter]] = {library: [] for library in LIBRARIES}
_loaded = False


def converter(library: str) -> Callable[[Converter], Converter]:
    """Register a function that converts `library`'s builds of one family (None for any other model)."""
    if library not in _CONVERTERS:
        raise ValueError(f"library must be one of {', '.join(LIBRARIES)}; got {library!r}")

    def register(function: Converter) -> Converter:
        _CONVERTERS[library].append(function)
        return function

    return register


def _convert(library: str, model: Any) -> Conversion:
    global _loaded
    if not _loaded:
        # Every module of this package but `common` registers the converters of a family (or library).
        for module in pkgutil.iter_modules(__path__):
            if module.name != "common":
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True
    for function in _CONVERTERS[library]:
        conversion = function(model)
        if conversion is not None:
            return conversion
    from .common import describe

    raise ConversionError(
        f"{describe(model)} is not a {library} model the zoo converts: the zoo converts {library}'s "
        f"{', '.join(sorted({f.__module__.rsplit('.', 1)[-1] for f in _CONVERTERS[library]}))} builds"
    )


def from_torchvision(model) -> Conversion:
    """A `torchvision.models` model (any of the 34 the zoo registers, weights as they are)."""
    return _convert("torchvision", model)


def from_timm(model) -> Conversion:
    """A timm model of a family the zoo has (ResNet, SE-ResNet, DenseNet, VGG, MobileNet, EfficientNet)."""
    return _convert("timm", model)


def from_keras(model) -> Conversion:
    """A `keras.applications` model (their preprocessing layers, where they have any, are not part of it)."""
    return _convert("keras", model)


def from_gluon(net) -> Conversion:
    """A `mxnet.gluon.model_zoo.vision` network, initialised (weights as they are)."""
    return _convert("gluon", net)


__all__ = ["Conversion", "ConversionError", "LIBRARIES", "converter", "from_gluon", "from_keras", "from_timm",
           "from_torchvision"]
