"""GoogLeNet in PyTorch: module tree, state_dict keys, outputs and initialisation of torchvision's `GoogLeNet`.
The network is the spec's plan (`GoogLeNetConfig.plan`), translated here module by module."""
from __future__ import annotations

from collections import namedtuple

import torch
from torch import nn

from zoo.specs.googlenet import AuxHead, BasicConv, GoogLeNetConfig, GoogLeNetPlan, InceptionModule

from .alexnet import SequentialNet, layer, modules

# What torchvision returns in training mode with the auxiliary classifiers on.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm, ReLU."""

    def __init__(self, plan: BasicConv) -> None:
        super().__init__()
        self.conv = layer(plan.conv)
        self.bn = layer(plan.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, plan: InceptionModule) -> None:
        super().__init__()
        for name, module in modules(plan.parts, depth=1, make=make):
            setattr(self, name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], 1)


class InceptionAux(nn.Module):
    def __init__(self, plan: AuxHead) -> None:
        super().__init__()
        self.pool_size = plan.pool.size
        self.conv = BasicConv2d(plan.conv)
        self.fc1 = layer(plan.fc1)
        self.fc2 = layer(plan.fc2)
        self.dropout = layer(plan.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(x, (self.pool_size, self.pool_size))
        x = torch.flatten(self.conv(x), 1)
        x = self.dropout(torch.relu(self.fc1(x)))
        return self.fc2(x)


def make(piece) -> nn.Module:
    return {BasicConv: BasicConv2d, InceptionModule: Inception, AuxHead: InceptionAux}.get(type(piece), layer)(piece)


class GoogLeNet(SequentialNet):
    def __init__(self, plan: GoogLeNetPlan) -> None:
        super().__init__(plan, make)
        self.aux_logits = bool(plan.aux)
        self.transform = plan.transform
        # The auxiliary heads read the output of their module beside the main path, in training only.
        self.aux_after = {aux.after: aux.name for aux in plan.aux}
        self.steps = [name for name in self.steps if name not in self.aux_after.values()]
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # From ImageNet mean/std normalisation to the (x - 0.5) / 0.5 scale the ported weights expect.
        return torch.cat([x[:, c:c + 1] * s + o for c, (s, o) in enumerate(zip(*self.transform))], 1)

    def forward(self, x: torch.Tensor):
        if self.transform is not None:
            x = self._transform_input(x)
        aux = []
        for name in self.steps:
            module = getattr(self, name)
            x = torch.flatten(x, 1) if module is None else module(x)
            if name in self.aux_after and self.training:
                aux.append(getattr(self, self.aux_after[name])(x))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, *reversed(aux))
        return x


def build(config: GoogLeNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return GoogLeNet(config.plan(num_classes, in_channels))
