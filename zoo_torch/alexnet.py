"""AlexNet in PyTorch: module tree and state_dict keys of torchvision's `AlexNet`."""
from __future__ import annotations

import torch
from torch import nn

from zoo.specs.alexnet import AlexNetConfig


def make_features(config: AlexNetConfig, in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for kind, *index in config.layers():
        if kind == "conv":
            i = index[0]
            layers.append(nn.Conv2d(channels, config.channels[i], config.kernel_sizes[i], config.strides[i],
                                    config.paddings[i], groups=config.groups[i]))
            channels = config.channels[i]
        elif kind == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif kind == "lrn":
            # The paper's alpha multiplies the sum of squares; PyTorch's is divided by the window size.
            layers.append(nn.LocalResponseNorm(config.lrn_size, alpha=config.lrn_alpha * config.lrn_size,
                                               beta=config.lrn_beta, k=config.lrn_k))
        else:
            layers.append(nn.MaxPool2d(config.pool_kernel, config.pool_stride))
    return nn.Sequential(*layers)


class AlexNet(nn.Module):
    def __init__(self, config: AlexNetConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.features = make_features(config, in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d((config.pool_size, config.pool_size))
        layers: list[nn.Module] = []
        width = config.channels[-1] * config.pool_size ** 2
        for hidden in config.hidden:
            layers += [nn.Dropout(config.dropout), nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)
        # torchvision keeps PyTorch's default initialisation for AlexNet.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def build(config: AlexNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return AlexNet(config, num_classes, in_channels)
