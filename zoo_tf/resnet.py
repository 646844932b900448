"""ResNet in Keras (functional), layer names following torchvision's module paths (`layer1.0.conv1`).

`attention(x, name)` may put a module (SE) on each block's residual branch before the addition.
"""
from __future__ import annotations

from typing import Callable, Optional

from keras import layers

from zoo.specs.resnet import ResNetConfig

from .layers import activation, batch_norm, conv2d, max_pool

Attention = Optional[Callable[..., object]]


def _bn(x, config: ResNetConfig, name: str):
    return batch_norm(x, name=name, eps=config.bn_eps, momentum=config.bn_momentum)


def basic_block(x, config: ResNetConfig, planes: int, stride: int, downsample: bool, name: str,
                attention: Attention = None):
    out = conv2d(x, planes, 3, stride=stride, padding=1, use_bias=False, name=f"{name}.conv1")
    out = activation(_bn(out, config, f"{name}.bn1"), "relu", name=f"{name}.relu1")
    out = conv2d(out, planes, 3, padding=1, use_bias=False, name=f"{name}.conv2")
    out = _bn(out, config, f"{name}.bn2")
    return _merge(x, out, config, planes, stride, downsample, name, attention)


def bottleneck(x, config: ResNetConfig, planes: int, stride: int, downsample: bool, name: str,
               attention: Attention = None):
    width = config.bottleneck_width(planes)
    stride1, stride2 = config.bottleneck_strides(stride)
    out = conv2d(x, width, 1, stride=stride1, use_bias=False, name=f"{name}.conv1")
    out = activation(_bn(out, config, f"{name}.bn1"), "relu", name=f"{name}.relu1")
    out = conv2d(out, width, 3, stride=stride2, padding=1, groups=config.groups, use_bias=False, name=f"{name}.conv2")
    out = activation(_bn(out, config, f"{name}.bn2"), "relu", name=f"{name}.relu2")
    out = conv2d(out, planes * config.expansion, 1, use_bias=False, name=f"{name}.conv3")
    out = _bn(out, config, f"{name}.bn3")
    return _merge(x, out, config, planes, stride, downsample, name, attention)


def _merge(x, out, config, planes, stride, downsample, name, attention):
    if attention is not None:
        out = attention(out, name=f"{name}.se")
    if downsample:
        x = conv2d(x, planes * config.expansion, 1, stride=stride, use_bias=False, name=f"{name}.downsample.0")
        x = _bn(x, config, f"{name}.downsample.1")
    out = layers.Add(name=f"{name}.add")([out, x])
    return activation(out, "relu", name=f"{name}.relu")


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck}


def build(inputs, config: ResNetConfig, num_classes: int, attention: Attention = None):
    block = BLOCKS[config.block]
    kernel, stride, padding = config.stem_conv
    x = conv2d(inputs, config.stem_width, kernel, stride=stride, padding=padding, use_bias=False, name="conv1")
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
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return layers.Dense(num_classes, name="fc")(x)
