"""Network in Network in PyTorch (d2l.ai's ImageNet-size NiN): the spec's plan (`NiNConfig.plan`),
translated by zoo_torch.alexnet."""
from __future__ import annotations

from torch import nn

from zoo.specs.nin import NiNConfig

from .alexnet import SequentialNet


class NiN(SequentialNet):
    pass


def build(config: NiNConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return NiN(config.plan(num_classes, in_channels))
