"""VGG in PyTorch: module tree, state_dict keys and initialisation of torchvision's `VGG`."""
from __future__ import annotations

import torch
from torch import nn

from zoo.specs.vgg import M, VGGConfig


def make_features(config: VGGConfig, in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for value in config.layers:
        if value == M:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, value, kernel_size=3, padding=1))
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(value, eps=config.bn_eps, momentum=config.bn_momentum))
        layers.append(nn.ReLU(inplace=True))
        channels = value
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, config: VGGConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.features = make_features(config, in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d((config.pool_size, config.pool_size))
        layers: list[nn.Module] = []
        width = config.out_channels * config.pool_size ** 2
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def build(config: VGGConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return VGG(config, num_classes, in_channels)
