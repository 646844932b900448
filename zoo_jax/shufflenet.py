"""ShuffleNet V1 and V2 in Flax NNX, module for module `zoo_torch.shufflenet` (V2: torchvision's tree).

The network is the spec's plan (`ShuffleNetV1Config.plan`, `ShuffleNetV2Config.plan`): every unit's
convolutions, groups, strides, shuffles and shortcut are decided there, and only translated into modules here."""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from flax import nnx

from zoo.plan import Conv
from zoo.specs.shufflenet import (Layer, Norm, Shuffle, ShuffleNetPlan, ShuffleNetV1Config, ShuffleNetV2Config,
                                  V1UnitPlan, V2UnitPlan)

from .layers import (AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, Linear, MaxPool2d, ReLU, Sequential,
                     channel_shuffle, fill, init_rngs, normal)
from .network import Network, named_modules

BatchNorm = Callable[[int], BatchNorm2d]


def sequential(pieces: tuple[Layer, ...], norm: BatchNorm, rngs: nnx.Rngs) -> Sequential:
    def module(layer: Layer) -> nnx.Module:
        if isinstance(layer, Conv):
            return Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
                          groups=layer.groups, bias=layer.bias, rngs=rngs)
        if isinstance(layer, Norm):
            return norm(layer.channels)
        return ChannelShuffle(layer.groups) if isinstance(layer, Shuffle) else ReLU()
    return Sequential(*map(module, pieces))


class ShuffleV1Unit(nnx.Module):
    """Figure 2 (b) and (c) of the paper: 1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv.

    Stride 1 adds the input; stride 2 concatenates a 3x3/2 average-pooled input.
    """

    def __init__(self, plan: V1UnitPlan, norm: BatchNorm, *, rngs: nnx.Rngs) -> None:
        self.branch = sequential(plan.branch, norm, rngs)
        pool = plan.shortcut
        # count_include_pad=True (PyTorch's default), as in the reference code.
        self.shortcut = AvgPool2d(pool.kernel, pool.stride, pool.padding) if pool else None
        self.relu = ReLU()

    def __call__(self, x):
        if self.shortcut is None:
            return self.relu(x + self.branch(x))
        # The pooled input follows a ReLU and is non-negative already: only the branch needs one.
        return jnp.concatenate((self.shortcut(x), self.relu(self.branch(x))), axis=-1)


class InvertedResidual(nnx.Module):
    """Figure 3 (c) and (d) of the V2 paper: stride 1 splits the channels in halves and transforms
    one; stride 2 transforms the whole input in two branches. Either way the halves are shuffled."""

    def __init__(self, plan: V2UnitPlan, norm: BatchNorm, *, rngs: nnx.Rngs) -> None:
        self.split, self.groups = plan.split, plan.shuffle
        self.branch1 = sequential(plan.branch1, norm, rngs)  # empty when split, as torchvision's
        self.branch2 = sequential(plan.branch2, norm, rngs)

    def __call__(self, x):
        if self.split:
            x1, x2 = jnp.split(x, 2, axis=-1)
            out = jnp.concatenate((x1, self.branch2(x2)), axis=-1)
        else:
            out = jnp.concatenate((self.branch1(x), self.branch2(x)), axis=-1)
        return channel_shuffle(out, self.groups)


UNITS = {V1UnitPlan: ShuffleV1Unit, V2UnitPlan: InvertedResidual}


class ShuffleNet(Network):
    def __init__(self, plan: ShuffleNetPlan, *, rngs: nnx.Rngs) -> None:
        def norm(channels: int) -> BatchNorm2d:
            return BatchNorm2d(channels, eps=plan.bn_eps, momentum=plan.bn_momentum)

        self.conv1 = sequential(plan.stem, norm, rngs)
        self.maxpool = MaxPool2d(plan.pool.kernel, plan.pool.stride, plan.pool.padding)
        for name, units in zip(plan.stage_names, plan.stages):
            setattr(self, name, Sequential(*(UNITS[type(unit)](unit, norm, rngs=rngs) for unit in units)))
        self.stages = plan.stage_names
        self.conv5 = sequential(plan.conv5, norm, rngs) if plan.conv5 else None
        self.fc = Linear(plan.fc.in_features, plan.fc.out_features, bias=plan.fc.bias, rngs=rngs)
        if plan.version == 1:
            _megvii_init(self, rngs)
        # V2: torchvision keeps PyTorch's default initialisation (the layers' own).

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        if self.conv5 is not None:
            x = self.conv5(x)
        return self.fc(x.mean((1, 2)))


def _megvii_init(model: ShuffleNet, rngs: nnx.Rngs) -> None:
    # The reference code's scheme: N(0, 0.01) for the stem and the classifier, N(0, 1/fan-in
    # channels) elsewhere, BatchNorm bias a small positive 1e-4.
    for name, _, m in named_modules(model):
        if isinstance(m, Conv2d):
            std = 0.01 if name.startswith("conv1") else 1.0 / m.kernel[...].shape[2]
            m.kernel.set_value(normal(rngs, m.kernel[...].shape, std))
        elif isinstance(m, BatchNorm2d):
            fill(m.bias, 1e-4)
        elif isinstance(m, Linear):
            m.kernel.set_value(normal(rngs, m.kernel[...].shape, 0.01))
            if m.bias is not None:
                fill(m.bias, 0.0)


def build(config: ShuffleNetV1Config | ShuffleNetV2Config, *, num_classes: int, in_channels: int) -> Network:
    return ShuffleNet(config.plan(num_classes, in_channels), rngs=init_rngs())
