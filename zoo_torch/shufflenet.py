"""ShuffleNet V1 and V2 in PyTorch. V2's module tree and state_dict keys are torchvision's.

The network is the spec's plan (`ShuffleNetV1Config.plan`, `ShuffleNetV2Config.plan`): every unit's
convolutions, groups, strides, shuffles and shortcut are decided there, and only translated into modules here."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from zoo.plan import Conv
from zoo.specs.shufflenet import (Layer, Norm, Shuffle, ShuffleNetPlan, ShuffleNetV1Config, ShuffleNetV2Config,
                                  V1UnitPlan, V2UnitPlan)

BatchNorm = Callable[[int], nn.BatchNorm2d]


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of `groups` groups: (g, C/g) -> (C/g, g), so that the next group
    convolution sees channels from every group of the previous one."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def sequential(layers: tuple[Layer, ...], norm: BatchNorm) -> nn.Sequential:
    def module(layer: Layer) -> nn.Module:
        if isinstance(layer, Conv):
            return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
                             groups=layer.groups, bias=layer.bias)
        if isinstance(layer, Norm):
            return norm(layer.channels)
        return ChannelShuffle(layer.groups) if isinstance(layer, Shuffle) else nn.ReLU(inplace=True)
    return nn.Sequential(*map(module, layers))


class ShuffleV1Unit(nn.Module):
    """Figure 2 (b) and (c) of the paper: 1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv.

    Stride 1 adds the input; stride 2 concatenates a 3x3/2 average-pooled input, so the branch
    only produces the channels the unit adds.
    """

    def __init__(self, plan: V1UnitPlan, norm: BatchNorm) -> None:
        super().__init__()
        self.branch = sequential(plan.branch, norm)
        pool = plan.shortcut
        # count_include_pad=True (PyTorch's default), as in the reference code.
        self.shortcut = nn.AvgPool2d(pool.kernel, pool.stride, pool.padding) if pool else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.shortcut is None:
            return self.relu(x + self.branch(x))
        # The pooled input follows a ReLU and is non-negative already: only the branch needs one.
        return torch.cat((self.shortcut(x), self.relu(self.branch(x))), 1)


class InvertedResidual(nn.Module):
    """Figure 3 (c) and (d) of the V2 paper: stride 1 splits the channels in halves and transforms
    one; stride 2 transforms the whole input in two branches. Either way the halves are shuffled."""

    def __init__(self, plan: V2UnitPlan, norm: BatchNorm) -> None:
        super().__init__()
        self.split, self.groups = plan.split, plan.shuffle
        self.branch1 = sequential(plan.branch1, norm)  # empty when split, as torchvision's
        self.branch2 = sequential(plan.branch2, norm)

    def forward(self, x: Tensor) -> Tensor:
        if self.split:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, self.groups)


UNITS = {V1UnitPlan: ShuffleV1Unit, V2UnitPlan: InvertedResidual}


class ShuffleNet(nn.Module):
    def __init__(self, plan: ShuffleNetPlan) -> None:
        super().__init__()

        def norm(channels: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(channels, eps=plan.bn_eps, momentum=plan.bn_momentum)

        self.conv1 = sequential(plan.stem, norm)
        self.maxpool = nn.MaxPool2d(plan.pool.kernel, plan.pool.stride, plan.pool.padding)
        for name, units in zip(plan.stage_names, plan.stages):
            self.add_module(name, nn.Sequential(*(UNITS[type(unit)](unit, norm) for unit in units)))
        self.stages = plan.stage_names
        self.conv5 = sequential(plan.conv5, norm) if plan.conv5 else None
        self.fc = nn.Linear(plan.fc.in_features, plan.fc.out_features, bias=plan.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        if self.conv5 is not None:
            x = self.conv5(x)
        return self.fc(x.mean([2, 3]))


class ShuffleNetV1(ShuffleNet):
    def __init__(self, plan: ShuffleNetPlan) -> None:
        super().__init__(plan)
        # The reference code's scheme: N(0, 0.01) for the stem and the classifier, N(0, 1/fan-in
        # channels) elsewhere, BatchNorm bias a small positive 1e-4.
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01 if name.startswith("conv1") else 1.0 / m.weight.shape[1])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 1e-4)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


class ShuffleNetV2(ShuffleNet):
    """torchvision's class, name included, with PyTorch's default initialisation as torchvision keeps it."""


def build(config: ShuffleNetV1Config | ShuffleNetV2Config, *, num_classes: int, in_channels: int) -> nn.Module:
    plan = config.plan(num_classes, in_channels)
    return (ShuffleNetV1 if plan.version == 1 else ShuffleNetV2)(plan)
