"""MobileNet V1, V2 and V3 from timm, keras.applications and Gluon's model zoo (torchvision's MobileNetV2/V3
convert by their state_dict, zoo/convert/torchvision.py).

The references lay out the same layers in the same order as the zoo's PyTorch models, under other names
and with other variants (see the knobs in zoo/specs/mobilenet.py). So each converter reads the knobs off
the reference (BatchNorm epsilon, padding, activation, classifier bias, width from channel counts),
lists the reference's layers with weights in the order they compute, and pairs them one by one with the
zoo model's: every kernel shape, stride, group count, dilation and bias must agree, or the conversion
fails naming the first layer that differs. A 1x1 convolution on the pooled features (Keras' and Gluon's
classifiers, timm's MobileNetV3 `conv_head`) is a dense layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import Conversion, ConversionError, converter
from .common import class_name, conv_from_hwio, dense_from_keras, depthwise_from_keras, describe, is_instance_of

# Output channels of the last block at width 1.0, which give a reference's width multiplier.
LAST_BLOCK = {"mobilenet_v1": 1024, "mobilenet_v2": 320, "mobilenet_v3_large": 160, "mobilenet_v3_small": 96}
# Depthwise convolutions per version, which tell the versions apart.
DEPTHWISE_COUNT = {13: "mobilenet_v1", 17: "mobilenet_v2", 15: "mobilenet_v3_large", 11: "mobilenet_v3_small"}


@dataclass
class Layer:
    """One layer with weights, as the zoo compares it: kind ("conv", "bn", "linear"), what must agree, arrays."""

    name: str
    kind: str
    signature: tuple
    arrays: tuple  # conv/linear: (weight[, bias]) in PyTorch layout; bn: (gamma, beta, mean, var)

    def describe(self) -> str:
        return f"{self.name} ({self.kind} {self.signature})"


def conv_layer(name, weight, bias, stride, groups, dilation) -> Layer:
    weight = np.asarray(weight)
    arrays = (weight,) if bias is None else (weight, np.asarray(bias))
    return Layer(name, "conv", (tuple(weight.shape), tuple(stride), int(groups), tuple(dilation), bias is not None),
                 arrays)


def linear_layer(name, weight, bias) -> Layer:
    weight = np.asarray(weight).reshape(weight.shape[0], -1)  # a 1x1 conv on pooled features
    arrays = (weight,) if bias is None else (weight, np.asarray(bias))
    return Layer(name, "linear", (tuple(weight.shape), bias is not None), arrays)


def bn_layer(name, gamma, beta, mean, var) -> Layer:
    arrays = tuple(np.asarray(a) for a in (gamma, beta, mean, var))
    return Layer(name, "bn", (arrays[0].shape[0],), arrays)


def torch_layers(model, pooled_convs: tuple[str, ...] = ()) -> list[Layer]:
    """A torch model's Conv2d, BatchNorm2d and Linear layers in module order (`pooled_convs`: 1x1 convs that
    act on pooled features, as dense layers)."""
    from torch import nn

    layers = []
    for name, m in model.named_modules():
        def array(t):
            return None if t is None else t.detach().cpu().numpy()
        if isinstance(m, nn.Conv2d):
            if name in pooled_convs:
                layers.append(linear_layer(name, array(m.weight), array(m.bias)))
            else:
                layers.append(conv_layer(name, array(m.weight), array(m.bias), m.stride, m.groups, m.dilation))
        elif isinstance(m, nn.BatchNorm2d):
            layers.append(bn_layer(name, array(m.weight), array(m.bias), array(m.running_mean), array(m.running_var)))
        elif isinstance(m, nn.Linear):
            layers.append(linear_layer(name, array(m.weight), array(m.bias)))
    return layers


def zoo_layers(name: str, knobs: dict) -> list[Layer] | None:
    """The zoo's PyTorch model's layers (shapes only); None if the knobs are refused.

    Built on the CPU, not the meta device: initialising meta tensors imports torch's compiler stack,
    which crashes a process that has loaded TensorFlow first (as one converting a Keras model has).
    """
    from torch import nn

    import zoo

    try:
        model = zoo.create_model(name, "torch", **knobs)
    except ValueError:
        return None
    layers = []
    for path, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            layers.append(Layer(path, "conv", (tuple(m.weight.shape), tuple(m.stride), m.groups, tuple(m.dilation),
                                               m.bias is not None), ()))
        elif isinstance(m, nn.BatchNorm2d):
            layers.append(Layer(path, "bn", (m.num_features,), ()))
        elif isinstance(m, nn.Linear):
            layers.append(Layer(path, "linear", (tuple(m.weight.shape), m.bias is not None), ()))
    return layers


def first_difference(ours: list[Layer], theirs: list[Layer]) -> str | None:
    for index, (mine, other) in enumerate(zip(ours, theirs)):
        if mine.kind != other.kind or mine.signature != other.signature:
            return f"layer {index}: the reference's {other.describe()} where the zoo has {mine.describe()}"
    if len(ours) != len(theirs):
        return f"the reference has {len(theirs)} layers with weights, the zoo {len(ours)}"
    return None


def canonical(ours: list[Layer], theirs: list[Layer]) -> dict[str, np.ndarray]:
    weights = {}
    for mine, other in zip(ours, theirs):
        suffixes = ("weight", "bias", "running_mean", "running_var") if mine.kind == "bn" else ("weight", "bias")
        for suffix, array in zip(suffixes, other.arrays):
            weights[f"{mine.name}.{suffix}"] = np.ascontiguousarray(array, dtype=np.float32)
    return weights


def match(reference: str, name: str, layers: list[Layer], knobs: dict, variants: list[dict]) -> Conversion:
    """The zoo model `name` with `knobs` and the first of `variants` (extra knobs) whose layers are the reference's."""
    import zoo

    spec = zoo.get_spec(name)
    weights = [layer for layer in layers if layer.kind in ("conv", "linear")]
    num_classes, in_channels = weights[-1].signature[0][0], weights[0].signature[0][1]
    config = spec.config
    # Only knobs that differ from the spec's go into the conversion.
    base = {key: value for key, value in knobs.items() if getattr(config, key) != value}
    if num_classes != spec.num_classes:
        base["num_classes"] = num_classes
    if in_channels != spec.in_channels:
        base["in_channels"] = in_channels
    first = None
    for variant in variants:
        candidate = {**base, **{k: v for k, v in variant.items() if getattr(config, k) != v}}
        ours = zoo_layers(name, candidate)
        if ours is None:
            continue
        difference = first_difference(ours, layers)
        if difference is None:
            return Conversion(name, candidate, canonical(ours, layers), reference)
        first = first or difference
    raise ConversionError(f"{reference} has no counterpart in the zoo: it differs from {name} "
                          f"({', '.join(f'{k}={v!r}' for k, v in base.items()) or 'as registered'}) in {first}")


