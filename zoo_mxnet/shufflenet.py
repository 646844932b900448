"""ShuffleNet V1 and V2 in MXNet Gluon, mirroring the PyTorch module tree (and so its names).

The network is the spec's plan (`ShuffleNetV1Config.plan`, `ShuffleNetV2Config.plan`): every unit's
convolutions, groups, strides, shuffles and shortcut are decided there, and only translated into blocks here.
"""
from __future__ import annotations

from typing import Callable

from mxnet.gluon import nn

from zoo.plan import Conv
from zoo.specs.shufflenet import (Layer, Norm, Shuffle, ShuffleNetPlan, ShuffleNetV1Config, ShuffleNetV2Config,
                                  V1UnitPlan, V2UnitPlan)

from .layers import global_avg_pool, relu

BatchNorm = Callable[[int], nn.BatchNorm]


def channel_shuffle(F, x, groups: int):
    """(N, C, H, W) -> (N, groups, C/groups, H, W) -> swap -> (N, C, H, W), with reshape's special
    codes (0 copies a dimension, -4 splits one, -3 merges two, -2 copies the rest) so that no input
    shape is read and the block hybridizes."""
    x = F.reshape(x, shape=(0, -4, groups, -1, -2))
    x = F.swapaxes(x, 1, 2)
    return F.reshape(x, shape=(0, -3, -2))


class ChannelShuffle(nn.HybridBlock):
    def __init__(self, groups: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups = groups

    def hybrid_forward(self, F, x):
        return channel_shuffle(F, x, self.groups)


def sequential(pieces: tuple[Layer, ...], norm: BatchNorm) -> nn.HybridSequential:
    def block(layer: Layer) -> nn.HybridBlock:
        if isinstance(layer, Conv):
            return nn.Conv2D(layer.out_channels, layer.kernel, strides=layer.stride, padding=layer.padding,
                             groups=layer.groups, use_bias=layer.bias, in_channels=layer.in_channels)
        if isinstance(layer, Norm):
            return norm(layer.channels)
        return ChannelShuffle(layer.groups) if isinstance(layer, Shuffle) else nn.Activation("relu")
    seq = nn.HybridSequential()
    seq.add(*map(block, pieces))
    return seq


class ShuffleV1Unit(nn.HybridBlock):
    def __init__(self, plan: V1UnitPlan, norm: BatchNorm, **kwargs) -> None:
        super().__init__(**kwargs)
        pool = plan.shortcut
        with self.name_scope():
            self.branch = sequential(plan.branch, norm)
            # count_include_pad=True, as PyTorch's AvgPool2d counts the zero padding.
            self.shortcut = nn.AvgPool2D(pool.kernel, pool.stride, pool.padding, count_include_pad=True) if pool else None

    def hybrid_forward(self, F, x):
        if self.shortcut is None:
            return relu(F, x + self.branch(x))
        return F.concat(self.shortcut(x), relu(F, self.branch(x)), dim=1)


class InvertedResidual(nn.HybridBlock):
    def __init__(self, plan: V2UnitPlan, norm: BatchNorm, **kwargs) -> None:
        super().__init__(**kwargs)
        self.split, self.groups = plan.split, plan.shuffle
        with self.name_scope():
            if plan.branch1:
                self.branch1 = sequential(plan.branch1, norm)
            self.branch2 = sequential(plan.branch2, norm)

    def hybrid_forward(self, F, x):
        if self.split:
            x1, x2 = F.split(x, num_outputs=2, axis=1)
            out = F.concat(x1, self.branch2(x2), dim=1)
        else:
            out = F.concat(self.branch1(x), self.branch2(x), dim=1)
        return channel_shuffle(F, out, self.groups)


UNITS = {V1UnitPlan: ShuffleV1Unit, V2UnitPlan: InvertedResidual}


class ShuffleNet(nn.HybridBlock):
    def __init__(self, plan: ShuffleNetPlan, **kwargs) -> None:
        super().__init__(**kwargs)

        def norm(channels: int) -> nn.BatchNorm:
            # Gluon's momentum weighs the old statistic, PyTorch's the new one.
            return nn.BatchNorm(momentum=1.0 - plan.bn_momentum, epsilon=plan.bn_eps, in_channels=channels)

        self.stages = plan.stage_names
        with self.name_scope():
            self.conv1 = sequential(plan.stem, norm)
            self.maxpool = nn.MaxPool2D(plan.pool.kernel, plan.pool.stride, plan.pool.padding)
            for name, units in zip(plan.stage_names, plan.stages):
                stage = nn.HybridSequential()
                stage.add(*(UNITS[type(unit)](unit, norm) for unit in units))
                setattr(self, name, stage)
            self.conv5 = sequential(plan.conv5, norm) if plan.conv5 else None
            self.fc = nn.Dense(plan.fc.out_features, use_bias=plan.fc.bias, in_units=plan.fc.in_features)

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        if self.conv5 is not None:
            x = self.conv5(x)
        return self.fc(F.flatten(global_avg_pool(F, x)))


def build(config: ShuffleNetV1Config | ShuffleNetV2Config, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return ShuffleNet(config.plan(num_classes, in_channels))
