"""SE-ResNet in PyTorch: torchvision's ResNet (zoo_torch.resnet) with a squeeze-and-excitation module
on every block's residual branch, as `layerX.Y.se.fc1` / `se.fc2`, squeezed as the plan says."""
from __future__ import annotations

from torch import nn

from zoo.specs.senet import SEResNetConfig

from . import resnet


class SqueezeExcitation(nn.Module):
    """Hu et al.'s SE module; the same layout and names as torchvision.ops.SqueezeExcitation."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


def build(config: SEResNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return resnet.ResNet(config.plan(num_classes, in_channels), se=SqueezeExcitation)
