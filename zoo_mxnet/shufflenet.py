"""ShuffleNet V1 and V2 in MXNet Gluon, mirroring the PyTorch module tree (and so its names)."""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.shufflenet import ShuffleNetV1Config, ShuffleNetV2Config, V1Unit

from .layers import global_avg_pool, relu


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


def _bn(channels: int, config) -> nn.BatchNorm:
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    return nn.BatchNorm(momentum=1.0 - config.bn_momentum, epsilon=config.bn_eps, in_channels=channels)


def _conv(in_channels: int, channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2D:
    return nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups,
                     use_bias=False, in_channels=in_channels)


def _stem(in_channels: int, channels: int, config) -> nn.HybridSequential:
    stem = nn.HybridSequential()
    stem.add(_conv(in_channels, channels, 3, 2), _bn(channels, config), nn.Activation("relu"))
    return stem


# ShuffleNet V1 ---------------------------------------------------------------------------------

class ShuffleV1Unit(nn.HybridBlock):
    def __init__(self, unit: V1Unit, config: ShuffleNetV1Config, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride = unit.stride
        mid = unit.mid_channels
        with self.name_scope():
            self.branch = nn.HybridSequential()
            self.branch.add(
                _conv(unit.in_channels, mid, 1, groups=unit.first_groups),
                _bn(mid, config),
                nn.Activation("relu"),
                ChannelShuffle(unit.groups),
                _conv(mid, mid, 3, unit.stride, groups=mid),
                _bn(mid, config),
                _conv(mid, unit.branch_channels, 1, groups=unit.groups),
                _bn(unit.branch_channels, config),
            )
            if unit.stride == 2:
                # count_include_pad=True, as PyTorch's AvgPool2d counts the zero padding.
                self.shortcut = nn.AvgPool2D(3, 2, 1, count_include_pad=True)

    def hybrid_forward(self, F, x):
        if self.stride == 1:
            return relu(F, x + self.branch(x))
        return F.concat(self.shortcut(x), relu(F, self.branch(x)), dim=1)


class ShuffleNetV1(nn.HybridBlock):
    def __init__(self, config: ShuffleNetV1Config, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        units = config.units()
        self.stages = sorted({u.stage for u in units})
        with self.name_scope():
            self.conv1 = _stem(in_channels, config.stem_width(), config)
            self.maxpool = nn.MaxPool2D(3, 2, 1)
            for stage in self.stages:
                seq = nn.HybridSequential()
                seq.add(*(ShuffleV1Unit(u, config) for u in units if u.stage == stage))
                setattr(self, f"stage{stage}", seq)
            self.fc = nn.Dense(num_classes, use_bias=config.fc_bias, in_units=units[-1].out_channels)

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, f"stage{stage}")(x)
        return self.fc(F.flatten(global_avg_pool(F, x)))


# ShuffleNet V2 ---------------------------------------------------------------------------------

class InvertedResidual(nn.HybridBlock):
    def __init__(self, inp: int, oup: int, stride: int, config: ShuffleNetV2Config, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride = stride
        half = oup // 2
        with self.name_scope():
            if stride > 1:
                self.branch1 = nn.HybridSequential()
                self.branch1.add(
                    _conv(inp, inp, 3, stride, groups=inp), _bn(inp, config),
                    _conv(inp, half, 1), _bn(half, config), nn.Activation("relu"),
                )
            self.branch2 = nn.HybridSequential()
            self.branch2.add(
                _conv(inp if stride > 1 else half, half, 1), _bn(half, config), nn.Activation("relu"),
                _conv(half, half, 3, stride, groups=half), _bn(half, config),
                _conv(half, half, 1), _bn(half, config), nn.Activation("relu"),
            )

    def hybrid_forward(self, F, x):
        if self.stride == 1:
            x1, x2 = F.split(x, num_outputs=2, axis=1)
            out = F.concat(x1, self.branch2(x2), dim=1)
        else:
            out = F.concat(self.branch1(x), self.branch2(x), dim=1)
        return channel_shuffle(F, out, 2)


class ShuffleNetV2(nn.HybridBlock):
    def __init__(self, config: ShuffleNetV2Config, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        channels = config.stages_out_channels
        self.stages = []
        with self.name_scope():
            self.conv1 = _stem(in_channels, channels[0], config)
            self.maxpool = nn.MaxPool2D(3, 2, 1)
            width = channels[0]
            for stage, (repeats, out) in enumerate(zip(config.stages_repeats, config.stage_widths()), start=2):
                seq = nn.HybridSequential()
                seq.add(InvertedResidual(width, out, 2, config))
                seq.add(*(InvertedResidual(out, out, 1, config) for _ in range(repeats - 1)))
                setattr(self, f"stage{stage}", seq)
                self.stages.append(stage)
                width = out
            self.conv5 = nn.HybridSequential()
            self.conv5.add(_conv(width, channels[-1], 1), _bn(channels[-1], config), nn.Activation("relu"))
            self.fc = nn.Dense(num_classes, in_units=channels[-1])

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, f"stage{stage}")(x)
        x = self.conv5(x)
        return self.fc(F.flatten(global_avg_pool(F, x)))


def build(config: ShuffleNetV1Config | ShuffleNetV2Config, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    if isinstance(config, ShuffleNetV1Config):
        return ShuffleNetV1(config, num_classes, in_channels)
    if isinstance(config, ShuffleNetV2Config):
        return ShuffleNetV2(config, num_classes, in_channels)
    raise TypeError(f"expected a ShuffleNetV1Config or ShuffleNetV2Config, got {type(config).__name__}")
