"""EfficientNet B0-B7 in MXNet Gluon, built from MobileNet's inverted-residual block (zoo_mxnet/mobilenet.py)."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.efficientnet import EfficientNetConfig

from .mobilenet import ConvBNAct, InvertedResidual, MobileNet


def build(config: EfficientNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    norm = {"eps": config.bn_eps, "momentum": config.bn_momentum}
    stages = config.plan()
    features = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="silu", padding=config.padding)]
    for stage in stages:
        blocks = nn.HybridSequential()
        blocks.add(*(InvertedResidual(p, norm, padding=config.padding) for p in stage))
        features.append(blocks)
    features.append(ConvBNAct(stages[-1][-1].out_channels, config.head(), 1, norm=norm, activation="silu"))
    return MobileNet(features, [nn.Dropout(config.dropout), nn.Dense(num_classes, in_units=config.head())])
