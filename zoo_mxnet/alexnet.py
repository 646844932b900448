"""AlexNet in MXNet Gluon."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.alexnet import AlexNetConfig

from .layers import AdaptiveAvgPool2D, LocalResponseNorm


class AlexNet(nn.HybridBlock):
    def __init__(self, config: AlexNetConfig, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            channels = in_channels
            for kind, *conv in config.layers():
                if kind == "conv":
                    i = conv[0]
                    self.features.add(nn.Conv2D(config.channels[i], config.kernel_sizes[i], strides=config.strides[i],
                                                padding=config.paddings[i], groups=config.groups[i],
                                                in_channels=channels))
                    channels = config.channels[i]
                elif kind == "relu":
                    self.features.add(nn.Activation("relu"))
                elif kind == "lrn":
                    self.features.add(LocalResponseNorm(config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k))
                else:
                    self.features.add(nn.MaxPool2D(config.pool_kernel, config.pool_stride))
            self.avgpool = AdaptiveAvgPool2D(config.pool_size)
            self.classifier = nn.HybridSequential()
            width = channels * config.pool_size ** 2
            for hidden in config.hidden:
                # Gluon's Dense flattens NCHW as torch.flatten does.
                self.classifier.add(nn.Dropout(config.dropout), nn.Dense(hidden, in_units=width), nn.Activation("relu"))
                width = hidden
            self.classifier.add(nn.Dense(num_classes, in_units=width))

    def hybrid_forward(self, F, x):
        return self.classifier(self.avgpool(self.features(x)))


def build(config: AlexNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return AlexNet(config, num_classes, in_channels)
