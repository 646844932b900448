"""AlexNet in PyTorch: module tree and state_dict keys of torchvision's `AlexNet`.

The network is the spec's plan (`AlexNetConfig.plan`), translated here layer by layer. The translation of
every piece of a classic plan (zoo.plan) lives here too, for LeNet, VGG, NiN and GoogLeNet."""
from __future__ import annotations

from collections import OrderedDict
from itertools import groupby
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from zoo.plan import (Activation, AdaptivePool, AvgPool, BatchNorm, CeilPool, Conv, Dropout, Flatten, GlobalPool,
                      Identity, Linear, LocalResponseNorm, Pool)
from zoo.specs.alexnet import AlexNetConfig

# In place, as torchvision writes its ReLUs (the same numbers, one map less to keep).
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
LAYERS: dict[type, Callable[..., nn.Module]] = {
    Conv: lambda c: nn.Conv2d(c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, groups=c.groups,
                              bias=c.bias),
    Pool: lambda p: nn.MaxPool2d(p.kernel, p.stride, p.padding),
    AvgPool: lambda p: nn.AvgPool2d(p.kernel, p.stride, p.padding),
    CeilPool: lambda p: nn.MaxPool2d(p.kernel, p.stride, p.padding, ceil_mode=True),
    Linear: lambda d: nn.Linear(d.in_features, d.out_features, bias=d.bias),
    Activation: lambda a: ACTIVATIONS[a.kind](),
    Dropout: lambda d: nn.Dropout(d.p),
    # The paper's alpha multiplies the sum of squares; PyTorch's is divided by the window size.
    LocalResponseNorm: lambda n: nn.LocalResponseNorm(n.size, alpha=n.alpha * n.size, beta=n.beta, k=n.k),
    BatchNorm: lambda b: nn.BatchNorm2d(b.channels, eps=b.eps, momentum=b.momentum),
    AdaptivePool: lambda p: nn.AdaptiveAvgPool2d((p.size, p.size)),
    GlobalPool: lambda p: nn.AdaptiveAvgPool2d((1, 1)),
    Flatten: lambda f: nn.Flatten(),
    Identity: lambda i: nn.Identity(),
}


def layer(piece) -> nn.Module:
    return LAYERS[type(piece)](piece)


def modules(pieces: Iterable, depth: int = 0, make: Callable[..., nn.Module] = layer) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) of what `pieces` make one level below their common prefix: a piece named down to this
    level is its own module, the pieces named deeper an nn.Sequential of theirs (`features.3` is the fourth
    module of `features`)."""
    for key, group in groupby(pieces, key=lambda piece: piece.name.split(".")[depth]):
        group = list(group)
        if len(group) == 1 and group[0].name.count(".") == depth:
            yield key, make(group[0])
        else:
            yield key, nn.Sequential(OrderedDict(modules(group, depth + 1, make)))


class SequentialNet(nn.Module):
    """A plan run in order: torchvision's containers (`features`, `avgpool`, `classifier`), with the flatten
    between them done in forward, as torchvision writes it."""

    def __init__(self, plan: Iterable, make: Callable[..., nn.Module] = layer) -> None:
        super().__init__()
        self.steps = []
        for name, module in modules(plan, make=make):
            setattr(self, name, None if isinstance(module, nn.Flatten) else module)
            self.steps.append(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.steps:
            module = getattr(self, name)
            x = torch.flatten(x, 1) if module is None else module(x)
        return x


class AlexNet(SequentialNet):
    """torchvision keeps PyTorch's default initialisation for AlexNet."""


def make_features(config: AlexNetConfig, in_channels: int) -> nn.Sequential:
    """The `features` Sequential alone."""
    (_, features), = modules(piece for piece in config.plan(in_channels=in_channels) if piece.name.startswith("features."))
    return features


def build(config: AlexNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return AlexNet(config.plan(num_classes, in_channels))
