"""LeNet-5 in MXNet Gluon: the spec's plan (`LeNetConfig.plan`), translated by zoo_mxnet.alexnet."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.lenet import LeNetConfig

from .alexnet import SequentialNet


class LeNet(SequentialNet):
    pass


def build(config: LeNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return LeNet(config.plan(num_classes, in_channels))