def width_of(name: str, layers: list[Layer]) -> float:
    """The width multiplier: the last block's output channels over the paper's."""
    convs = [layer for layer in layers if layer.kind == "conv"]
    if name == "mobilenet_v1":
        channels = convs[-1].signature[0][0]
    else:  # the last projection, before the head's 1x1 conv
        channels = convs[-2].signature[0][0]
    return round(channels / LAST_BLOCK[name], 4)


def version_of(layers: list[Layer], reference: str) -> str:
    depthwise = sum(1 for layer in layers if layer.kind == "conv" and layer.signature[2] > 1
                    and layer.signature[2] == layer.signature[0][0])
    if depthwise not in DEPTHWISE_COUNT:
        raise ConversionError(f"{reference} has {depthwise} depthwise convolutions; the zoo's MobileNets have "
                              + ", ".join(f"{n} ({c})" for c, n in DEPTHWISE_COUNT.items()))
    return DEPTHWISE_COUNT[depthwise]


def one_eps(values, reference: str) -> float:
    values = sorted({round(float(v), 12) for v in values})
    if len(values) != 1:
        raise ConversionError(f"the zoo builds one BatchNorm epsilon per model; {reference} has {values}")
    return values[0]


def variants_for(name: str) -> list[dict]:
    """What no single layer shows: whether widths are rounded to multiples of 8 or taken as int(c * alpha)."""
    return [{"round_nearest": 8}, {"round_nearest": 1}] if name in ("mobilenet_v1", "mobilenet_v2") else [{}]


def expands_first_block(layers: list[Layer]) -> bool:
    """Whether a MobileNetV2's t=1 block opens with a 1x1 expansion conv (Gluon's) rather than the depthwise."""
    convs = [layer for layer in layers if layer.kind == "conv"]
    shape, _, groups, _, _ = convs[1].signature  # after the stem
    return groups == 1 and shape[2:] == (1, 1)


# The activations V1 may have (a knob) and V2 has, after its convolutions.
V1_ACTIVATIONS, V2_ACTIVATIONS = ({"relu"}, {"relu6"}), ({"relu6"},)


