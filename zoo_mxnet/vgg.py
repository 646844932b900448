"""VGG in MXNet Gluon: the spec's plan (`VGGConfig.plan`), translated by zoo_mxnet.alexnet."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.vgg import VGGConfig

from .alexnet import SequentialNet


class VGG(SequentialNet):
    pass


def build(config: VGGConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return VGG(config.plan(num_classes, in_channels))
