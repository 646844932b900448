"""ResNet and SE-ResNet from timm, keras.applications and Gluon's model zoo.

timm's `ResNet` class has torchvision's module tree (and its SE-ResNets the zoo's `se.fc1` / `se.fc2`),
so its state_dict is taken as it is; Keras' and Gluon's layers are renamed to the canonical names. The
knobs are read off the reference's layers (block, depths, widths, strides, biases, BatchNorm epsilon and
momentum, SE channels), never off its name, so a user's own build converts or fails saying what differs.
torchvision's ResNets are converted by `zoo.convert.torchvision`. Keras' classifier ends in a softmax
unless built with classifier_activation=None; the zoo's model returns the logits before it. Training-only
layers of timm (drop_block, drop_path, dropout before fc) are not compared: they pass inputs through in
inference.
"""
from __future__ import annotations

import dataclasses

import numpy as np

import zoo

from . import Conversion, ConversionError, converter
from .common import (batch_norm, class_name, conv_from_hwio, dense_from_keras, describe, first_bn_eps,
                     is_instance_of, module_of, torch_momentum, torch_state)
from ..specs.resnet import CONV_BIAS, STEMS, ResNetConfig

BLOCK_OF = {"BasicBlock": "basic", "Bottleneck": "bottleneck"}


# ---------------------------------------------------------------- shared

def _conv_bias(outer: bool, one_by_one: bool | None, three_by_three: bool, reference: str) -> str:
    """The conv_bias value whose biases are (stem and shortcuts, a block's 1x1s, its 3x3s); None: no 1x1s."""
    for value in CONV_BIAS:
        outer_, one_, three_ = ResNetConfig(conv_bias=value).conv_biases()
        if (outer, three_by_three) == (outer_, three_) and one_by_one in (None, one_):
            return value
    raise ConversionError(
        f"{reference} has biases on its stem and shortcut convolutions: {outer}, on its blocks' 1x1 "
        f"convolutions: {one_by_one}, on their 3x3 ones: {three_by_three}; the zoo builds biases on none, all, "
        f"or a bottleneck's 1x1 convolutions only (conv_bias={', '.join(CONV_BIAS)})")


def _conversion(family: str, detected: dict, *, num_classes: int, in_channels: int, weights: dict,
                reference: str) -> Conversion:
    """The registered model of `family` with `detected`'s block and depths (or the family's nearest with a
    `layers` knob), the knobs where `detected` differs from its config, and `weights` checked against it."""
    candidates = [zoo.get_spec(name) for name in zoo.list_models() if zoo.get_spec(name).family == family]
    # Knobs the reader does not detect keep the base model's value: a base with other knobs than the family's
    # defaults there (resnet18_d2l's biases and bare shortcuts) would lend them to the conversion.
    defaults = type(candidates[0].config)() if candidates else None
    candidates = [spec for spec in candidates if all(getattr(spec.config, knob) == getattr(defaults, knob)
                                                     for knob in spec.config.knobs() if knob not in detected)]
    same_block = [spec for spec in candidates if spec.config.block == detected["block"]]
    if not same_block:
        raise ConversionError(f"{reference}: the zoo has no {family} model with {detected['block']} blocks")
    spec = next((s for s in same_block if s.config.layers == detected["layers"]),
                min(same_block, key=lambda s: s.params))
    knobs = {key: value for key, value in detected.items() if getattr(spec.config, key) != value}
    if num_classes != spec.num_classes:
        knobs["num_classes"] = num_classes
    if in_channels != spec.in_channels:
        knobs["in_channels"] = in_channels
    try:  # the spec validates the knobs, whatever the framework
        dataclasses.replace(spec.config, **{k: v for k, v in knobs.items() if k not in ("num_classes", "in_channels")})
    except ValueError as error:
        raise ConversionError(f"{reference}: the zoo cannot build its variant of {spec.name}: {error}") from error
    _check_shapes(spec.name, knobs, weights, reference)
    return Conversion(spec.name, knobs, weights, reference)


