"""VGG in Flax NNX, module for module `zoo_torch.vgg` (torchvision's `VGG` keys and initialisation)."""
from __future__ import annotations

import math

from flax import nnx

from zoo.specs.vgg import M, VGGConfig

from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, ReLU, Sequential, fill,
                     flatten, init_rngs, normal)
from .network import Network


def make_features(config: VGGConfig, in_channels: int, *, rngs: nnx.Rngs) -> Sequential:
    layers = []
    channels = in_channels
    for value in config.layers:
        if value == M:
            layers.append(MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(Conv2d(channels, value, kernel_size=3, padding=1, rngs=rngs))
        if config.batch_norm:
            layers.append(BatchNorm2d(value, eps=config.bn_eps, momentum=config.bn_momentum))
        layers.append(ReLU())
        channels = value
    return Sequential(*layers)


def _initialize(model: nnx.Module, rngs: nnx.Rngs) -> None:
    """torchvision's: Kaiming-normal (fan_out, ReLU) convolutions, N(0, 0.01) dense layers, zero biases.
    BatchNorm starts at weight 1 and bias 0 already."""
    for _, module in nnx.iter_graph(model):
        if isinstance(module, Conv2d):
            kh, kw, _, out_channels = module.kernel[...].shape
            std = math.sqrt(2.0 / (out_channels * kh * kw))
            module.kernel.set_value(normal(rngs, module.kernel[...].shape, std))
        elif isinstance(module, Linear):
            module.kernel.set_value(normal(rngs, module.kernel[...].shape, 0.01))
        else:
            continue
        fill(module.bias, 0.0)


class VGG(Network):
    def __init__(self, config: VGGConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        self.features = make_features(config, in_channels, rngs=rngs)
        self.avgpool = AdaptiveAvgPool2d((config.pool_size, config.pool_size))
        layers = []
        width = config.out_channels * config.pool_size ** 2
        for hidden in config.hidden:
            layers += [Linear(width, hidden, rngs=rngs), ReLU(), Dropout(config.dropout, rngs=rngs)]
            width = hidden
        layers.append(Linear(width, num_classes, rngs=rngs))
        self.classifier = Sequential(*layers)
        _initialize(self, rngs)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(flatten(x))


def build(config: VGGConfig, *, num_classes: int, in_channels: int) -> Network:
    return VGG(config, num_classes, in_channels, rngs=init_rngs())
