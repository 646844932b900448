"""Network in Network in PyTorch (d2l.ai's ImageNet-size NiN)."""
from __future__ import annotations

import torch
from torch import nn

from zoo.specs.nin import NiNConfig


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int,
              mlp_layers: int) -> nn.Sequential:
    """A convolution followed by `mlp_layers` 1x1 convolutions, each with a ReLU: the paper's mlpconv."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(inplace=True)]
    for _ in range(mlp_layers):
        layers += [nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class NiN(nn.Module):
    def __init__(self, config: NiNConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels, kernel, stride, padding in config.blocks:
            layers.append(nin_block(channels, out_channels, kernel, stride, padding, config.mlp_layers))
            layers.append(nn.MaxPool2d(config.pool_kernel, config.pool_stride))
            channels = out_channels
        layers.append(nn.Dropout(config.dropout))
        self.features = nn.Sequential(*layers)
        # No dense layer: the last block has one channel per class, averaged over the whole map.
        self.classifier = nn.Sequential(
            nin_block(channels, num_classes, config.head_kernel, 1, config.head_padding, config.mlp_layers),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build(config: NiNConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return NiN(config, num_classes, in_channels)
