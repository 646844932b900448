"""LeNet-5 in MXNet Gluon."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.lenet import LeNetConfig

POOLS = {"avg": nn.AvgPool2D, "max": nn.MaxPool2D}


class LeNet(nn.HybridBlock):
    def __init__(self, config: LeNetConfig, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        pool = POOLS[config.pooling]
        c1, c2 = config.channels
        k = config.kernel_size
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.features.add(
                nn.Conv2D(c1, k, padding=config.padding, in_channels=in_channels), nn.Activation(config.activation), pool(2),
                nn.Conv2D(c2, k, in_channels=c1), nn.Activation(config.activation), pool(2),
            )
            self.classifier = nn.HybridSequential()
            width = c2 * config.feature_size() ** 2
            for hidden in config.hidden:
                self.classifier.add(nn.Dense(hidden, in_units=width), nn.Activation(config.activation))
                if config.dropout:
                    self.classifier.add(nn.Dropout(config.dropout))
                width = hidden
            self.classifier.add(nn.Dense(num_classes, in_units=width))

    def hybrid_forward(self, F, x):
        return self.classifier(self.features(x))


def build(config: LeNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return LeNet(config, num_classes, in_channels)
