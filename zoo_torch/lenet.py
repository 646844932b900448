"""LeNet-5 in PyTorch."""
from __future__ import annotations

from torch import nn

from zoo.specs.lenet import LeNetConfig

ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet(nn.Module):
    def __init__(self, config: LeNetConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        act, pool = ACTIVATIONS[config.activation], POOLS[config.pooling]
        c1, c2 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, config.kernel_size, padding=config.padding), act(), pool(2),
            nn.Conv2d(c1, c2, config.kernel_size), act(), pool(2),
        )
        layers: list[nn.Module] = []
        width = c2 * config.feature_size() ** 2
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), act()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def build(config: LeNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return LeNet(config, num_classes, in_channels)
