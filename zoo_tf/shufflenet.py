"""ShuffleNet V1 and V2 in Keras (NHWC); layers are named after the PyTorch modules they mirror.

The network is the spec's plan (`ShuffleNetV1Config.plan`, `ShuffleNetV2Config.plan`): every unit's
convolutions, groups, strides, shuffles and shortcut are decided there, and only translated into layers here.
"""
from __future__ import annotations

from typing import Callable

from keras import layers, ops

from zoo.plan import Conv
from zoo.specs.shufflenet import (Layer, Norm, Shuffle, ShuffleNetPlan, ShuffleNetV1Config, ShuffleNetV2Config,
                                  V1UnitPlan, V2UnitPlan)

from .layers import activation, avg_pool, batch_norm, conv2d, max_pool
from .model import functional


class ChannelShuffle(layers.Layer):
    """PyTorch's channel shuffle on NHWC maps: channels viewed as (groups, C/groups), transposed and
    flattened, so channel j*groups + i takes channel i*(C/groups) + j in both layouts."""

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, x):
        channels = x.shape[-1]
        n, h, w = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        x = ops.reshape(x, (n, h, w, self.groups, channels // self.groups))
        x = ops.swapaxes(x, 3, 4)
        return ops.reshape(x, (n, h, w, channels))

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


# (x, name) -> x through the plan's BatchNorm
BatchNorm = Callable[..., object]


def _sequence(x, pieces: tuple[Layer, ...], norm: BatchNorm):
    for layer in pieces:
        if isinstance(layer, Conv):
            x = conv2d(x, layer.out_channels, layer.kernel, stride=layer.stride, padding=layer.padding,
                       groups=layer.groups, use_bias=layer.bias, name=layer.name)
        elif isinstance(layer, Norm):
            x = norm(x, layer.name)
        elif isinstance(layer, Shuffle):
            x = ChannelShuffle(layer.groups, name=layer.name)(x)
        else:
            x = activation(x, "relu", name=layer.name)
    return x


def v1_unit(x, plan: V1UnitPlan, norm: BatchNorm):
    """Stride 1 adds the input; stride 2 concatenates the average-pooled input before the branch."""
    y = _sequence(x, plan.branch, norm)
    if plan.shortcut is None:
        return activation(layers.Add(name=f"{plan.name}.add")([x, y]), "relu", name=f"{plan.name}.relu")
    pool = plan.shortcut
    shortcut = avg_pool(x, pool.kernel, stride=pool.stride, padding=pool.padding, name=pool.name)
    y = activation(y, "relu", name=f"{plan.name}.relu")
    return layers.Concatenate(axis=-1, name=f"{plan.name}.concat")([shortcut, y])


def v2_unit(x, plan: V2UnitPlan, norm: BatchNorm):
    if plan.split:
        # torch's x.chunk(2, dim=1): the first half passes through, the second is transformed.
        half = x.shape[-1] // 2
        passed, x = x[..., :half], x[..., half:]
    else:
        passed = _sequence(x, plan.branch1, norm)
    y = layers.Concatenate(axis=-1, name=f"{plan.name}.concat")([passed, _sequence(x, plan.branch2, norm)])
    return ChannelShuffle(plan.shuffle, name=f"{plan.name}.shuffle")(y)


def network(inputs, config: ShuffleNetV1Config | ShuffleNetV2Config, num_classes: int):
    plan: ShuffleNetPlan = config.plan(num_classes, inputs.shape[-1])

    def norm(x, name: str):
        return batch_norm(x, name=name, eps=plan.bn_eps, momentum=plan.bn_momentum)

    x = _sequence(inputs, plan.stem, norm)
    x = max_pool(x, plan.pool.kernel, stride=plan.pool.stride, padding=plan.pool.padding, name=plan.pool.name)
    for unit in (unit for stage in plan.stages for unit in stage):
        x = (v1_unit if isinstance(unit, V1UnitPlan) else v2_unit)(x, unit, norm)
    x = _sequence(x, plan.conv5, norm)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return layers.Dense(plan.fc.out_features, use_bias=plan.fc.bias, name=plan.fc.name)(x)


build = functional(network)
