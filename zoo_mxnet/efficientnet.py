"""EfficientNet B0-B7 in MXNet Gluon: the spec's plan (`EfficientNetConfig.network_plan`), in the pieces
MobileNet's are made of, translated by zoo_mxnet/mobilenet.py."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.efficientnet import EfficientNetConfig

from .mobilenet import MobileNet


def build(config: EfficientNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return MobileNet(config.network_plan(num_classes, in_channels))
