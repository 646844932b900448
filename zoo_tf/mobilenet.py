"""MobileNet V1, V2 and V3 in Keras, and the inverted-residual block EfficientNet shares.

Layers are named after the PyTorch modules they mirror (`features.2.conv.1.0`, `features.4.block.2.fc1`).
Stride-2 convolutions pad symmetrically first, as PyTorch does, so that they see the same pixels as in
PyTorch (Keras' "same" would pad bottom/right only); stride-1 ones use "same", which agrees there. With
the family's `padding="same"` knob every convolution uses Keras' "same", as keras.applications does.
"""
from __future__ import annotations

from keras import layers

from zoo.specs.mobilenet import (
    InvertedResidualPlan,
    MobileNetConfig,
    MobileNetV1Config,
    MobileNetV2Config,
    MobileNetV3Config,
)

from .layers import activation, batch_norm, conv2d
from .model import functional


def conv_bn_act(x, filters: int, kernel: int, *, name: str, norm: dict, stride: int = 1, groups: int = 1,
                dilation: int = 1, act: str | None = "relu", padding: str = "symmetric"):
    """torchvision's Conv2dNormActivation: `name.0` conv without bias, `name.1` BatchNorm, `name.2` activation."""
    pad = "same" if padding == "same" else (kernel - 1) // 2 * dilation
    x = conv2d(x, filters, kernel, name=f"{name}.0", stride=stride, padding=pad,
               groups=groups, dilation=dilation, use_bias=False)
    x = batch_norm(x, name=f"{name}.1", **norm)
    return x if act is None else activation(x, act, name=f"{name}.2")


def squeeze_excitation(x, squeeze_channels: int, *, name: str, act: str, gate: str):
    """torchvision.ops.SqueezeExcitation: pool, 1x1 conv `fc1`, act, 1x1 conv `fc2`, gate, rescale."""
    scale = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}.avgpool")(x)
    scale = layers.Conv2D(squeeze_channels, 1, name=f"{name}.fc1")(scale)
    scale = activation(scale, act, name=f"{name}.activation")
    scale = layers.Conv2D(x.shape[-1], 1, name=f"{name}.fc2")(scale)
    scale = activation(scale, gate, name=f"{name}.scale_activation")
    return layers.Multiply(name=f"{name}.scale")([scale, x])


def inverted_residual(x, plan: InvertedResidualPlan, *, name: str, norm: dict, body: str = "block",
                      flat_projection: bool = False, padding: str = "symmetric"):
    """Expand, depthwise, optional SE, linear projection, shortcut (see zoo_torch.mobilenet.InvertedResidual)."""
    shortcut, index = x, 0
    prefix = f"{name}.{body}"
    if plan.expands:
        x = conv_bn_act(x, plan.expanded, 1, name=f"{prefix}.0", norm=norm, act=plan.activation)
        index += 1
    x = conv_bn_act(x, plan.expanded, plan.kernel, name=f"{prefix}.{index}", norm=norm,
                    stride=plan.depthwise_stride, groups=plan.expanded, dilation=plan.dilation, act=plan.activation,
                    padding=padding)
    index += 1
    if plan.se_channels:
        x = squeeze_excitation(x, plan.se_channels, name=f"{prefix}.{index}", act=plan.se_activation, gate=plan.se_gate)
        index += 1
    if flat_projection:
        x = conv2d(x, plan.out_channels, 1, name=f"{prefix}.{index}", use_bias=False)
        x = batch_norm(x, name=f"{prefix}.{index + 1}", **norm)
    else:
        x = conv_bn_act(x, plan.out_channels, 1, name=f"{prefix}.{index}", norm=norm, act=None)
    if not plan.use_residual:
        return x
    if plan.stochastic_depth:
        # Row-mode stochastic depth: one Bernoulli draw per sample, rescaled; identity in inference.
        x = layers.Dropout(plan.stochastic_depth, noise_shape=(None, 1, 1, 1), name=f"{name}.stochastic_depth")(x)
    return layers.Add(name=f"{name}.add")([x, shortcut])


def _norm(config) -> dict:
    return {"eps": config.bn_eps, "momentum": config.bn_momentum}


def head(x, hidden: list, num_classes: int, *, dropout: float, hidden_act: str = "hardswish", bias: bool = True):
    """Global average pool and torchvision's classifier: [Dropout, Linear] or [Linear, act, Dropout, Linear]."""
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    index = 0
    for width in hidden:
        x = layers.Dense(width, name=f"classifier.{index}")(x)
        x = activation(x, hidden_act, name=f"classifier.{index + 1}")
        index += 2
    x = layers.Dropout(dropout, name=f"classifier.{index}")(x)
    return layers.Dense(num_classes, use_bias=bias, name=f"classifier.{index + 1}")(x)


def mobilenet_v1(inputs, config: MobileNetV1Config, num_classes: int):
    norm, act, padding = _norm(config), config.activation, config.padding
    stem, blocks = config.plan()
    x = conv_bn_act(inputs, stem, 3, stride=2, name="features.0", norm=norm, act=act, padding=padding)
    for i, (cin, cout, stride) in enumerate(blocks, start=1):
        x = conv_bn_act(x, cin, 3, stride=stride, groups=cin, name=f"features.{i}.0", norm=norm, act=act,
                        padding=padding)
        x = conv_bn_act(x, cout, 1, name=f"features.{i}.1", norm=norm, act=act)
    return head(x, [], num_classes, dropout=config.dropout)


def mobilenet_v2(inputs, config: MobileNetV2Config, num_classes: int):
    norm = _norm(config)
    plans = config.plan()
    x = conv_bn_act(inputs, config.stem(), 3, stride=2, name="features.0", norm=norm, act="relu6",
                    padding=config.padding)
    for i, plan in enumerate(plans, start=1):
        x = inverted_residual(x, plan, name=f"features.{i}", norm=norm, body="conv", flat_projection=True,
                              padding=config.padding)
    x = conv_bn_act(x, config.head(), 1, name=f"features.{len(plans) + 1}", norm=norm, act="relu6")
    return head(x, [], num_classes, dropout=config.dropout, bias=config.classifier_bias)


def mobilenet_v3(inputs, config: MobileNetV3Config, num_classes: int):
    norm = _norm(config)
    plans = config.plan()
    last_conv, hidden = config.head()
    x = conv_bn_act(inputs, config.stem(), 3, stride=2, name="features.0", norm=norm, act="hardswish",
                    padding=config.padding)
    for i, plan in enumerate(plans, start=1):
        x = inverted_residual(x, plan, name=f"features.{i}", norm=norm, padding=config.padding)
    x = conv_bn_act(x, last_conv, 1, name=f"features.{len(plans) + 1}", norm=norm, act="hardswish")
    return head(x, [hidden], num_classes, dropout=config.dropout)


BUILDERS = {MobileNetV1Config: mobilenet_v1, MobileNetV2Config: mobilenet_v2, MobileNetV3Config: mobilenet_v3}


def network(inputs, config: MobileNetConfig, num_classes: int):
    return BUILDERS[type(config)](inputs, config, num_classes)


build = functional(network)