def convert(reference: str, layers: list[Layer], *, eps: float, padding: str, activations: set[str]) -> Conversion:
    """`activations`: the kinds after the convolutions of a V1 or V2 ("relu", "relu6", ...); V3's, which
    vary by block as its table says, are not read."""
    name = version_of(layers, reference)
    knobs: dict[str, Any] = {"bn_eps": eps, "padding": padding, "width_mult": width_of(name, layers)}
    allowed = {"mobilenet_v1": V1_ACTIVATIONS, "mobilenet_v2": V2_ACTIVATIONS}.get(name)
    if allowed is not None and activations not in allowed:
        raise ConversionError(f"{reference} activates with {', '.join(sorted(activations)) or 'nothing'}; the zoo's "
                              f"{name} with {' or '.join(a for s in allowed for a in s)}")
    if name == "mobilenet_v1":
        knobs["activation"] = next(iter(activations))
    if name == "mobilenet_v2":
        knobs["classifier_bias"] = layers[-1].signature[1]
        knobs["always_expand"] = expands_first_block(layers)
    return match(reference, name, layers, knobs, variants_for(name))


# ------------------------------------------------------------------------------------------- timm

TORCH_ACTIVATIONS = {"ReLU": "relu", "ReLU6": "relu6", "Hardswish": "hardswish", "SiLU": "silu", "GELU": "gelu"}


def _timm_activations(model) -> set[str]:
    """The activations timm folds into its BatchNorm layers (BatchNormAct2d.act), by kind."""
    kinds = {type(m.act).__name__ for m in model.modules() if hasattr(m, "act") and type(m).__name__.startswith("BatchNorm")}
    return {TORCH_ACTIVATIONS.get(kind, kind.lower()) for kind in kinds if kind != "Identity"}


@converter("timm")
def from_timm_mobilenet(model):
    if not is_instance_of(model, "timm.models") or class_name(model) not in ("EfficientNet", "MobileNetV3"):
        return None
    reference = f"timm {getattr(model, 'pretrained_cfg', {}).get('architecture') or class_name(model)}"
    activations = _timm_activations(model)
    stem = TORCH_ACTIVATIONS.get(type(getattr(model.bn1, "act", None)).__name__)
    if class_name(model) == "EfficientNet" and stem not in ("relu", "relu6"):
        return None  # an EfficientNet proper (SiLU), zoo/convert/efficientnet.py's
    # timm's MobileNetV3 pools first and then applies `conv_head` (a 1x1 conv with bias): a dense layer.
    pooled = ("conv_head",) if class_name(model) == "MobileNetV3" else ()
    if pooled and type(getattr(model, "norm_head", None)).__name__ not in ("Identity", "NoneType"):
        raise ConversionError(f"{reference} normalises its head (norm_head); the zoo's MobileNetV3 head has no BatchNorm")
    layers = torch_layers(model, pooled)
    eps = one_eps([m.eps for m in model.modules() if type(m).__name__.startswith("BatchNorm")], reference)
    padding = "same" if any("Same" in type(m).__name__ for m in model.modules()) else "symmetric"
    return convert(reference, layers, eps=eps, padding=padding, activations=activations)


# ------------------------------------------------------------------------------------------- Keras

