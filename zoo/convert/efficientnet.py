"""EfficientNet B0-B7 from timm and keras.applications.

timm's `efficientnet_bN` are PyTorch builds (symmetric padding, BatchNorm epsilon 1e-5), its
`tf_efficientnet_bN` ports of the paper's TensorFlow models (TensorFlow's "same" padding, epsilon 1e-3),
as are `keras.applications.EfficientNetB0`..`B7` (whose `correct_pad` is "same" for the input size they
were built for). Every one of them has torchvision's tensors under other names, so a reference converts to
the registered `efficientnet_bN` of the same widths and depths (or to B0 with the `width_mult` and
`depth_mult` that give them, for a scaling of one's own), with the knobs read from its layers: BatchNorm
epsilon and momentum, padding, dropout, stochastic depth, classes and input channels. What the zoo builds
is read from the spec (`planned_layers`), so converting needs no framework but the reference's.

Keras' EfficientNets begin with their preprocessing (Rescaling by 1/255, Normalization, and with ImageNet
weights a Rescaling by 1/std): the zoo's model is what follows it, and takes the images it would produce.
torchvision's own EfficientNets convert in `zoo.convert.torchvision` (same names already).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from ..arith import round_filters, round_repeats
from ..plan import Conv, Linear
from ..specs.mobilenet import ConvNormAct, InvertedResidualPlan, SqueezeExcitationPlan
from . import Conversion, ConversionError, converter
from .common import (BN_SUFFIXES, batch_norm, class_name, conv_from_hwio, dense_from_keras, depthwise_from_keras,
                     first_bn_eps, is_instance_of, keras_layer_types, keras_weights, torch_momentum, torch_state)

FAMILY = "efficientnet"
# Activations by the names the zoo's specs use; timm's SwishMe is SiLU with a memory-saving backward.
ACTIVATION_NAMES = {"silu": "silu", "swish": "silu", "swishme": "silu", "sigmoid": "sigmoid",
                    "relu": "relu", "relu6": "relu6", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid",
                    "gelu": "gelu", "identity": None, "linear": None}


def activation_name(value) -> str | None:
    """'silu', 'sigmoid', ... for a torch activation module or a Keras activation name (None: linear)."""
    key = value if isinstance(value, str) else class_name(value)
    key = key.lower()
    return ACTIVATION_NAMES.get(key, key)


# --- matching a canonical mapping against the registered EfficientNets ------------------------------------


def layout(config) -> tuple:
    """Stem width, blocks per stage, output width per stage and head width of an EfficientNetConfig."""
    plan = config.network_plan()
    stem, *stages, head = plan.features
    return (stem.out_channels, tuple(len(stage.layers) for stage in stages),
            tuple(stage.layers[0].out_channels for stage in stages), head.out_channels)


def weights_layout(weights: Mapping[str, np.ndarray]) -> tuple:
    """The same four of a canonical mapping (features.<stage>.<block>.block.<layer>... keys)."""
    blocks: dict[int, set[int]] = {}
    projection: dict[int, tuple[int, int]] = {}  # stage -> (last layer of its first block, its width)
    for key, array in weights.items():
        parts = key.split(".")
        if parts[0] == "features" and len(parts) == 7 and parts[3] == "block":
            stage, block, layer = int(parts[1]), int(parts[2]), int(parts[4])
            blocks.setdefault(stage, set()).add(block)
            if block == 0 and parts[5:] == ["0", "weight"] and layer >= projection.get(stage, (-1, 0))[0]:
                projection[stage] = (layer, array.shape[0])
    head = weights.get(f"features.{len(blocks) + 1}.0.weight")
    stem = weights.get("features.0.0.weight")
    stages = sorted(blocks)
    return (None if stem is None else stem.shape[0], tuple(len(blocks[i]) for i in stages),
            tuple(projection.get(i, (0, None))[1] for i in stages), None if head is None else head.shape[0])


def fitting(low: float, high: float, fits, largest: bool = False) -> float | None:
    """The shortest decimal in [low, high] for which `fits` holds (a paper's 1.1, not 1.0999), the smallest
    such or the `largest`."""
    for decimals in range(1, 5):
        scale = 10 ** decimals
        steps = range(max(1, math.floor(low * scale)), math.ceil(high * scale) + 1)
        for k in (reversed(steps) if largest else steps):
            if fits(k / scale):
                return k / scale
    return None


def scale_knobs(found: tuple) -> dict[str, float] | None:
    """width_mult and depth_mult that give B0's table the layout `found`, if any do."""
    import zoo

    base = zoo.get_spec(f"{FAMILY}_b0").config
    stem, blocks, outs, head = found
    if len(blocks) != len(base.stages) or None in (stem, head) or None in outs:
        return None
    repeats = [row[5] for row in base.stages]
    # Repeats are ceil(r * depth): the largest fitting depth is the one a table of round numbers was scaled by.
    depth = fitting(max((n - 1) / r for n, r in zip(blocks, repeats)), min(n / r for n, r in zip(blocks, repeats)),
                    lambda d: all(round_repeats(r, d) == n for n, r in zip(blocks, repeats)), largest=True)
    widths = (base.stages[0][3], *(row[4] for row in base.stages))
    wanted = (stem, *outs)
    # make_divisible(v) lies within [0.9 v, v + 8], so each width within [(c - 8) / base, c / (0.9 base)].
    width = fitting(max((c - 8) / b for c, b in zip(wanted, widths)),
                    min(c / (0.9 * b) for c, b in zip(wanted, widths)),
                    lambda w: all(round_filters(b, w) == c for c, b in zip(wanted, widths)))
    if depth is None or width is None:
        return None
    knobs = {"width_mult": width, "depth_mult": depth}
    return knobs if layout(replace(base, **knobs)) == found else None


def registered_name(weights: Mapping[str, np.ndarray], reference: str) -> tuple[str, dict[str, float]]:
    """The registered EfficientNet of the same stem, stages and head widths and depths as `weights`, or B0
    with the width and depth multipliers that give them (a user's own scaling), and those knobs."""
    import zoo

    found = weights_layout(weights)
    layouts = {name: layout(zoo.get_spec(name).config) for name in zoo.list_models(f"{FAMILY}*")}
    for name, expected in layouts.items():
        if expected == found:
            return name, {}
    knobs = scale_knobs(found)
    if knobs is not None:
        return f"{FAMILY}_b0", knobs
    b0 = layouts[f"{FAMILY}_b0"]
    raise ConversionError(
        f"{reference} has no counterpart in the zoo: its stem has {found[0]} channels, its stages {list(found[1])} "
        f"blocks of {list(found[2])} channels and its head {found[3]}, which no width and depth multipliers "
        f"make of B0's {b0[0]}, {list(b0[1])}, {list(b0[2])} and {b0[3]}")


@dataclass
class Planned:
    """What the zoo's builders make of a config, without building anything (so that converting needs no
    PyTorch), by the zoo's module names: canonical tensor shapes; per convolution its kernel, stride,
    dilation, groups, padding (the symmetric one) and the activation after its BatchNorm; per SE its
    activation and gate; per block whether it has the shortcut."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    convs: dict[str, dict[str, Any]] = field(default_factory=dict)
    squeezes: dict[str, tuple[str, str]] = field(default_factory=dict)
    shortcuts: dict[str, bool] = field(default_factory=dict)


def planned_layers(config, num_classes: int, in_channels: int) -> Planned:
    """The zoo's layers for `config` (an EfficientNetConfig): its plan's, as its builders make them."""
    planned = Planned()

    def conv(layer: Conv, dilation: int = 1, activation: str | None = None) -> None:
        planned.shapes[f"{layer.name}.weight"] = (layer.out_channels, layer.in_channels // layer.groups,
                                                  layer.kernel, layer.kernel)
        if layer.bias:
            planned.shapes[f"{layer.name}.bias"] = (layer.out_channels,)
        planned.convs[layer.name] = {"kernel_size": (layer.kernel,) * 2, "stride": (layer.stride,) * 2,
                                     "dilation": (dilation,) * 2, "groups": layer.groups,
                                     "padding": (layer.padding,) * 2, "activation": activation}

    for piece in config.network_plan(num_classes, in_channels).walk():
        if isinstance(piece, ConvNormAct):
            conv(piece.conv, piece.dilation, piece.activation)
            planned.shapes.update({f"{piece.name}.1.{suffix}": (piece.out_channels,) for suffix in BN_SUFFIXES})
        elif isinstance(piece, SqueezeExcitationPlan):
            conv(piece.fc1)
            conv(piece.fc2)
            planned.squeezes[piece.name] = (piece.activation, piece.gate)
        elif isinstance(piece, InvertedResidualPlan):
            planned.shortcuts[piece.name] = piece.residual
        elif isinstance(piece, Linear):
            planned.shapes.update({f"{piece.name}.weight": (piece.out_features, piece.in_features),
                                   f"{piece.name}.bias": (piece.out_features,)})
    return planned


def planned_for(weights: Mapping[str, np.ndarray], reference: str, num_classes: int, in_channels: int):
    """The registered EfficientNet, the width and depth knobs it needs and its Planned layers, whose tensors
    have the keys and shapes of `weights`."""
    import zoo

    name, scaling = registered_name(weights, reference)
    planned = planned_layers(replace(zoo.get_spec(name).config, **scaling), num_classes, in_channels)
    theirs = {key: tuple(array.shape) for key, array in weights.items()}
    if planned.shapes != theirs:
        keys = sorted({key for key, _ in set(planned.shapes.items()) ^ set(theirs.items())})
        raise ConversionError(
            f"{reference} has no counterpart in the zoo: its tensors, under torchvision's names, differ from "
            f"{name}'s in {len(keys)} tensor(s): {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}")
    return name, scaling, planned


# Knobs this zoo's EfficientNet may lack, and the value its builders have without them.
TODAYS_BUILD = {"padding": "symmetric"}


def conversion_knobs(name: str, found: Mapping[str, Any], num_classes: int, in_channels: int) -> dict[str, Any]:
    """The knobs among `found` whose values differ from `name`'s spec, plus classes and channels where they do."""
    import zoo

    spec = zoo.get_spec(name)
    config = spec.config
    knobs = {}
    for knob, value in found.items():
        if not hasattr(config, knob):
            if TODAYS_BUILD.get(knob) == value:
                continue  # what the zoo builds without the knob
            raise ConversionError(f"the reference builds EfficientNet with {knob}={value!r}, which this zoo's "
                                  f"EfficientNetConfig has no knob for")
        default = getattr(config, knob)
        if isinstance(value, float) and isinstance(default, float):
            if abs(value - default) > 1e-9 * max(1.0, abs(default)):
                knobs[knob] = value
        elif value != default:
            knobs[knob] = value
    if num_classes != spec.num_classes:
        knobs["num_classes"] = num_classes
    if in_channels != spec.in_channels:
        knobs["in_channels"] = in_channels
    return knobs


def pairs(values) -> tuple[int, int]:
    return tuple(values) if isinstance(values, (tuple, list)) else (values, values)


# --- timm ---------------------------------------------------------------------------------------------------

# timm architectures of the EfficientNet family that are other networks than B0-B7, and what makes them so;
# any other name is converted or refused on what its layers are.
TIMM_OTHERS = (
    (r"efficientnetv2", "EfficientNetV2 (fused MBConv stages, another stage table)"),
    (r"efficientnet_lite\d", "EfficientNet-Lite (ReLU6, no squeeze-and-excitation)"),
    (r"efficientnet_e[lms](_|$)", "EfficientNet-EdgeTPU (fused MBConv stages, ReLU, no squeeze-and-excitation)"),
    (r"efficientnet_cc_", "CondConv EfficientNet (mixture-of-experts convolutions)"),
    (r"_(gn|ln|evos)(_|$)", "normalised otherwise than with BatchNorm"),
    (r"_g\d+(_|$)", "built with grouped pointwise convolutions"),
    (r"blur", "anti-aliased (blur-pool) downsampling"),
    (r"pruned", "pruned (other channel counts per block)"),
)


def timm_architecture(model) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    return str(cfg.get("architecture", "") or "")


def looks_like_timm_efficientnet(model) -> bool:
    """An unnamed timm build (its own arguments) with EfficientNet's parts: SiLU and SE in every block."""
    blocks = [block for stage in getattr(model, "blocks", []) for block in stage]
    return bool(blocks) and hasattr(model, "conv_head") and all(
        class_name(getattr(block, "se", None)) == "SqueezeExcite" for block in blocks)


def timm_module_map(model, reference: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """timm module path -> zoo module path for every module holding tensors, and the Conv-BN-act triples
    (timm conv, timm BatchNorm, zoo Conv-BN-act Sequential) whose hyperparameters are compared."""
    names: dict[str, str] = {}
    triples: list[tuple[str, str, str]] = []

    def conv_bn(conv: str, bn: str, zoo: str) -> None:
        names[conv], names[bn] = f"{zoo}.0", f"{zoo}.1"
        triples.append((conv, bn, zoo))

    conv_bn("conv_stem", "bn1", "features.0")
    for i, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            ours, theirs = f"features.{i + 1}.{j}.block", f"blocks.{i}.{j}"
            kind = class_name(block)
            if kind == "DepthwiseSeparableConv":  # the expansion-1 MBConv: no expanding 1x1 conv
                conv_bn(f"{theirs}.conv_dw", f"{theirs}.bn1", f"{ours}.0")
                se, projection = 1, (f"{theirs}.conv_pw", f"{theirs}.bn2")
            elif kind == "InvertedResidual":
                conv_bn(f"{theirs}.conv_pw", f"{theirs}.bn1", f"{ours}.0")
                conv_bn(f"{theirs}.conv_dw", f"{theirs}.bn2", f"{ours}.1")
                se, projection = 2, (f"{theirs}.conv_pwl", f"{theirs}.bn3")
            else:
                raise ConversionError(f"{reference} has a {kind} at blocks.{i}.{j}; the zoo's EfficientNet has only "
                                      f"MBConv blocks (timm's DepthwiseSeparableConv and InvertedResidual)")
            names[f"{theirs}.se.conv_reduce"] = f"{ours}.{se}.fc1"
            names[f"{theirs}.se.conv_expand"] = f"{ours}.{se}.fc2"
            conv_bn(*projection, f"{ours}.{se + 1}")
    conv_bn("conv_head", "bn2", f"features.{len(model.blocks) + 1}")
    names["classifier"] = "classifier.1"
    return names, triples


def timm_padding(model, reference: str) -> str:
    """'same' when timm pads TensorFlow's way (Conv2dSame: its tf_ ports), 'symmetric' when PyTorch's."""
    convs = [(name, m) for name, m in model.named_modules() if isinstance(getattr(m, "stride", None), tuple)
             and hasattr(m, "kernel_size") and hasattr(m, "weight")]
    same = [name for name, m in convs if class_name(m).startswith("Conv2dSame")]
    if not same:
        return "symmetric"
    strided = [name for name, m in convs if max(m.stride) > 1]
    if set(strided) - set(same):
        raise ConversionError(f"{reference} pads some stride-2 convolutions TensorFlow's way ({same[0]}) and "
                              f"others symmetrically ({sorted(set(strided) - set(same))[0]}); the zoo pads all alike")
    return "same"


def timm_knobs(model, reference: str, padding: str) -> dict[str, Any]:
    eps = first_bn_eps(model)
    momenta = {float(m.momentum) for m in model.modules() if class_name(m).startswith("BatchNorm")
               and m.momentum is not None}
    if len(momenta) != 1:
        raise ConversionError(f"the zoo builds one BatchNorm momentum per model; {reference} has {sorted(momenta)}")
    blocks = [block for stage in model.blocks for block in stage]
    # timm, like torchvision, gives block i of n the drop probability rate * i / n.
    rates = [(i, float(getattr(block.drop_path, "drop_prob", 0.0))) for i, block in enumerate(blocks)]
    drop_path = max((rate * len(blocks) / i for i, rate in rates if i > 0 and rate > 0), default=0.0)
    return {"bn_eps": eps, "bn_momentum": momenta.pop(), "padding": padding,
            "dropout": float(getattr(model, "drop_rate", 0.0)), "stochastic_depth_prob": round(drop_path, 12)}


def timm_differences(model, planned: Planned, names, triples, padding: str) -> list[str]:
    """Where the timm model computes otherwise than the zoo's at the same tensors."""
    theirs = dict(model.named_modules())
    found: list[str] = []
    for conv, bn, zoo in triples:
        layer, expected = theirs[conv], planned.convs[f"{zoo}.0"]
        for attribute in ("kernel_size", "stride", "dilation", "groups") + (("padding",) if padding == "symmetric"
                                                                           else ()):
            value = getattr(layer, attribute)
            if (pairs(value) if attribute != "groups" else value) != expected[attribute]:
                found.append(f"{conv}.{attribute} is {value} where the zoo has {expected[attribute]}")
        norm = theirs[bn]
        if class_name(norm) not in ("BatchNormAct2d", "BatchNorm2d"):
            found.append(f"{bn} is a {class_name(norm)}, not a BatchNorm")
            continue
        act = activation_name(norm.act) if hasattr(norm, "act") else None
        if act != expected["activation"]:
            found.append(f"{bn} is followed by {act or 'no activation'} where the zoo has "
                         f"{expected['activation'] or 'none'}")
    for i, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            shortcut = bool(getattr(block, "has_skip", False))
            if shortcut != planned.shortcuts[f"features.{i + 1}.{j}"]:
                found.append(f"blocks.{i}.{j} {'has' if shortcut else 'lacks'} the shortcut the zoo "
                             f"{'lacks' if shortcut else 'has'}")
            if class_name(getattr(block, "aa", None)) not in ("Identity", "NoneType"):
                found.append(f"blocks.{i}.{j} anti-aliases its stride ({class_name(block.aa)})")
            se = block.se
            if class_name(se) != "SqueezeExcite":
                found.append(f"blocks.{i}.{j} has no squeeze-and-excitation ({class_name(se)})")
                continue
            expected = planned.squeezes[names[f"blocks.{i}.{j}.se.conv_reduce"].rsplit(".", 1)[0]]
            for attribute, wanted in zip(("act1", "gate"), expected):
                if activation_name(getattr(se, attribute)) != wanted:
                    found.append(f"blocks.{i}.{j}.se.{attribute} is {class_name(getattr(se, attribute))} where the "
                                 f"zoo has {wanted}")
    pool = getattr(model.global_pool, "pool_type", "avg")
    if pool != "avg":
        found.append(f"global_pool is {pool!r} where the zoo averages")
    return found


@converter("timm")
def from_timm_efficientnet(model):
    if not is_instance_of(model, "timm.models") or class_name(model) != "EfficientNet":
        return None
    architecture = timm_architecture(model)
    if "efficientnet" not in architecture and (architecture or not looks_like_timm_efficientnet(model)):
        return None  # MobileNetV2, MnasNet, MixNet ...: timm builds them with the same class
    reference = f"timm {architecture or 'EfficientNet'}"
    for pattern, what in TIMM_OTHERS:
        if re.search(pattern, architecture):
            raise ConversionError(f"{reference} is {what}; the zoo converts timm's efficientnet_b0..b7 and "
                                  f"tf_efficientnet_b0..b7")
    if class_name(model.classifier) != "Linear":
        raise ConversionError(f"{reference} has no classifier ({class_name(model.classifier)}, num_classes=0); the "
                              f"zoo's EfficientNet always ends in one: build it with num_classes >= 1")
    names, triples = timm_module_map(model, reference)
    state = torch_state(model)
    weights, unmapped = {}, []
    for key, array in state.items():
        module, _, tensor = key.rpartition(".")
        if module in names:
            weights[f"{names[module]}.{tensor}"] = array
        else:
            unmapped.append(key)
    if unmapped:
        raise ConversionError(f"{reference} has tensors the zoo's EfficientNet lacks: {', '.join(unmapped[:5])}")
    num_classes, in_channels = model.classifier.out_features, model.conv_stem.in_channels
    name, scaling, planned = planned_for(weights, reference, num_classes, in_channels)
    padding = timm_padding(model, reference)
    differences = timm_differences(model, planned, names, triples, padding)
    if differences:
        raise ConversionError(f"{reference} has {name}'s tensors but computes otherwise in {len(differences)} "
                              f"place(s): " + "; ".join(differences[:4]))
    knobs = conversion_knobs(name, {**scaling, **timm_knobs(model, reference, padding)}, num_classes, in_channels)
    return Conversion(name, knobs, weights, reference)


# --- keras.applications -------------------------------------------------------------------------------------

KERAS_BLOCK = re.compile(r"block(\d+)([a-z])_(.+)")
# Keras' preprocessing layers, whose tensors (the Normalization's mean and variance) are not the network's.
KERAS_PREPROCESSING = ("Rescaling", "Normalization")


def keras_is_efficientnet(model) -> bool:
    name = getattr(model, "name", "") or ""
    if name.startswith("efficientnet") and not name.startswith("efficientnetv2"):
        return True
    layers = keras_layer_types(model)
    return name.startswith("efficientnetv2") or ("stem_conv" in layers and "block1a_project_conv" in layers
                                                 and "top_conv" in layers)


def keras_layer_names(model) -> dict[str, str]:
    """Keras layer name -> zoo module path, for every layer holding weights (block1a -> features.1.0)."""
    types = keras_layer_types(model)
    names = {"stem_conv": "features.0.0", "stem_bn": "features.0.1", "predictions": "classifier.1"}
    stages = sorted({int(m.group(1)) for m in map(KERAS_BLOCK.fullmatch, types) if m})
    for layer in types:
        match = KERAS_BLOCK.fullmatch(layer)
        if not match:
            continue
        stage, letter, part = int(match.group(1)), match.group(2), match.group(3)
        prefix = f"features.{stage}.{ord(letter) - ord('a')}.block"
        expand = f"block{stage}{letter}_expand_conv" in types
        offset = 1 if expand else 0
        names[layer] = {
            "expand_conv": f"{prefix}.0.0", "expand_bn": f"{prefix}.0.1",
            "dwconv": f"{prefix}.{offset}.0", "bn": f"{prefix}.{offset}.1",
            "se_reduce": f"{prefix}.{offset + 1}.fc1", "se_expand": f"{prefix}.{offset + 1}.fc2",
            "project_conv": f"{prefix}.{offset + 2}.0", "project_bn": f"{prefix}.{offset + 2}.1",
        }.get(part, layer)
    last = max(stages, default=0)
    names["top_conv"], names["top_bn"] = f"features.{last + 1}.0", f"features.{last + 1}.1"
    return names


def keras_activation(layer) -> str | None:
    config = layer.get_config()
    return activation_name(config.get("activation", "linear"))


def keras_differences(model, planned: Planned, names: Mapping[str, str]) -> list[str]:
    """Strides, dilations and activations of the Keras layers against the zoo's layers they map to."""
    found = []
    layers = {layer.name: layer for layer in model.layers}
    for layer_name, zoo_name in names.items():
        layer = layers.get(layer_name)
        if layer is None:
            continue
        kind = type(layer).__name__
        if kind in ("Conv2D", "DepthwiseConv2D"):
            stride, dilation = planned.convs[zoo_name]["stride"], planned.convs[zoo_name]["dilation"]
            config = layer.get_config()
            if tuple(config["strides"]) != stride:
                found.append(f"{layer_name} has strides {tuple(config['strides'])} where the zoo has {stride}")
            if tuple(config["dilation_rate"]) != dilation:
                found.append(f"{layer_name} is dilated {tuple(config['dilation_rate'])}")
            if kind == "DepthwiseConv2D" and config.get("depth_multiplier", 1) != 1:
                found.append(f"{layer_name} has depth_multiplier {config['depth_multiplier']}")
            if layer_name.endswith("se_reduce") or layer_name.endswith("se_expand"):
                expected = planned.squeezes[zoo_name.rsplit(".", 1)[0]][0 if layer_name.endswith("se_reduce") else 1]
                if keras_activation(layer) != expected:
                    found.append(f"{layer_name} applies {config.get('activation')} where the zoo has {expected}")
            elif keras_activation(layer) is not None:
                found.append(f"{layer_name} applies {config.get('activation')} inside the convolution")
    activations = {activation_name(layer.get_config()["activation"]) for layer in model.layers
                   if type(layer).__name__ == "Activation"}
    if activations - {"silu"}:
        found.append(f"activations {sorted(map(str, activations))} where the zoo's EfficientNet has SiLU")
    pools = [layer.name for layer in model.layers if type(layer).__name__ not in ("GlobalAveragePooling2D",)
             and "Pool" in type(layer).__name__]
    if pools:
        found.append(f"{pools[0]} pools otherwise than the zoo's global average")
    if activation_name(layers["predictions"].get_config().get("activation", "linear")) not in (None, "softmax"):
        found.append(f"predictions applies {layers['predictions'].get_config()['activation']}")
    return found


def keras_knobs(model, reference: str) -> dict[str, Any]:
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    epsilons = {float(layer.epsilon) for layer in norms}
    momenta = {float(layer.momentum) for layer in norms}
    if len(epsilons) != 1 or len(momenta) != 1:
        raise ConversionError(f"the zoo builds one BatchNorm epsilon and momentum per model; {reference} has "
                              f"epsilons {sorted(epsilons)} and momenta {sorted(momenta)}")
    block_names = sorted({m.group(1, 2) for m in (KERAS_BLOCK.fullmatch(layer.name) for layer in model.layers) if m},
                         key=lambda pair: (int(pair[0]), pair[1]))
    index = {f"block{stage}{letter}": i for i, (stage, letter) in enumerate(block_names)}
    # Keras drops block b of n with drop_connect_rate * b / n (torchvision's rule), in Dropout layers
    # named block<stage><letter>_drop, where there is a shortcut.
    drop_path = max((float(layer.rate) * len(block_names) / index[layer.name[:-len("_drop")]]
                     for layer in model.layers if type(layer).__name__ == "Dropout" and layer.name.endswith("_drop")
                     and index.get(layer.name[:-len("_drop")], 0) > 0), default=0.0)
    top = [float(layer.rate) for layer in model.layers if layer.name == "top_dropout"]
    return {"bn_eps": epsilons.pop(), "bn_momentum": torch_momentum(momenta.pop()),
            # correct_pad pads (k//2 - 1, k//2) for even sizes and k//2 on both sides for odd ones: "same".
            "padding": "same",
            "dropout": top[0] if top else 0.0, "stochastic_depth_prob": round(drop_path, 12)}


def keras_canonical(model, names: Mapping[str, str], reference: str) -> dict[str, np.ndarray]:
    types = keras_layer_types(model)
    weights: dict[str, np.ndarray] = {}
    unmapped = []
    for layer_name, arrays in keras_weights(model).items():
        kind = types[layer_name]
        if kind in KERAS_PREPROCESSING:
            continue
        zoo_name = names.get(layer_name)
        if zoo_name is None or zoo_name == layer_name:
            unmapped.append(layer_name)
            continue
        if kind == "BatchNormalization":
            if len(arrays) != 4:
                raise ConversionError(f"{reference}'s {layer_name} has {len(arrays)} tensors; the zoo's BatchNorm "
                                      f"has scale, offset, mean and variance")
            weights.update(batch_norm(zoo_name, *arrays))
        elif kind == "DepthwiseConv2D":
            weights[f"{zoo_name}.weight"] = depthwise_from_keras(arrays[0])
            weights.update({f"{zoo_name}.bias": arrays[1]} if len(arrays) > 1 else {})
        elif kind == "Conv2D":
            weights[f"{zoo_name}.weight"] = conv_from_hwio(arrays[0])
            weights.update({f"{zoo_name}.bias": arrays[1]} if len(arrays) > 1 else {})
        elif kind == "Dense":
            weights[f"{zoo_name}.weight"] = dense_from_keras(arrays[0])
            weights[f"{zoo_name}.bias"] = arrays[1]
        else:
            unmapped.append(layer_name)
    if unmapped:
        raise ConversionError(f"{reference} has layers with weights the zoo's EfficientNet lacks: "
                              f"{', '.join(unmapped[:5])}")
    return weights


@converter("keras")
def from_keras_efficientnet(model):
    if not is_instance_of(model, "keras") or not hasattr(model, "layers") or not keras_is_efficientnet(model):
        return None
    reference = f"keras.applications {model.name}"
    if model.name.startswith("efficientnetv2"):
        raise ConversionError(f"{reference} is EfficientNetV2 (fused MBConv stages, another stage table); the zoo "
                              f"converts keras.applications.EfficientNetB0..B7")
    types = keras_layer_types(model)
    if "predictions" not in types:
        raise ConversionError(f"{reference} was built with include_top=False; the zoo's EfficientNet ends in its "
                              f"classifier: build it with include_top=True")
    names = keras_layer_names(model)
    weights = keras_canonical(model, names, reference)
    num_classes = int(weights["classifier.1.weight"].shape[0])
    in_channels = int(weights["features.0.0.weight"].shape[1])
    name, scaling, planned = planned_for(weights, reference, num_classes, in_channels)
    differences = keras_differences(model, planned, names)
    if differences:
        raise ConversionError(f"{reference} has {name}'s tensors but computes otherwise in {len(differences)} "
                              f"place(s): " + "; ".join(differences[:4]))
    knobs = conversion_knobs(name, {**scaling, **keras_knobs(model, reference)}, num_classes, in_channels)
    softmax = activation_name(model.get_layer("predictions").get_config().get("activation")) == "softmax"
    return Conversion(name, knobs, weights, reference + (" (its softmax left out: the zoo's model gives logits)"
                                                          if softmax else ""))