def _check_shapes(name: str, knobs: dict, weights: dict, reference: str) -> None:
    """The converted mapping against the zoo's PyTorch model (built on the meta device), where torch is there."""
    try:
        from .torchvision import zoo_shapes, zoo_torch_model
        model = zoo_torch_model(name, knobs.get("num_classes", zoo.get_spec(name).num_classes),
                                knobs.get("in_channels", zoo.get_spec(name).in_channels),
                                **{k: v for k, v in knobs.items() if k not in ("num_classes", "in_channels")})
    except ImportError:
        return
    ours = zoo_shapes(model)
    theirs = {key: tuple(np.shape(value)) for key, value in weights.items()}
    differing = sorted({key for key, _ in set(ours.items()) ^ set(theirs.items())})
    if differing:
        raise ConversionError(
            f"{reference} has no counterpart in the zoo: its tensors differ from {name} with {knobs} in "
            f"{len(differing)}: " + ", ".join(f"{key} {theirs.get(key, 'absent')} vs {ours.get(key, 'absent')}"
                                              for key in differing[:4]) + (" ..." if len(differing) > 4 else ""))


# ---------------------------------------------------------------- timm

def _timm_se(block, channels: int, reference: str) -> int | None:
    """Squeezed channels of a timm block's attention module: None where it has none."""
    se = getattr(block, "se", None)
    if se is None:
        return None
    kind = class_name(se)
    if kind != "SEModule":
        raise ConversionError(f"{reference} has {kind} attention in its blocks; the zoo builds squeeze-and-"
                              f"excitation (timm's SEModule) only")
    parts = {"bn": class_name(se.bn), "act": class_name(se.act), "gate": class_name(se.gate)}
    if parts != {"bn": "Identity", "act": "ReLU", "gate": "Sigmoid"} or getattr(se, "add_maxpool", False) \
            or se.fc1.bias is None:
        raise ConversionError(f"{reference}'s SE modules are {parts} (add_maxpool={getattr(se, 'add_maxpool', None)}, "
                              f"bias={se.fc1.bias is not None}); the zoo's are fc1 with bias, ReLU, fc2, sigmoid")
    if se.fc1.in_channels != channels:
        raise ConversionError(f"{reference}: an SE module on {se.fc1.in_channels} channels of a {channels}-channel block")
    return se.fc1.out_channels


def _se_knobs(squeezed: dict[int, int], reference: str) -> dict:
    """se_reduction and se_divisor that give each stage's squeezed channels (channels -> squeezed)."""
    from ..specs.senet import SEResNetConfig

    widest = max(squeezed)
    reduction = max(1, round(widest / squeezed[widest]))
    for divisor in (1, 2, 4, 8, 16, 32):
        config = SEResNetConfig(se_reduction=reduction, se_divisor=divisor)
        if all(config.squeezed_channels(c) == s for c, s in squeezed.items()):
            return {"se_reduction": reduction, "se_divisor": divisor}
    raise ConversionError(f"{reference}'s SE modules squeeze {squeezed} (channels: squeezed); no reduction and "
                          f"rounding the zoo builds gives these")