def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one dimension of `size`: (before, after)."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _keras_padding(model, reference: str) -> str:
    """"same" where the stride-2 convolutions pad as TensorFlow's "same" (natively, or with a ZeroPadding2D
    that does so at the size the model was built for), "symmetric" where they pad (k-1)//2 a side.

    keras.applications.MobileNet pads bottom/right by one whatever the size: that is "same" on even maps
    only, and a model built for a size where a stride-2 convolution sees an odd map has no counterpart.
    """
    import keras

    layers, fits = model.layers, {"same", "symmetric"}
    for index, layer in enumerate(layers):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) or max(layer.strides) == 1:
            continue
        if layer.padding == "same":
            fits &= {"same"}
            continue
        previous = layers[index - 1]
        pads = tuple(tuple(p) for p in previous.padding) if isinstance(previous, keras.layers.ZeroPadding2D) else ((0, 0), (0, 0))
        sizes = tuple(previous.input.shape[1:3]) if pads != ((0, 0), (0, 0)) else tuple(layer.input.shape[1:3])
        fit = set()
        symmetric = tuple(((k - 1) // 2 * d,) * 2 for k, d in zip(layer.kernel_size, layer.dilation_rate))
        if pads == symmetric:
            fit.add("symmetric")
        if None in sizes:  # built for any size: "same" if it pads the bottom/right first, as "same" does on even sizes
            if all(before < after for before, after in pads):
                fit.add("same")
        elif pads == tuple(_same_pads(n, k, s, d) for n, k, s, d in
                           zip(sizes, layer.kernel_size, layer.strides, layer.dilation_rate)):
            fit.add("same")
        fits &= fit
        if not fits:
            raise ConversionError(
                f"{reference} pads {layer.name} (stride 2, on a {sizes} map) by {pads}, neither (k-1)//2 a side "
                "nor as TensorFlow's 'same' (or not as its other stride-2 convolutions); the zoo pads one way or the "
                "other (for keras.applications.MobileNet, build it for a size whose stride-2 maps are even, such as 224)")
    return "symmetric" if "symmetric" in fits else "same"


def keras_layers(model) -> list[Layer]:
    import keras

    pools = [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    head_start = pools[-1] if pools else len(model.layers)
    layers = []
    for index, layer in enumerate(model.layers):
        values = layer.get_weights()
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = depthwise_from_keras(values[0])
            layers.append(conv_layer(layer.name, kernel, values[1] if layer.use_bias else None, layer.strides,
                                     values[0].shape[2], layer.dilation_rate))
        elif isinstance(layer, keras.layers.Conv2D):
            kernel = conv_from_hwio(values[0])
            bias = values[1] if layer.use_bias else None
            if index > head_start:
                layers.append(linear_layer(layer.name, kernel, bias))
            else:
                layers.append(conv_layer(layer.name, kernel, bias, layer.strides, layer.groups, layer.dilation_rate))
        elif isinstance(layer, keras.layers.Dense):
            layers.append(linear_layer(layer.name, dense_from_keras(values[0]), values[1] if layer.use_bias else None))
        elif isinstance(layer, keras.layers.BatchNormalization):
            if not (layer.scale and layer.center):
                raise ConversionError(f"{layer.name}: a BatchNormalization without scale or center; the zoo's has both")
            layers.append(bn_layer(layer.name, *values))
    return layers


@converter("keras")
def from_keras_mobilenet(model):
    name = getattr(model, "name", "")
    if not isinstance(name, str) or not name.lower().startswith("mobilenet"):
        return None
    import keras

    reference = f"keras.applications {name}"
    if any(isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)) for layer in model.layers):
        raise ConversionError(f"{reference} rescales its input inside the model; build it with "
                              "include_preprocessing=False (the zoo's models take the normalised image)")
    layers = keras_layers(model)
    eps = one_eps([layer.epsilon for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)],
                  reference)
    activations = {"relu6" if layer.max_value is not None and float(layer.max_value) == 6.0 else "relu"
                   for layer in model.layers if isinstance(layer, keras.layers.ReLU)}
    return convert(reference, layers, eps=eps, padding=_keras_padding(model, reference), activations=activations)


# ------------------------------------------------------------------------------------------- Gluon

def _gluon_blocks(block):
    """Every leaf block in the order the children were added (the order they compute in a MobileNet)."""
    children = list(block._children.values())
    if not children:
        yield block
    for child in children:
        yield from _gluon_blocks(child)


@converter("gluon")
def from_gluon_mobilenet(net):
    if not is_instance_of(net, "mxnet.gluon.model_zoo.vision.mobilenet"):
        return None
    from mxnet.gluon import nn

    reference = f"mxnet.gluon.model_zoo.vision {class_name(net)} {describe(net)}"
    blocks = list(_gluon_blocks(net))
    layers, pooled, eps, activations = [], False, [], set()
    for block in blocks:
        params = {name.rsplit("_", 1)[-1]: p.data().asnumpy() for name, p in block.params.items()}
        if isinstance(block, nn.GlobalAvgPool2D):
            pooled = True
        elif isinstance(block, nn.Conv2D):
            kwargs = block._kwargs
            if pooled:  # the classifier of MobileNetV2: a 1x1 conv on the pooled features
                layers.append(linear_layer(block.name, params["weight"], params.get("bias")))
            else:
                layers.append(conv_layer(block.name, params["weight"], params.get("bias"), kwargs["stride"],
                                         kwargs["num_group"], kwargs["dilate"]))
                if tuple(kwargs["pad"]) != tuple((k - 1) // 2 * d for k, d in zip(kwargs["kernel"], kwargs["dilate"])):
                    raise ConversionError(f"{reference}: {block.name} pads {kwargs['pad']}, not (k-1)//2 a side")
        elif isinstance(block, nn.BatchNorm):
            eps.append(block._kwargs["eps"])
            layers.append(bn_layer(block.name, params["gamma"], params["beta"], params["mean"], params["var"]))
        elif isinstance(block, nn.Dense):
            layers.append(linear_layer(block.name, params["weight"], params.get("bias")))
        elif class_name(block) == "RELU6":
            activations.add("relu6")
        elif isinstance(block, nn.Activation):
            activations.add(block._act_type)
    return convert(reference, layers, eps=one_eps(eps, reference), padding="symmetric", activations=activations)
