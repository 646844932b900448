"""VGG in MXNet Gluon."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.vgg import M, VGGConfig

from .layers import AdaptiveAvgPool2D


class VGG(nn.HybridBlock):
    def __init__(self, config: VGGConfig, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            channels = in_channels
            for value in config.layers:
                if value == M:
                    self.features.add(nn.MaxPool2D(2, 2))
                    continue
                self.features.add(nn.Conv2D(value, 3, padding=1, in_channels=channels))
                if config.batch_norm:
                    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
                    self.features.add(nn.BatchNorm(momentum=1.0 - config.bn_momentum, epsilon=config.bn_eps,
                                                   in_channels=value))
                self.features.add(nn.Activation("relu"))
                channels = value
            self.avgpool = AdaptiveAvgPool2D(config.pool_size)
            self.classifier = nn.HybridSequential()
            width = channels * config.pool_size ** 2
            for hidden in config.hidden:
                self.classifier.add(nn.Dense(hidden, in_units=width), nn.Activation("relu"), nn.Dropout(config.dropout))
                width = hidden
            self.classifier.add(nn.Dense(num_classes, in_units=width))

    def hybrid_forward(self, F, x):
        return self.classifier(self.avgpool(self.features(x)))


def build(config: VGGConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return VGG(config, num_classes, in_channels)
