"""Network in Network in MXNet Gluon: the spec's plan (`NiNConfig.plan`), translated by zoo_mxnet.alexnet."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.nin import NiNConfig

from .alexnet import SequentialNet


class NiN(SequentialNet):
    pass


def build(config: NiNConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return NiN(config.plan(num_classes, in_channels))
