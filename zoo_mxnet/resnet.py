"""ResNet in MXNet Gluon, block for block torchvision's module tree (`layer1.0.conv1`, `downsample.0`).

`attention(channels)` may return a block (SE) for each block's residual branch, before the addition.
"""
from __future__ import annotations

from typing import Callable, Optional

from mxnet.gluon import nn

from zoo.specs.resnet import ResNetConfig

from .layers import global_avg_pool, relu

Attention = Optional[Callable[[int], nn.HybridBlock]]


def _norm(config: ResNetConfig, channels: int) -> nn.BatchNorm:
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    return nn.BatchNorm(momentum=1.0 - config.bn_momentum, epsilon=config.bn_eps, in_channels=channels)


def _conv(in_channels: int, channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2D:
    return nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups,
                     use_bias=False, in_channels=in_channels)


class _Block(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        out = self.residual(F, x)
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return relu(F, out + identity)


class BasicBlock(_Block):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.HybridBlock | None, attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv1 = _conv(inplanes, planes, 3, stride)
            self.bn1 = _norm(config, planes)
            self.conv2 = _conv(planes, planes, 3)
            self.bn2 = _norm(config, planes)
            self.se = None if attention is None else attention(planes)
        self.downsample = downsample

    def residual(self, F, x):
        return self.bn2(self.conv2(relu(F, self.bn1(self.conv1(x)))))


class Bottleneck(_Block):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.HybridBlock | None, attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        width = config.bottleneck_width(planes)
        out = planes * config.expansion
        stride1, stride2 = config.bottleneck_strides(stride)
        with self.name_scope():
            self.conv1 = _conv(inplanes, width, 1, stride1)
            self.bn1 = _norm(config, width)
            self.conv2 = _conv(width, width, 3, stride2, config.groups)
            self.bn2 = _norm(config, width)
            self.conv3 = _conv(width, out, 1)
            self.bn3 = _norm(config, out)
            self.se = None if attention is None else attention(out)
        self.downsample = downsample

    def residual(self, F, x):
        out = relu(F, self.bn1(self.conv1(x)))
        out = relu(F, self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.HybridBlock):
    def __init__(self, config: ResNetConfig, num_classes: int, in_channels: int,
                 attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        block = BLOCKS[config.block]
        inplanes = config.stem_width
        self.pooled_stem = config.stem_pool is not None
        with self.name_scope():
            kernel, stride, padding = config.stem_conv
            self.conv1 = nn.Conv2D(inplanes, kernel, strides=stride, padding=padding, use_bias=False,
                                   in_channels=in_channels)
            self.bn1 = _norm(config, inplanes)
            if self.pooled_stem:
                kernel, stride, padding = config.stem_pool
                self.maxpool = nn.MaxPool2D(kernel, strides=stride, padding=padding)
            for index, (planes, blocks, stride) in enumerate(
                    zip(config.widths, config.layers, config.stage_strides()), start=1):
                out = planes * config.expansion
                downsample = None
                if stride != 1 or inplanes != out:
                    downsample = nn.HybridSequential()
                    downsample.add(_conv(inplanes, out, 1, stride), _norm(config, out))
                stage = nn.HybridSequential()
                stage.add(block(config, inplanes, planes, stride, downsample, attention))
                for _ in range(1, blocks):
                    stage.add(block(config, out, planes, 1, None, attention))
                setattr(self, f"layer{index}", stage)
                inplanes = out
            self.fc = nn.Dense(num_classes, in_units=inplanes)
        self.num_stages = len(config.layers)

    def hybrid_forward(self, F, x):
        x = relu(F, self.bn1(self.conv1(x)))
        if self.pooled_stem:
            x = self.maxpool(x)
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(F.flatten(global_avg_pool(F, x)))


def build(config: ResNetConfig, num_classes: int, in_channels: int, attention: Attention = None) -> nn.HybridBlock:
    return ResNet(config, num_classes, in_channels, attention)
