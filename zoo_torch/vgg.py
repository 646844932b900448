"""VGG in PyTorch: module tree, state_dict keys and initialisation of torchvision's `VGG`. The network is
the spec's plan (`VGGConfig.plan`), translated by zoo_torch.alexnet."""
from __future__ import annotations

from torch import nn

from zoo.specs.vgg import VGGConfig

from .alexnet import SequentialNet


class VGG(SequentialNet):
    def __init__(self, plan) -> None:
        super().__init__(plan)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def build(config: VGGConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return VGG(config.plan(num_classes, in_channels))
