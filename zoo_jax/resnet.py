"""ResNet in Flax NNX, module for module `zoo_torch.resnet` (torchvision's tree, so its checkpoints load).
`attention` lets a family put a module (SE) on each block's residual branch."""
from __future__ import annotations

from typing import Callable, Optional

import jax.numpy as jnp
from flax import nnx

from zoo.specs.resnet import ResNetConfig

from . import Network
from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU, Sequential, fans,
                     flatten, normal)

# (channels, *, rngs) -> module applied to the residual branch before the addition (e.g. squeeze-and-excitation)
Attention = Optional[Callable[..., nnx.Module]]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, *, rngs: nnx.Rngs) -> Conv2d:
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False, rngs=rngs)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, *, rngs: nnx.Rngs) -> Conv2d:
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=False, rngs=rngs)


def _norm(config: ResNetConfig) -> Callable[[int], BatchNorm2d]:
    return lambda channels: BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


class _Block(nnx.Module):
    """A residual block: its `residual` branch, squeeze-and-excitation if any, plus the shortcut."""

    def __call__(self, x):
        out = self.residual(x)
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class BasicBlock(_Block):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nnx.Module | None, attention: Attention = None, *, rngs: nnx.Rngs) -> None:
        norm = _norm(config)
        self.conv1 = conv3x3(inplanes, planes, stride, rngs=rngs)
        self.bn1 = norm(planes)
        self.relu = ReLU()
        self.conv2 = conv3x3(planes, planes, rngs=rngs)
        self.bn2 = norm(planes)
        self.se = None if attention is None else attention(planes, rngs=rngs)
        self.downsample = downsample

    def residual(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(_Block):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nnx.Module | None, attention: Attention = None, *, rngs: nnx.Rngs) -> None:
        norm = _norm(config)
        width = config.bottleneck_width(planes)
        out = planes * config.expansion
        stride1, stride2 = config.bottleneck_strides(stride)
        self.conv1 = conv1x1(inplanes, width, stride1, rngs=rngs)
        self.bn1 = norm(width)
        self.conv2 = conv3x3(width, width, stride2, config.groups, rngs=rngs)
        self.bn2 = norm(width)
        self.conv3 = conv1x1(width, out, rngs=rngs)
        self.bn3 = norm(out)
        self.relu = ReLU()
        self.se = None if attention is None else attention(out, rngs=rngs)
        self.downsample = downsample

    def residual(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(Network):
    def __init__(self, config: ResNetConfig, num_classes: int, in_channels: int,
                 attention: Attention = None, *, rngs: nnx.Rngs) -> None:
        block = BLOCKS[config.block]
        norm = _norm(config)
        inplanes = config.stem_width
        kernel, stride, padding = config.stem_conv
        self.conv1 = Conv2d(in_channels, inplanes, kernel, stride=stride, padding=padding, bias=False, rngs=rngs)
        self.bn1 = norm(inplanes)
        self.relu = ReLU()
        # The CIFAR stem has no pool; an Identity keeps torchvision's module tree and forward.
        self.maxpool = MaxPool2d(*config.stem_pool) if config.stem_pool else Identity()
        for index, (planes, blocks, stride) in enumerate(
                zip(config.widths, config.layers, config.stage_strides()), start=1):
            out = planes * config.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                downsample = Sequential(conv1x1(inplanes, out, stride, rngs=rngs), norm(out))
            layers = [block(config, inplanes, planes, stride, downsample, attention, rngs=rngs)]
            layers += [block(config, out, planes, 1, None, attention, rngs=rngs) for _ in range(1, blocks)]
            setattr(self, f"layer{index}", Sequential(*layers))
            inplanes = out
        self.num_stages = len(config.layers)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(inplanes, num_classes, rngs=rngs)
        _initialize(self, config, rngs)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(flatten(self.avgpool(x)))


def _initialize(model: ResNet, config: ResNetConfig, rngs: nnx.Rngs) -> None:
    # torchvision's: He init for a ReLU net, fan_out (PyTorch's fan_out ignores groups); BN is built as
    # the identity already; fc keeps Linear's default.
    for _, m in nnx.iter_graph(model):
        if isinstance(m, Conv2d):
            _, fan_out = fans(m.kernel)
            m.kernel.value = normal(rngs, m.kernel.value.shape, (2.0 / fan_out) ** 0.5)
    if config.zero_init_residual:
        for _, m in nnx.iter_graph(model):
            if isinstance(m, Bottleneck):
                m.bn3.scale.value = jnp.zeros_like(m.bn3.scale.value)
            elif isinstance(m, BasicBlock):
                m.bn2.scale.value = jnp.zeros_like(m.bn2.scale.value)


def build(config: ResNetConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs,
          attention: Attention = None) -> Network:
    return ResNet(config, num_classes, in_channels, attention, rngs=rngs)
