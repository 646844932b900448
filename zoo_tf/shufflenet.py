"""ShuffleNet V1 and V2 in Keras (NHWC); layers are named after the PyTorch modules they mirror."""
from __future__ import annotations

from keras import layers, ops

from zoo.specs.shufflenet import ShuffleNetV1Config, ShuffleNetV2Config, V1Unit

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


def _bn(x, config, name: str):
    return batch_norm(x, name=name, eps=config.bn_eps, momentum=config.bn_momentum)


def _stem(x, channels: int, config):
    x = conv2d(x, channels, 3, stride=2, padding=1, use_bias=False, name="conv1.0")
    x = activation(_bn(x, config, "conv1.1"), "relu", name="conv1.2")
    return max_pool(x, 3, stride=2, padding=1, name="maxpool")


def _head(x, num_classes: int, use_bias: bool = True):
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return layers.Dense(num_classes, use_bias=use_bias, name="fc")(x)


# ShuffleNet V1 ---------------------------------------------------------------------------------

def _pointwise(x, filters: int, groups: int, name: str):
    return conv2d(x, filters, 1, groups=groups, use_bias=False, name=name)


def _v1_unit(x, unit: V1Unit, config: ShuffleNetV1Config):
    p = f"stage{unit.stage}.{unit.index}"
    mid = unit.mid_channels
    y = _pointwise(x, mid, unit.first_groups, f"{p}.branch.0")
    y = activation(_bn(y, config, f"{p}.branch.1"), "relu", name=f"{p}.branch.2")
    y = ChannelShuffle(unit.groups, name=f"{p}.branch.3")(y)
    y = conv2d(y, mid, 3, stride=unit.stride, padding=1, groups=mid, use_bias=False, name=f"{p}.branch.4")
    y = _bn(y, config, f"{p}.branch.5")
    y = _pointwise(y, unit.branch_channels, unit.groups, f"{p}.branch.6")
    y = _bn(y, config, f"{p}.branch.7")
    if unit.stride == 1:
        return activation(layers.Add(name=f"{p}.add")([x, y]), "relu", name=f"{p}.relu")
    shortcut = avg_pool(x, 3, stride=2, padding=1, name=f"{p}.shortcut")
    y = activation(y, "relu", name=f"{p}.relu")
    return layers.Concatenate(axis=-1, name=f"{p}.concat")([shortcut, y])


def build_v1(inputs, config: ShuffleNetV1Config, num_classes: int):
    x = _stem(inputs, config.stem_width(), config)
    for unit in config.units():
        x = _v1_unit(x, unit, config)
    return _head(x, num_classes, use_bias=config.fc_bias)


# ShuffleNet V2 ---------------------------------------------------------------------------------

def _v2_unit(x, out: int, stride: int, config: ShuffleNetV2Config, p: str):
    half = out // 2
    if stride == 1:
        # torch's x.chunk(2, dim=1): the first half passes through, the second is transformed.
        passed, x = x[..., :half], x[..., half:]
    else:
        inp = x.shape[-1]
        b = f"{p}.branch1"
        passed = conv2d(x, inp, 3, stride=stride, padding=1, groups=inp, use_bias=False, name=f"{b}.0")
        passed = _bn(passed, config, f"{b}.1")
        passed = conv2d(passed, half, 1, use_bias=False, name=f"{b}.2")
        passed = activation(_bn(passed, config, f"{b}.3"), "relu", name=f"{b}.4")
    b = f"{p}.branch2"
    y = conv2d(x, half, 1, use_bias=False, name=f"{b}.0")
    y = activation(_bn(y, config, f"{b}.1"), "relu", name=f"{b}.2")
    y = conv2d(y, half, 3, stride=stride, padding=1, groups=half, use_bias=False, name=f"{b}.3")
    y = _bn(y, config, f"{b}.4")
    y = conv2d(y, half, 1, use_bias=False, name=f"{b}.5")
    y = activation(_bn(y, config, f"{b}.6"), "relu", name=f"{b}.7")
    y = layers.Concatenate(axis=-1, name=f"{p}.concat")([passed, y])
    return ChannelShuffle(2, name=f"{p}.shuffle")(y)


def build_v2(inputs, config: ShuffleNetV2Config, num_classes: int):
    channels = config.stages_out_channels
    x = _stem(inputs, channels[0], config)
    for stage, (repeats, out) in enumerate(zip(config.stages_repeats, config.stage_widths()), start=2):
        for index in range(repeats):
            x = _v2_unit(x, out, 2 if index == 0 else 1, config, f"stage{stage}.{index}")
    x = conv2d(x, channels[-1], 1, use_bias=False, name="conv5.0")
    x = activation(_bn(x, config, "conv5.1"), "relu", name="conv5.2")
    return _head(x, num_classes)


def network(inputs, config: ShuffleNetV1Config | ShuffleNetV2Config, num_classes: int):
    if isinstance(config, ShuffleNetV1Config):
        return build_v1(inputs, config, num_classes)
    if isinstance(config, ShuffleNetV2Config):
        return build_v2(inputs, config, num_classes)
    raise TypeError(f"expected a ShuffleNetV1Config or ShuffleNetV2Config, got {type(config).__name__}")


build = functional(network)
