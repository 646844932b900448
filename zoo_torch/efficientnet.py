"""EfficientNet B0-B7 in PyTorch, with torchvision's module tree and state_dict keys.

The network is the spec's plan (`EfficientNetConfig.network_plan`), in the pieces MobileNet's are made of,
so zoo_torch/mobilenet.py translates it: MBConv blocks with SiLU, SE and stochastic depth, each stage its
own Sequential (`features.<stage>.<block>`), as in torchvision.
"""
from __future__ import annotations

from torch import nn

from zoo.specs.efficientnet import EfficientNetConfig

from .mobilenet import MobileNet


def build(config: EfficientNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return MobileNet(config.network_plan(num_classes, in_channels))