@converter("timm")
def from_timm_resnet(model):
    if class_name(model) != "ResNet" or not is_instance_of(model, "timm.models"):
        return None
    architecture = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    reference = f"timm {architecture or describe(model)}"
    differences = []
    conv = model.conv1
    stem = None
    if class_name(conv) != "Conv2d":
        differences.append("a deep stem (three 3x3 convolutions, timm's resnet*c / *d / *s) where the zoo has "
                           "one convolution")
    else:
        stem_conv = (conv.kernel_size[0], conv.stride[0], conv.padding[0])
        pool = model.maxpool
        stem_pool = ((pool.kernel_size, pool.stride, pool.padding) if class_name(pool) == "MaxPool2d"
                     else None if class_name(pool) == "Identity" else class_name(pool))
        stem = next((name for name, (c, p) in STEMS.items() if (c, p) == (stem_conv, stem_pool)), None)
        if stem is None:
            differences.append(f"a stem of conv {stem_conv} (kernel, stride, padding) and pool {stem_pool}; the "
                               f"zoo's are {STEMS}")
    stages = [getattr(model, f"layer{i}") for i in range(1, 5) if hasattr(model, f"layer{i}")]
    kinds = {class_name(block) for stage in stages for block in stage}
    if len(kinds) != 1 or not kinds <= set(BLOCK_OF):
        raise ConversionError(f"{reference} has blocks {sorted(kinds)}; the zoo builds BasicBlock or Bottleneck")
    block = BLOCK_OF[kinds.pop()]
    activations = {class_name(m) for name, m in model.named_modules()
                   if name.rsplit(".", 1)[-1].startswith("act") and ".se." not in f".{name}."}
    if activations != {"ReLU"}:
        differences.append(f"activations {sorted(activations)} where the zoo has ReLU")
    for stage in stages:
        for item in stage:
            aa = getattr(item, "aa", None)
            if aa is not None and class_name(aa) != "Identity":
                differences.append(f"anti-aliased downsampling ({class_name(item.aa)})")
                break
            if item.downsample is not None and [class_name(m) for m in item.downsample] != ["Conv2d", "BatchNorm2d"]:
                differences.append(f"shortcuts of {[class_name(m) for m in item.downsample]} (timm's avg_down "
                                   f"puts an average pool before the 1x1 convolution); the zoo's are conv + BN")
                break
    convs = [m for name, m in model.named_modules() if class_name(m) == "Conv2d" and ".se." not in name]
    if any(m.dilation != (1, 1) for m in convs):
        differences.append("dilated convolutions (output_stride < 32)")
    if any(m.bias is not None for m in convs):
        differences.append("convolutions with biases")
    if getattr(model.global_pool, "pool_type", "avg") != "avg" or class_name(model.fc) != "Linear":
        differences.append(f"a head of {getattr(model.global_pool, 'pool_type', '?')} pool and "
                           f"{class_name(model.fc)}; the zoo's is an average pool and a Linear (num_classes > 0)")
    if differences:
        raise ConversionError(f"{reference} differs from the zoo's ResNet: " + "; ".join(dict.fromkeys(differences)))

    first = stages[0][0]
    if block == "basic":
        widths = tuple(stage[0].conv2.out_channels for stage in stages)
        groups, width_per_group, stride_in_1x1 = 1, 64, False
    else:
        widths = tuple(stage[0].conv3.out_channels // 4 for stage in stages)
        groups = first.conv2.groups
        width_per_group = first.conv2.out_channels // groups * 64 // widths[0]
        stride_in_1x1 = len(stages) > 1 and stages[1][0].conv1.stride != (1, 1)
    bns = [m for m in model.modules() if class_name(m) == "BatchNorm2d"]
    detected = dict(block=block, layers=tuple(len(stage) for stage in stages), widths=widths, stem=stem,
                    stem_width=conv.out_channels, groups=groups, width_per_group=width_per_group,
                    bn_eps=first_bn_eps(model), bn_momentum=float(bns[0].momentum), stride_in_1x1=stride_in_1x1)
    expansion = 1 if block == "basic" else 4
    squeezed = {planes * expansion: _timm_se(stage[0], planes * expansion, reference)
                for planes, stage in zip(widths, stages)}
    family = "resnet"
    if any(value is not None for value in squeezed.values()):
        if None in squeezed.values():
            raise ConversionError(f"{reference} has SE modules in some stages only")
        family = "senet"
        detected.update(_se_knobs(squeezed, reference))
    return _conversion(family, detected, num_classes=model.fc.out_features, in_channels=conv.in_channels,
                       weights=torch_state(model), reference=reference)


# ---------------------------------------------------------------- keras.applications

def _keras_layers(model) -> dict:
    return {layer.name: layer for layer in model.layers}


@converter("keras")
def from_keras_resnet(model):
    layers = _keras_layers(model)
    reference = f"keras.applications {describe(model)}"
    if "conv2_block1_preact_bn" in layers and "post_bn" in layers:
        raise ConversionError(
            f"{reference} is Keras' ResNet v2, which the zoo does not build: unlike resnet50 with preactivation=True "
            f"(Gluon's v2), it strides in the last block of each stage, with a 1x1 max pool as that block's shortcut, "
            f"and biases on its stem, shortcut and each block's last convolution")
    if "conv2_block1_add" not in layers or "conv1_conv" not in layers:
        return None  # not a ResNet v1 (Keras' DenseNets share the conv2_block1_* names, without the add)
    if "conv2_block1_3_conv" not in layers:
        raise ConversionError(f"{reference}: a Keras ResNet without bottleneck blocks")
    if "predictions" not in layers:
        raise ConversionError(f"{reference} has no classifier (include_top=False); the zoo's ResNet ends in fc")
    differences = []
    pads = {name: tuple(tuple(p) for p in layers[name].padding) for name in ("conv1_pad", "pool1_pad") if name in layers}
    if pads != {"conv1_pad": ((3, 3), (3, 3)), "pool1_pad": ((1, 1), (1, 1))}:
        differences.append(f"stem padding {pads} where the zoo pads 3 before the 7x7 convolution and 1 before the pool")
    stem = layers["conv1_conv"]
    if tuple(stem.kernel_size) != (7, 7) or tuple(stem.strides) != (2, 2) or stem.padding != "valid":
        differences.append(f"a stem convolution {stem.kernel_size} stride {stem.strides} padding {stem.padding!r}")
    pool = layers.get("pool1_pool")
    if pool is None or tuple(pool.pool_size) != (3, 3) or tuple(pool.strides) != (2, 2):
        differences.append("no 3x3/2 max pool in the stem")
    layer_counts = []
    stage = 2
    while f"conv{stage}_block1_1_conv" in layers:
        blocks = 1
        while f"conv{stage}_block{blocks + 1}_1_conv" in layers:
            blocks += 1
        layer_counts.append(blocks)
        stage += 1
    convs = {name: layer for name, layer in layers.items() if name.endswith("_conv")}
    for name, layer in convs.items():
        if name.endswith("_2_conv") and (layer.padding != "same" or tuple(layer.strides) != (1, 1)):
            differences.append(f"{name}: stride {layer.strides} with padding {layer.padding!r} (Keras' 'same' pads "
                               f"bottom/right at stride 2; the zoo pads symmetrically)")
    if differences:
        raise ConversionError(f"{reference} differs from the zoo's ResNet: " + "; ".join(dict.fromkeys(differences)))
    biases = {name: layer.use_bias for name, layer in convs.items()}
    outer = {value for name, value in biases.items() if name == "conv1_conv" or name.endswith("_0_conv")}
    one = {value for name, value in biases.items() if name.endswith(("_1_conv", "_3_conv"))}
    three = {value for name, value in biases.items() if name.endswith("_2_conv")}
    if len(outer) != 1 or len(one) != 1 or len(three) != 1:
        raise ConversionError(f"{reference}: some convolutions of one kind carry biases and others not")
    bns = [layer for layer in model.layers if class_name(layer) == "BatchNormalization"]
    eps = {float(layer.epsilon) for layer in bns}
    momentum = {torch_momentum(layer.momentum) for layer in bns}
    if len(eps) != 1 or len(momentum) != 1:
        raise ConversionError(f"{reference}: BatchNorm epsilons {sorted(eps)} and momenta {sorted(momentum)}; "
                              f"the zoo builds one of each per model")
    widths = tuple(layers[f"conv{s}_block1_1_conv"].filters for s in range(2, stage))
    if any(layers[f"conv{s}_block1_3_conv"].filters != 4 * w for s, w in zip(range(2, stage), widths)):
        raise ConversionError(f"{reference}: bottlenecks that do not expand by 4")
    detected = dict(block="bottleneck", layers=tuple(layer_counts), widths=widths, stem="imagenet",
                    stem_width=stem.filters, bn_eps=eps.pop(), bn_momentum=momentum.pop(),
                    stride_in_1x1=len(widths) > 1 and tuple(layers["conv3_block1_1_conv"].strides) != (1, 1),
                    conv_bias=_conv_bias(outer.pop(), one.pop(), three.pop(), reference))

    weights = {}

    def conv(keras_name: str, canonical: str) -> None:
        arrays = layers[keras_name].get_weights()
        weights[f"{canonical}.weight"] = conv_from_hwio(arrays[0])
        if len(arrays) > 1:
            weights[f"{canonical}.bias"] = arrays[1]

    def bn(keras_name: str, canonical: str) -> None:
        weights.update(batch_norm(canonical, *layers[keras_name].get_weights()))

    conv("conv1_conv", "conv1")
    bn("conv1_bn", "bn1")
    for s, blocks in enumerate(layer_counts, start=2):
        for b in range(1, blocks + 1):
            keras_prefix, prefix = f"conv{s}_block{b}", f"layer{s - 1}.{b - 1}"
            for k in (1, 2, 3):
                conv(f"{keras_prefix}_{k}_conv", f"{prefix}.conv{k}")
                bn(f"{keras_prefix}_{k}_bn", f"{prefix}.bn{k}")
            if f"{keras_prefix}_0_conv" in layers:
                conv(f"{keras_prefix}_0_conv", f"{prefix}.downsample.0")
                bn(f"{keras_prefix}_0_bn", f"{prefix}.downsample.1")
    kernel, bias = layers["predictions"].get_weights()
    weights["fc.weight"], weights["fc.bias"] = dense_from_keras(kernel), bias
    # Keras ends in a softmax by default (classifier_activation): the zoo's model returns the logits before it.
    return _conversion("resnet", detected, num_classes=kernel.shape[1], in_channels=stem.get_weights()[0].shape[2],
                       weights=weights, reference=reference)


# ---------------------------------------------------------------- Gluon model zoo

def _gluon(param) -> np.ndarray:
    return param.data().asnumpy().copy()


def _gluon_conv(block, canonical: str, weights: dict) -> None:
    weights[f"{canonical}.weight"] = _gluon(block.weight)
    if block.bias is not None:
        weights[f"{canonical}.bias"] = _gluon(block.bias)


def _gluon_bn(block, canonical: str, weights: dict) -> None:
    gamma = np.ones(block.gamma.shape, np.float32) if block._kwargs.get("fix_gamma") else _gluon(block.gamma)
    weights.update(batch_norm(canonical, gamma, _gluon(block.beta), _gluon(block.running_mean),
                              _gluon(block.running_var)))


def _children(block) -> list:
    return list(block._children.values())


@converter("gluon")
def from_gluon_resnet(net):
    kind = class_name(net)
    if kind not in ("ResNetV1", "ResNetV2") or not module_of(net).startswith("mxnet.gluon.model_zoo"):
        return None
    reference = f"Gluon model zoo {describe(net)}"
    v2 = kind == "ResNetV2"
    features = _children(net.features)
    kinds = [class_name(child) for child in features]
    weights: dict[str, np.ndarray] = {}
    detected: dict = {"preactivation": v2, "input_norm": v2}
    head = (["BatchNorm"] if v2 else []) + ["Conv2D", "BatchNorm", "Activation", "MaxPool2D"]
    if kinds[:len(head)] != head:
        raise ConversionError(f"{reference} has a stem of {kinds[:len(head)]} (thumbnail=True builds a lone 3x3 "
                              f"convolution); the zoo's is {head}")
    position = 0
    if v2:
        data_bn = features[0]
        if not data_bn._kwargs.get("fix_gamma"):
            raise ConversionError(f"{reference}: its input BatchNorm has a scale; the zoo's input_bn has none")
        # y = (x - mean) / s + beta with s = sqrt(var + eps) is (x - (mean - beta * s)) / s: beta folds into the mean.
        mean, var, beta = _gluon(data_bn.running_mean), _gluon(data_bn.running_var), _gluon(data_bn.beta)
        scale = np.sqrt(var.astype(np.float64) + data_bn._kwargs["eps"])
        weights["input_bn.running_mean"] = (mean - beta * scale).astype(mean.dtype)
        weights["input_bn.running_var"] = var
        position = 1
    stem, stem_bn, pool = features[position], features[position + 1], features[position + 3]
    stem_kwargs, pool_kwargs = stem._kwargs, pool._kwargs
    differences = []
    if (stem_kwargs["kernel"], stem_kwargs["stride"], stem_kwargs["pad"]) != ((7, 7), (2, 2), (3, 3)):
        differences.append(f"a stem convolution {stem_kwargs['kernel']} stride {stem_kwargs['stride']} "
                           f"pad {stem_kwargs['pad']}")
    if (pool_kwargs["kernel"], pool_kwargs["stride"], pool_kwargs["pad"]) != ((3, 3), (2, 2), (1, 1)):
        differences.append(f"a stem pool {pool_kwargs['kernel']} stride {pool_kwargs['stride']}")
    _gluon_conv(stem, "conv1", weights)
    _gluon_bn(stem_bn, "bn1", weights)
    stages = [child for child in features[position + 4:] if class_name(child) == "HybridSequential"]
    tail = kinds[position + 4 + len(stages):]
    expected_tail = (["BatchNorm", "Activation"] if v2 else []) + ["GlobalAvgPool2D"] + (["Flatten"] if v2 else [])
    if tail != expected_tail:
        differences.append(f"a head of {tail} where the zoo has {expected_tail}")
    block_kinds = {class_name(b) for stage in stages for b in _children(stage)}
    suffix = "V2" if v2 else "V1"
    if block_kinds not in ({f"BasicBlock{suffix}"}, {f"Bottleneck{suffix}"}):
        differences.append(f"blocks {sorted(block_kinds)}")
    if differences:
        raise ConversionError(f"{reference} differs from the zoo's ResNet: " + "; ".join(dict.fromkeys(differences)))
    block = "basic" if block_kinds == {f"BasicBlock{suffix}"} else "bottleneck"
    bn_blocks = [child for stage in stages for b in _children(stage) for child in _walk(b)
                 if class_name(child) == "BatchNorm"] + [stem_bn]
    eps = {float(b._kwargs["eps"]) for b in bn_blocks}
    momentum = {torch_momentum(b._kwargs["momentum"]) for b in bn_blocks}
    if len(eps) != 1 or len(momentum) != 1:
        raise ConversionError(f"{reference}: BatchNorm epsilons {sorted(eps)} and momenta {sorted(momentum)}; the "
                              f"zoo builds one of each per model")
    outer_bias, one_bias, three_bias, widths, strides_1x1 = {stem.bias is not None}, set(), set(), [], set()
    for s, stage in enumerate(stages, start=1):
        for b, item in enumerate(_children(stage)):
            prefix = f"layer{s}.{b}"
            if v2:
                convs = [item.conv1, item.conv2] + ([item.conv3] if block == "bottleneck" else [])
                norms = [item.bn1, item.bn2] + ([item.bn3] if block == "bottleneck" else [])
                shortcut = [item.downsample] if item.downsample is not None else []
            else:
                body = _children(item.body)
                convs = [m for m in body if class_name(m) == "Conv2D"]
                norms = [m for m in body if class_name(m) == "BatchNorm"]
                shortcut = _children(item.downsample) if item.downsample is not None else []
            for k, (conv, norm) in enumerate(zip(convs, norms), start=1):
                _gluon_conv(conv, f"{prefix}.conv{k}", weights)
                _gluon_bn(norm, f"{prefix}.bn{k}", weights)
                (three_bias if conv._kwargs["kernel"] == (3, 3) else one_bias).add(conv.bias is not None)
            if shortcut:
                _gluon_conv(shortcut[0], f"{prefix}.downsample.0", weights)
                outer_bias.add(shortcut[0].bias is not None)
                if len(shortcut) > 1:
                    _gluon_bn(shortcut[1], f"{prefix}.downsample.1", weights)
            if b == 0:
                out = convs[-1].weight.shape[0]
                widths.append(out if block == "basic" else out // 4)
                if block == "bottleneck" and s > 1:
                    strides_1x1.add(convs[0]._kwargs["stride"] != (1, 1))
    if v2:
        _gluon_bn(features[position + 4 + len(stages)], "final_bn", weights)
    if max(len(outer_bias), len(one_bias), len(three_bias)) > 1:
        raise ConversionError(f"{reference}: some convolutions of one kind carry biases and others not")
    detected.update(block=block, layers=tuple(len(_children(stage)) for stage in stages), widths=tuple(widths),
                    stem="imagenet", stem_width=stem.weight.shape[0], bn_eps=eps.pop(), bn_momentum=momentum.pop(),
                    stride_in_1x1=strides_1x1 == {True},
                    conv_bias=_conv_bias(outer_bias.pop(), one_bias.pop() if one_bias else None, three_bias.pop(),
                                         reference))
    weights["fc.weight"], weights["fc.bias"] = _gluon(net.output.weight), _gluon(net.output.bias)
    return _conversion("resnet", detected, num_classes=net.output.weight.shape[0], in_channels=stem.weight.shape[1],
                       weights=weights, reference=reference)


def _walk(block):
    yield block
    for child in _children(block):
        yield from _walk(child)
