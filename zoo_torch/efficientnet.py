"""EfficientNet B0-B7 in PyTorch, with torchvision's module tree and state_dict keys.

The MBConv block is MobileNet's `InvertedResidual` (zoo_torch/mobilenet.py) with SiLU, SE and
stochastic depth; each stage is its own Sequential (`features.<stage>.<block>`), as in torchvision.
"""
from __future__ import annotations

from functools import partial

from torch import nn

from zoo.specs.efficientnet import EfficientNetConfig

from .mobilenet import ConvBNAct, InvertedResidual, MobileNet, init_weights


def build(config: EfficientNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    norm = partial(nn.BatchNorm2d, eps=config.bn_eps, momentum=config.bn_momentum)
    features: list[nn.Module] = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="silu",
                                           padding=config.padding)]
    stages = config.plan()
    for stage in stages:
        features.append(nn.Sequential(*(InvertedResidual(p, norm, stochastic_depth=True, padding=config.padding)
                                        for p in stage)))
    features.append(ConvBNAct(stages[-1][-1].out_channels, config.head(), 1, norm=norm, activation="silu"))
    model = MobileNet(features, [nn.Dropout(config.dropout), nn.Linear(config.head(), num_classes)])
    init_weights(model, linear_init="uniform")
    return model
