"""AlexNet in MXNet Gluon, blocks mirroring torchvision's module tree.

The network is the spec's plan (`AlexNetConfig.plan`), translated here layer by layer. The translation of
every piece of a classic plan (zoo.plan) lives here too, for LeNet, VGG, NiN and GoogLeNet."""
from __future__ import annotations

from itertools import groupby
from typing import Callable, Iterable, Iterator

from mxnet.gluon import nn

from zoo.plan import (Activation, AdaptivePool, AvgPool, BatchNorm, CeilPool, Conv, Dropout, Flatten, GlobalPool,
                      Identity, Linear, LocalResponseNorm, Pool)
from zoo.specs.alexnet import AlexNetConfig

from .layers import AdaptiveAvgPool2D, CeilMaxPool2D, LocalResponseNorm as LRN

LAYERS: dict[type, Callable[..., nn.HybridBlock]] = {
    Conv: lambda c: nn.Conv2D(c.out_channels, c.kernel, strides=c.stride, padding=c.padding, groups=c.groups,
                              use_bias=c.bias, in_channels=c.in_channels),
    Pool: lambda p: nn.MaxPool2D(p.kernel, p.stride, p.padding),
    AvgPool: lambda p: nn.AvgPool2D(p.kernel, p.stride, p.padding),
    # With stride 1 ceil_mode changes nothing; MXNet's max pool ignores its padding as -inf would.
    CeilPool: lambda p: CeilMaxPool2D(p.kernel, p.stride) if p.stride > 1 else nn.MaxPool2D(p.kernel, p.stride, p.padding),
    Linear: lambda d: nn.Dense(d.out_features, use_bias=d.bias, in_units=d.in_features),
    Activation: lambda a: nn.Activation(a.kind),
    Dropout: lambda d: nn.Dropout(d.p),
    LocalResponseNorm: lambda n: LRN(n.size, n.alpha, n.beta, n.k),
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    BatchNorm: lambda b: nn.BatchNorm(momentum=1.0 - b.momentum, epsilon=b.eps, in_channels=b.channels),
    AdaptivePool: lambda p: AdaptiveAvgPool2D(p.size),
    GlobalPool: lambda p: nn.GlobalAvgPool2D(),
    Flatten: lambda f: nn.Flatten(),
    Identity: lambda i: nn.HybridSequential(),  # empty: the identity
}


def layer(piece) -> nn.HybridBlock:
    return LAYERS[type(piece)](piece)


def blocks(pieces: Iterable, depth: int = 0, make: Callable[..., nn.HybridBlock] = layer
           ) -> Iterator[tuple[str, nn.HybridBlock]]:
    """(name, block) of what `pieces` make one level below their common prefix: a piece named down to this
    level is its own block, the pieces named deeper a HybridSequential of theirs (torchvision's Sequential)."""
    for key, group in groupby(pieces, key=lambda piece: piece.name.split(".")[depth]):
        group = list(group)
        if len(group) == 1 and group[0].name.count(".") == depth:
            yield key, make(group[0])
        else:
            sequential = nn.HybridSequential()
            sequential.add(*(block for _, block in blocks(group, depth + 1, make)))
            yield key, sequential


class SequentialNet(nn.HybridBlock):
    """A plan run in order: torchvision's containers as blocks. The flatten between them is left out: Gluon's
    Dense flattens NCHW as torch.flatten does."""

    def __init__(self, plan: Iterable, make: Callable[..., nn.HybridBlock] = layer, **kwargs) -> None:
        super().__init__(**kwargs)
        self._steps = []
        with self.name_scope():
            for name, block in blocks(plan, make=make):
                setattr(self, name, None if isinstance(block, nn.Flatten) else block)
                self._steps.append(name)

    def hybrid_forward(self, F, x):
        for name in self._steps:
            block = getattr(self, name)
            if block is not None:
                x = block(x)
        return x


class AlexNet(SequentialNet):
    pass


def build(config: AlexNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return AlexNet(config.plan(num_classes, in_channels))
