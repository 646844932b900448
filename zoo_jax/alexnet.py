"""AlexNet in Flax NNX, module for module `zoo_torch.alexnet` (torchvision's `AlexNet` keys)."""
from __future__ import annotations

from flax import nnx

from zoo.specs.alexnet import AlexNetConfig

from .layers import (AdaptiveAvgPool2d, Conv2d, Dropout, Linear, LocalResponseNorm, MaxPool2d, ReLU, Sequential,
                     flatten, init_rngs)
from .network import Network


def make_features(config: AlexNetConfig, in_channels: int, *, rngs: nnx.Rngs) -> Sequential:
    layers = []
    channels = in_channels
    for kind, *index in config.layers():
        if kind == "conv":
            i = index[0]
            layers.append(Conv2d(channels, config.channels[i], config.kernel_sizes[i], config.strides[i],
                                 config.paddings[i], groups=config.groups[i], rngs=rngs))
            channels = config.channels[i]
        elif kind == "relu":
            layers.append(ReLU())
        elif kind == "lrn":
            # The paper's alpha multiplies the sum of squares; PyTorch's (and this layer's) is divided by the size.
            layers.append(LocalResponseNorm(config.lrn_size, alpha=config.lrn_alpha * config.lrn_size,
                                            beta=config.lrn_beta, k=config.lrn_k))
        else:
            layers.append(MaxPool2d(config.pool_kernel, config.pool_stride))
    return Sequential(*layers)


class AlexNet(Network):
    def __init__(self, config: AlexNetConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        self.features = make_features(config, in_channels, rngs=rngs)
        self.avgpool = AdaptiveAvgPool2d((config.pool_size, config.pool_size))
        layers = []
        width = config.channels[-1] * config.pool_size ** 2
        for hidden in config.hidden:
            layers += [Dropout(config.dropout, rngs=rngs), Linear(width, hidden, rngs=rngs), ReLU()]
            width = hidden
        layers.append(Linear(width, num_classes, rngs=rngs))
        self.classifier = Sequential(*layers)
        # torchvision keeps PyTorch's default initialisation for AlexNet, which the layers already have.

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(flatten(x))


def build(config: AlexNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return AlexNet(config, num_classes, in_channels, rngs=init_rngs())
