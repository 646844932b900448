"""AlexNet in Flax NNX, module for module `zoo_torch.alexnet` (torchvision's `AlexNet` keys).

The network is the spec's plan (`AlexNetConfig.plan`), translated here layer by layer. The translation of
every piece of a classic plan (zoo.plan) lives here too, for LeNet, VGG, NiN and GoogLeNet."""
from __future__ import annotations

from itertools import groupby
from typing import Callable, Iterable, Iterator

from flax import nnx

from zoo.plan import (Activation, AdaptivePool, AvgPool, BatchNorm, CeilPool, Conv, Dropout, Flatten, GlobalPool,
                      Identity, Linear, LocalResponseNorm, Pool)
from zoo.specs.alexnet import AlexNetConfig

from . import layers
from .layers import ACTIVATIONS, Sequential, init_rngs
from .network import Network

LAYERS: dict[type, Callable[..., nnx.Module]] = {
    Conv: lambda c, rngs: layers.Conv2d(c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, groups=c.groups,
                                        bias=c.bias, rngs=rngs),
    Pool: lambda p, rngs: layers.MaxPool2d(p.kernel, p.stride, p.padding),
    AvgPool: lambda p, rngs: layers.AvgPool2d(p.kernel, p.stride, p.padding),
    CeilPool: lambda p, rngs: layers.MaxPool2d(p.kernel, p.stride, p.padding, ceil_mode=True),
    Linear: lambda d, rngs: layers.Linear(d.in_features, d.out_features, bias=d.bias, rngs=rngs),
    Activation: lambda a, rngs: ACTIVATIONS[a.kind](),
    Dropout: lambda d, rngs: layers.Dropout(d.p, rngs=rngs),
    # The paper's alpha multiplies the sum of squares; PyTorch's (and this layer's) is divided by the size.
    LocalResponseNorm: lambda n, rngs: layers.LocalResponseNorm(n.size, alpha=n.alpha * n.size, beta=n.beta, k=n.k),
    BatchNorm: lambda b, rngs: layers.BatchNorm2d(b.channels, eps=b.eps, momentum=b.momentum),
    AdaptivePool: lambda p, rngs: layers.AdaptiveAvgPool2d((p.size, p.size)),
    GlobalPool: lambda p, rngs: layers.AdaptiveAvgPool2d((1, 1)),
    Flatten: lambda f, rngs: layers.Flatten(),
    Identity: lambda i, rngs: layers.Identity(),
}


def layer(piece, rngs: nnx.Rngs) -> nnx.Module:
    return LAYERS[type(piece)](piece, rngs)


def modules(pieces: Iterable, rngs: nnx.Rngs, depth: int = 0, make: Callable[..., nnx.Module] = layer
            ) -> Iterator[tuple[str, nnx.Module]]:
    """(name, module) of what `pieces` make one level below their common prefix: a piece named down to this
    level is its own module, the pieces named deeper a Sequential of theirs (numbered as the plan numbers them)."""
    for key, group in groupby(pieces, key=lambda piece: piece.name.split(".")[depth]):
        group = list(group)
        if len(group) == 1 and group[0].name.count(".") == depth:
            yield key, make(group[0], rngs)
        else:
            yield key, Sequential(*(module for _, module in modules(group, rngs, depth + 1, make)))


class SequentialNet(Network):
    """A plan run in order: torchvision's containers (`features`, `avgpool`, `classifier`), with the flatten
    between them done in forward, as torchvision writes it."""

    def __init__(self, plan: Iterable, make: Callable[..., nnx.Module] = layer, *, rngs: nnx.Rngs) -> None:
        steps = []
        for name, module in modules(plan, rngs, make=make):
            setattr(self, name, None if isinstance(module, layers.Flatten) else module)
            steps.append(name)
        self.steps = tuple(steps)

    def forward(self, x):
        for name in self.steps:
            module = getattr(self, name)
            x = layers.flatten(x) if module is None else module(x)
        return x


class AlexNet(SequentialNet):
    """torchvision keeps PyTorch's default initialisation for AlexNet, which the layers already have."""


def build(config: AlexNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return AlexNet(config.plan(num_classes, in_channels), rngs=init_rngs())
