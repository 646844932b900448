"""Network in Network in MXNet Gluon."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.nin import NiNConfig


def nin_block(in_channels: int, channels: int, kernel: int, stride: int, padding: int, mlp_layers: int) -> nn.HybridSequential:
    block = nn.HybridSequential()
    block.add(nn.Conv2D(channels, kernel, strides=stride, padding=padding, in_channels=in_channels), nn.Activation("relu"))
    for _ in range(mlp_layers):
        block.add(nn.Conv2D(channels, 1, in_channels=channels), nn.Activation("relu"))
    return block


class NiN(nn.HybridBlock):
    def __init__(self, config: NiNConfig, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            channels = in_channels
            for out_channels, kernel, stride, padding in config.blocks:
                self.features.add(nin_block(channels, out_channels, kernel, stride, padding, config.mlp_layers),
                                  nn.MaxPool2D(config.pool_kernel, config.pool_stride))
                channels = out_channels
            self.features.add(nn.Dropout(config.dropout))
            self.classifier = nn.HybridSequential()
            self.classifier.add(
                nin_block(channels, num_classes, config.head_kernel, 1, config.head_padding, config.mlp_layers),
                nn.GlobalAvgPool2D(),
                nn.Flatten(),
            )

    def hybrid_forward(self, F, x):
        return self.classifier(self.features(x))


def build(config: NiNConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return NiN(config, num_classes, in_channels)
