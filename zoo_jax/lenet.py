"""LeNet-5 in Flax NNX, module for module `zoo_torch.lenet`."""
from __future__ import annotations

from flax import nnx

from zoo.specs.lenet import LeNetConfig

from .layers import ACTIVATIONS, AvgPool2d, Conv2d, Dropout, Linear, MaxPool2d, Sequential, flatten, init_rngs
from .network import Network

POOLS = {"avg": AvgPool2d, "max": MaxPool2d}


class LeNet(Network):
    def __init__(self, config: LeNetConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        act, pool = ACTIVATIONS[config.activation], POOLS[config.pooling]
        c1, c2 = config.channels
        self.features = Sequential(
            Conv2d(in_channels, c1, config.kernel_size, padding=config.padding, rngs=rngs), act(), pool(2),
            Conv2d(c1, c2, config.kernel_size, rngs=rngs), act(), pool(2),
        )
        layers = []
        width = c2 * config.feature_size() ** 2
        for hidden in config.hidden:
            layers += [Linear(width, hidden, rngs=rngs), act()]
            if config.dropout:
                layers.append(Dropout(config.dropout, rngs=rngs))
            width = hidden
        layers.append(Linear(width, num_classes, rngs=rngs))
        self.classifier = Sequential(*layers)

    def forward(self, x):
        return self.classifier(flatten(self.features(x)))


def build(config: LeNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return LeNet(config, num_classes, in_channels, rngs=init_rngs())
