"""LeNet-5 in PyTorch: the spec's plan (`LeNetConfig.plan`), translated by zoo_torch.alexnet."""
from __future__ import annotations

from torch import nn

from zoo.specs.lenet import LeNetConfig

from .alexnet import SequentialNet


class LeNet(SequentialNet):
    pass


def build(config: LeNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return LeNet(config.plan(num_classes, in_channels))
