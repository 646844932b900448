"""GoogLeNet in PyTorch: module tree, state_dict keys, outputs and initialisation of torchvision's `GoogLeNet`."""
from __future__ import annotations

from collections import namedtuple

import torch
from torch import nn

from zoo.specs.googlenet import STEMS, GoogLeNetConfig

# What torchvision returns in training mode with the auxiliary classifiers on.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, config: GoogLeNetConfig, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=config.bn_eps, momentum=config.bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...], config: GoogLeNetConfig) -> None:
        super().__init__()
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = widths
        self.branch1 = BasicConv2d(in_channels, ch1x1, config, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, config, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, config, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, config, kernel_size=1),
            # The paper's 5x5 convolution is a 3x3 one in torchvision (pytorch/vision#906); kept so that
            # torchvision's checkpoints load and the parameter count is torchvision's.
            BasicConv2d(ch5x5red, ch5x5, config, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, config, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def inception_width(widths: tuple[int, ...]) -> int:
    return widths[0] + widths[2] + widths[4] + widths[5]


class InceptionAux(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, config: GoogLeNetConfig) -> None:
        super().__init__()
        self.pool_size = config.aux_pool
        self.conv = BasicConv2d(in_channels, config.aux_channels, config, kernel_size=1)
        self.fc1 = nn.Linear(config.aux_channels * config.aux_pool ** 2, config.aux_hidden)
        self.fc2 = nn.Linear(config.aux_hidden, num_classes)
        self.dropout = nn.Dropout(config.dropout_aux)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(x, (self.pool_size, self.pool_size))
        x = torch.flatten(self.conv(x), 1)
        x = self.dropout(torch.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    def __init__(self, config: GoogLeNetConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        if config.transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB images and needs in_channels=3, got {in_channels}")
        self.aux_logits = config.aux_logits
        self.transform_input = config.transform_input
        self.input_transform = config.input_transform()
        stem = STEMS[config.stem]
        c1, c2, c3 = config.stem_channels
        pools = {name: (kernel, stride) for name, kernel, stride in config.pools()}

        def pool(name: str) -> nn.Module:
            if name not in pools:
                return nn.Identity()
            return nn.MaxPool2d(pools[name][0], stride=pools[name][1], ceil_mode=True)

        self.conv1 = BasicConv2d(in_channels, c1, config, kernel_size=stem["kernel"], stride=stem["stride"],
                                 padding=stem["padding"])
        self.maxpool1 = pool("maxpool1")
        self.conv2 = BasicConv2d(c1, c2, config, kernel_size=1)
        self.conv3 = BasicConv2d(c2, c3, config, kernel_size=3, padding=1)
        self.maxpool2 = pool("maxpool2")
        # Attribute order is torchvision's, so state_dict keys come in the same order.
        self.stages: list[list[str]] = config.module_names()
        channels = c3
        aux_inputs = []
        for s, (names, stage) in enumerate(zip(self.stages, config.inception)):
            for i, (name, widths) in enumerate(zip(names, stage)):
                setattr(self, name, Inception(channels, widths, config))
                channels = inception_width(widths)
                if s == 1 and i in (0, 3):
                    aux_inputs.append(channels)
            if s < 2:
                setattr(self, f"maxpool{3 + s}", pool(f"maxpool{3 + s}"))
        self.aux1_after, self.aux2_after = self.stages[1][0], (self.stages[1][3] if len(self.stages[1]) > 3 else None)
        if config.aux_logits:
            self.aux1 = InceptionAux(aux_inputs[0], num_classes, config)
            self.aux2 = InceptionAux(aux_inputs[1], num_classes, config)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # From ImageNet mean/std normalisation to the (x - 0.5) / 0.5 scale the ported weights expect.
        return torch.cat([x[:, c:c + 1] * s + o for c, (s, o) in enumerate(zip(*self.input_transform))], 1)

    def forward(self, x: torch.Tensor):
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        aux1 = aux2 = None
        for s, names in enumerate(self.stages):
            for name in names:
                x = getattr(self, name)(x)
                if self.aux1 is not None and self.training:
                    if name == self.aux1_after:
                        aux1 = self.aux1(x)
                    elif name == self.aux2_after:
                        aux2 = self.aux2(x)
            if s < 2:
                x = getattr(self, f"maxpool{3 + s}")(x)
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        x = self.fc(x)
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def build(config: GoogLeNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return GoogLeNet(config, num_classes, in_channels)
