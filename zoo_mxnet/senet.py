"""SE-ResNet in MXNet Gluon: zoo_mxnet.resnet with a squeeze-and-excitation block (`se.fc1`, `se.fc2`,
1x1 convolutions) on every residual branch, squeezed as the plan says."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.senet import SEResNetConfig

from . import resnet
from .layers import global_avg_pool, relu, sigmoid


class SqueezeExcitation(nn.HybridBlock):
    def __init__(self, channels: int, squeezed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.fc1 = nn.Conv2D(squeezed, 1, in_channels=channels)
            self.fc2 = nn.Conv2D(channels, 1, in_channels=squeezed)

    def hybrid_forward(self, F, x):
        scale = global_avg_pool(F, x)
        scale = sigmoid(F, self.fc2(relu(F, self.fc1(scale))))
        return F.broadcast_mul(x, scale)


def build(config: SEResNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return resnet.ResNet(config.plan(num_classes, in_channels), se=SqueezeExcitation)
