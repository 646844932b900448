"""What the family converters share: reading a reference model's arrays, and the layout changes from
Keras' and Gluon's conventions to the canonical (PyTorch) names and layouts of `zoo.weights`."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from . import ConversionError

# Canonical names of a BatchNorm's four tensors, in Keras' order (gamma, beta, moving mean, moving variance).
BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")


def describe(model: Any) -> str:
    """`model`'s class, and its name where it has one (Keras' model names, Gluon's prefixes)."""
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    name = getattr(model, "name", None) or getattr(model, "prefix", None)
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def class_name(model: Any) -> str:
    return type(model).__name__


def module_of(model: Any) -> str:
    return type(model).__module__


def is_instance_of(model: Any, module_prefix: str) -> bool:
    """True when `model`'s class or a base of it is defined under `module_prefix` (e.g. "torchvision.models")."""
    return any(cls.__module__.startswith(module_prefix) for cls in type(model).__mro__)


def torch_state(model) -> dict[str, np.ndarray]:
    """A torch module's state_dict as float32/64 numpy arrays, BatchNorm step counters left out."""
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in model.state_dict().items()
            if not name.endswith("num_batches_tracked")}


def torch_modules(model, kind: str) -> list:
    """The submodules of `model` whose class is named `kind` (e.g. "BatchNorm2d"), in order."""
    return [module for module in model.modules() if type(module).__name__ == kind]


def first_bn_eps(model) -> float:
    """The epsilon of a torch model's BatchNorm layers, which must all share one value."""
    values = {float(m.eps) for m in model.modules() if type(m).__name__.startswith("BatchNorm")}
    if len(values) != 1:
        raise ConversionError(f"the zoo builds one BatchNorm epsilon per model; {describe(model)} has {sorted(values)}")
    return values.pop()


def conv_from_hwio(kernel: np.ndarray) -> np.ndarray:
    """A Keras Conv2D kernel (kH, kW, in, out) in PyTorch's (out, in, kH, kW)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def depthwise_from_keras(kernel: np.ndarray) -> np.ndarray:
    """A Keras DepthwiseConv2D kernel (kH, kW, C, M) in PyTorch's (C*M, 1, kH, kW)."""
    kh, kw, channels, multiplier = kernel.shape
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw))


def dense_from_keras(kernel: np.ndarray, flattened: tuple[int, int, int] | None = None) -> np.ndarray:
    """A Keras Dense kernel (in, out) in PyTorch's (out, in). `flattened`: the (H, W, C) map a Flatten fed
    it, whose NHWC order is permuted to PyTorch's NCHW flatten order."""
    if flattened is None:
        return np.ascontiguousarray(kernel.T)
    h, w, c = flattened
    out = kernel.shape[1]
    return np.ascontiguousarray(kernel.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, c * h * w))


def batch_norm(prefix: str, gamma, beta, mean, var) -> dict[str, np.ndarray]:
    """The canonical entries of one BatchNorm (`prefix.weight`, `.bias`, `.running_mean`, `.running_var`)."""
    return {f"{prefix}.{suffix}": np.asarray(array) for suffix, array in zip(BN_SUFFIXES, (gamma, beta, mean, var))}


def keras_weights(model) -> dict[str, list[np.ndarray]]:
    """Layer name -> that layer's weights (`get_weights()` order) for every Keras layer that has any."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def keras_layer_types(model) -> dict[str, str]:
    return {layer.name: type(layer).__name__ for layer in model.layers}


def gluon_arrays(net) -> dict[str, np.ndarray]:
    """A Gluon block's parameters (running statistics included) by their names without the block's prefix."""
    prefix = net.prefix
    return {name[len(prefix):] if name.startswith(prefix) else name: param.data().asnumpy()
            for name, param in net.collect_params().items()}


def take(arrays: Mapping[str, np.ndarray], names: Iterable[str], what: str) -> list[np.ndarray]:
    """`arrays[name]` for each of `names`, or one ConversionError naming all that are missing."""
    names = list(names)
    missing = [name for name in names if name not in arrays]
    if missing:
        raise ConversionError(f"{what} lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return [arrays[name] for name in names]


def conversion_differs(reference: str, zoo_model: str, differences: Iterable[str]) -> ConversionError:
    """The error for a reference model that is close to `zoo_model` but differs in ways no knob covers."""
    return ConversionError(f"{reference} has no counterpart in the zoo: unlike {zoo_model} (with any knobs), "
                           + "; ".join(differences))


def registered_variant(family: str, fields: Mapping[str, Any], num_classes: int, in_channels: int
                       ) -> tuple[str, dict[str, Any]]:
    """The registered model of `family` that builds the network described by `fields` (config field ->
    value, read from a reference model) with the fewest knobs, and those knobs: the fields where its spec's
    config differs, and num_classes / in_channels where they are not the spec's."""
    import zoo

    best: tuple[str, dict[str, Any]] | None = None
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        if spec.family != family:
            continue
        knobs = {key: value for key, value in fields.items() if getattr(spec.config, key) != value}
        if best is None or len(knobs) < len(best[1]):
            best = (name, knobs)
    if best is None:
        raise ConversionError(f"the zoo registers no model of family {family!r}")
    name, knobs = best
    spec = zoo.get_spec(name)
    if num_classes != spec.num_classes:
        knobs["num_classes"] = num_classes
    if in_channels != spec.in_channels:
        knobs["in_channels"] = in_channels
    return name, knobs


def torch_momentum(old_weight: float) -> float:
    """A Keras/Gluon BatchNorm momentum (the weight of the old statistic) as PyTorch's (the new one's)."""
    return round(1.0 - float(old_weight), 10)


class LayerReading:
    """What a walk over a reference model's layers found: the canonical weights, and config fields as the
    set of values each layer showed, which must agree (`one`)."""

    kind = "model"  # what the zoo builds one value of each field for, in error messages

    def __init__(self, reference: str) -> None:
        self.reference = reference
        self.weights: dict[str, np.ndarray] = {}
        self.bn_eps: set[float] = set()
        self.bn_momentum: set[float] = set()

    def fail(self, what: str) -> ConversionError:
        return ConversionError(f"{self.reference}: {what}")

    def one(self, values: set, what: str, default=None):
        """The one value of a field the layers showed; `default` where none showed it (None: an error)."""
        if len(values) > 1:
            raise self.fail(f"the zoo builds one {what} per {self.kind}; it has {sorted(values)}")
        if not values and default is None:
            raise self.fail(f"it has no {what}")
        return next(iter(values)) if values else default
