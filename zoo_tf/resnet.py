"""ResNet in Keras (functional), layer names following torchvision's module paths (`layer1.0.conv1`).

`attention(x, name)` may put a module (SE) on each block's residual branch before the addition.
`preactivation=True` builds ResNet v2's pre-activation blocks; `conv_bias` and `input_norm` the
variants Keras and Gluon build (zoo.specs.resnet says who builds which).
"""
from __future__ import annotations

from typing import Callable

from keras import layers

from zoo.specs.resnet import ResNetConfig

from .layers import BatchNorm, activation, batch_norm, conv2d, max_pool

Attention = Callable[..., object] | None


def _bn(x, config: ResNetConfig, name: str):
    return batch_norm(x, name=name, eps=config.bn_eps, momentum=config.bn_momentum)


def _bn_relu(x, config: ResNetConfig, name: str, relu_name: str):
    return activation(_bn(x, config, name), "relu", name=relu_name)


def basic_block(x, config: ResNetConfig, planes: int, stride: int, downsample: bool, name: str,
                attention: Attention = None):
    _, _, bias3x3 = config.conv_biases()
    out = conv2d(x, planes, 3, stride=stride, padding=1, use_bias=bias3x3, name=f"{name}.conv1")
    out = _bn_relu(out, config, f"{name}.bn1", f"{name}.relu1")
    out = conv2d(out, planes, 3, padding=1, use_bias=bias3x3, name=f"{name}.conv2")
    out = _bn(out, config, f"{name}.bn2")
    return _merge(x, out, config, planes, stride, downsample, name, attention)


def bottleneck(x, config: ResNetConfig, planes: int, stride: int, downsample: bool, name: str,
               attention: Attention = None):
    width = config.bottleneck_width(planes)
    stride1, stride2 = config.bottleneck_strides(stride)
    _, bias1x1, bias3x3 = config.conv_biases()
    out = conv2d(x, width, 1, stride=stride1, use_bias=bias1x1, name=f"{name}.conv1")
    out = _bn_relu(out, config, f"{name}.bn1", f"{name}.relu1")
    out = conv2d(out, width, 3, stride=stride2, padding=1, groups=config.groups, use_bias=bias3x3,
                 name=f"{name}.conv2")
    out = _bn_relu(out, config, f"{name}.bn2", f"{name}.relu2")
    out = conv2d(out, planes * config.expansion, 1, use_bias=bias1x1, name=f"{name}.conv3")
    out = _bn(out, config, f"{name}.bn3")
    return _merge(x, out, config, planes, stride, downsample, name, attention)


def _merge(x, out, config, planes, stride, downsample, name, attention):
    if attention is not None:
        out = attention(out, name=f"{name}.se")
    if downsample:
        bias_outer, _, _ = config.conv_biases()
        x = conv2d(x, planes * config.expansion, 1, stride=stride, use_bias=bias_outer, name=f"{name}.downsample.0")
        x = _bn(x, config, f"{name}.downsample.1")
    out = layers.Add(name=f"{name}.add")([out, x])
    return activation(out, "relu", name=f"{name}.relu")


def preact_basic_block(x, config: ResNetConfig, planes: int, stride: int, downsample: bool, name: str,
                       attention: Attention = None):
    _, _, bias3x3 = config.conv_biases()
    pre = _bn_relu(x, config, f"{name}.bn1", f"{name}.relu1")
    out = conv2d(pre, planes, 3, stride=stride, padding=1, use_bias=bias3x3, name=f"{name}.conv1")
    out = _bn_relu(out, config, f"{name}.bn2", f"{name}.relu2")
    out = conv2d(out, planes, 3, padding=1, use_bias=bias3x3, name=f"{name}.conv2")
    return _preact_merge(x, pre, out, config, planes, stride, downsample, name, attention)


def preact_bottleneck(x, config: ResNetConfig, planes: int, stride: int, downsample: bool, name: str,
                      attention: Attention = None):
    width = config.bottleneck_width(planes)
    stride1, stride2 = config.bottleneck_strides(stride)
    _, bias1x1, bias3x3 = config.conv_biases()
    pre = _bn_relu(x, config, f"{name}.bn1", f"{name}.relu1")
    out = conv2d(pre, width, 1, stride=stride1, use_bias=bias1x1, name=f"{name}.conv1")
    out = _bn_relu(out, config, f"{name}.bn2", f"{name}.relu2")
    out = conv2d(out, width, 3, stride=stride2, padding=1, groups=config.groups, use_bias=bias3x3,
                 name=f"{name}.conv2")
    out = _bn_relu(out, config, f"{name}.bn3", f"{name}.relu3")
    out = conv2d(out, planes * config.expansion, 1, use_bias=bias1x1, name=f"{name}.conv3")
    return _preact_merge(x, pre, out, config, planes, stride, downsample, name, attention)


def _preact_merge(x, pre, out, config, planes, stride, downsample, name, attention):
    # v2: the projection sees the pre-activated input, and the sum is passed on as it is
    if attention is not None:
        out = attention(out, name=f"{name}.se")
    if downsample:
        bias_outer, _, _ = config.conv_biases()
        x = conv2d(pre, planes * config.expansion, 1, stride=stride, use_bias=bias_outer, name=f"{name}.downsample.0")
    return layers.Add(name=f"{name}.add")([out, x])


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck}
PREACT_BLOCKS = {"basic": preact_basic_block, "bottleneck": preact_bottleneck}


def build(inputs, config: ResNetConfig, num_classes: int, attention: Attention = None):
    block = (PREACT_BLOCKS if config.preactivation else BLOCKS)[config.block]
    bias_outer, _, _ = config.conv_biases()
    x = inputs
    if config.input_norm:
        # Gluon v2's normalisation of the image itself: statistics only, no scale or shift.
        x = BatchNorm(axis=-1, epsilon=config.bn_eps, momentum=1.0 - config.bn_momentum, center=False,
                      scale=False, name="input_bn")(x)
    kernel, stride, padding = config.stem_conv
    x = conv2d(x, config.stem_width, kernel, stride=stride, padding=padding, use_bias=bias_outer, name="conv1")
    x = activation(_bn(x, config, "bn1"), "relu", name="relu")
    if config.stem_pool:
        kernel, stride, padding = config.stem_pool
        x = max_pool(x, kernel, stride=stride, padding=padding, name="maxpool")
    inplanes = config.stem_width
    for index, (planes, blocks, stride) in enumerate(
            zip(config.widths, config.layers, config.stage_strides()), start=1):
        out = planes * config.expansion
        for i in range(blocks):
            first = i == 0
            x = block(x, config, planes, stride if first else 1,
                      first and (stride != 1 or inplanes != out), f"layer{index}.{i}", attention)
        inplanes = out
    if config.preactivation:
        x = _bn_relu(x, config, "final_bn", "final_relu")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return layers.Dense(num_classes, name="fc")(x)
