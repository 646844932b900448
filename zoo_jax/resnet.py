"""ResNet in Flax NNX, module for module `zoo_torch.resnet` (torchvision's tree, so its checkpoints load).
`attention` lets a family put a module (SE) on each block's residual branch.

`preactivation=True` builds ResNet v2's pre-activation blocks; `conv_bias` and `input_norm` the
variants Keras and Gluon build (zoo.specs.resnet says who builds which)."""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from zoo.specs.resnet import ResNetConfig

from . import Network
from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Layer, Linear, MaxPool2d, ReLU, Sequential,
                     fans, fill, flatten, normal, on_device)

# (channels, *, rngs) -> module applied to the residual branch before the addition (e.g. squeeze-and-excitation)
Attention = Callable[..., nnx.Module] | None


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, bias: bool = False, *,
            rngs: nnx.Rngs) -> Conv2d:
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=bias, rngs=rngs)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False, *, rngs: nnx.Rngs) -> Conv2d:
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=bias, rngs=rngs)


def _norm(config: ResNetConfig) -> Callable[[int], BatchNorm2d]:
    return lambda channels: BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


class InputNorm(Layer):
    """`nn.BatchNorm2d(channels, affine=False)`: Gluon v2's normalisation of the image, statistics only."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.epsilon = eps
        self.momentum = 1.0 - momentum  # Flax's convention, as BatchNorm2d stores it
        self.use_running_average = False
        self.mean = nnx.BatchStat(on_device(np.zeros(channels)))
        self.var = nnx.BatchStat(on_device(np.ones(channels)))

    def forward(self, x):
        if self.use_running_average:
            mean, var = self.mean[...].astype(x.dtype), self.var[...].astype(x.dtype)
        else:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            count = x.size // x.shape[-1]
            unbiased = var * (count / max(count - 1, 1))  # PyTorch's running variance, as BatchNorm2d
            m = self.momentum
            self.mean.set_value((m * self.mean[...] + (1.0 - m) * mean).astype(self.mean[...].dtype))
            self.var.set_value((m * self.var[...] + (1.0 - m) * unbiased).astype(self.var[...].dtype))
        return (x - mean) * lax.rsqrt(var + self.epsilon)

    def canonical(self):
        def same(array):
            return array
        return {"running_mean": (self.mean, same, same), "running_var": (self.var, same, same)}


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
        _, _, bias3x3 = config.conv_biases()
        self.conv1 = conv3x3(inplanes, planes, stride, bias=bias3x3, rngs=rngs)
        self.bn1 = norm(planes)
        self.relu = ReLU()
        self.conv2 = conv3x3(planes, planes, bias=bias3x3, rngs=rngs)
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
        _, bias1x1, bias3x3 = config.conv_biases()
        self.conv1 = conv1x1(inplanes, width, stride1, bias=bias1x1, rngs=rngs)
        self.bn1 = norm(width)
        self.conv2 = conv3x3(width, width, stride2, config.groups, bias=bias3x3, rngs=rngs)
        self.bn2 = norm(width)
        self.conv3 = conv1x1(width, out, bias=bias1x1, rngs=rngs)
        self.bn3 = norm(out)
        self.relu = ReLU()
        self.se = None if attention is None else attention(out, rngs=rngs)
        self.downsample = downsample

    def residual(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class _PreActBlock(nnx.Module):
    """ResNet v2: BN-ReLU before each convolution; the projection sees the pre-activated input, and the
    sum is passed on as it is."""

    def __call__(self, x):
        out = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(out)
        out = self.residual(out)
        if self.se is not None:
            out = self.se(out)
        return out + identity


class PreActBasicBlock(_PreActBlock):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nnx.Module | None, attention: Attention = None, *, rngs: nnx.Rngs) -> None:
        norm = _norm(config)
        _, _, bias3x3 = config.conv_biases()
        self.bn1 = norm(inplanes)
        self.relu = ReLU()
        self.conv1 = conv3x3(inplanes, planes, stride, bias=bias3x3, rngs=rngs)
        self.bn2 = norm(planes)
        self.conv2 = conv3x3(planes, planes, bias=bias3x3, rngs=rngs)
        self.se = None if attention is None else attention(planes, rngs=rngs)
        self.downsample = downsample

    def residual(self, x):
        return self.conv2(self.relu(self.bn2(self.conv1(x))))


class PreActBottleneck(_PreActBlock):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nnx.Module | None, attention: Attention = None, *, rngs: nnx.Rngs) -> None:
        norm = _norm(config)
        width = config.bottleneck_width(planes)
        out = planes * config.expansion
        stride1, stride2 = config.bottleneck_strides(stride)
        _, bias1x1, bias3x3 = config.conv_biases()
        self.bn1 = norm(inplanes)
        self.relu = ReLU()
        self.conv1 = conv1x1(inplanes, width, stride1, bias=bias1x1, rngs=rngs)
        self.bn2 = norm(width)
        self.conv2 = conv3x3(width, width, stride2, config.groups, bias=bias3x3, rngs=rngs)
        self.bn3 = norm(width)
        self.conv3 = conv1x1(width, out, bias=bias1x1, rngs=rngs)
        self.se = None if attention is None else attention(out, rngs=rngs)
        self.downsample = downsample

    def residual(self, x):
        out = self.conv1(x)
        out = self.conv2(self.relu(self.bn2(out)))
        return self.conv3(self.relu(self.bn3(out)))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
PREACT_BLOCKS = {"basic": PreActBasicBlock, "bottleneck": PreActBottleneck}


class ResNet(Network):
    def __init__(self, config: ResNetConfig, num_classes: int, in_channels: int,
                 attention: Attention = None, *, rngs: nnx.Rngs) -> None:
        block = (PREACT_BLOCKS if config.preactivation else BLOCKS)[config.block]
        norm = _norm(config)
        inplanes = config.stem_width
        bias_outer, _, _ = config.conv_biases()
        self.input_bn = (InputNorm(in_channels, eps=config.bn_eps, momentum=config.bn_momentum)
                         if config.input_norm else None)
        kernel, stride, padding = config.stem_conv
        self.conv1 = Conv2d(in_channels, inplanes, kernel, stride=stride, padding=padding, bias=bias_outer,
                            rngs=rngs)
        self.bn1 = norm(inplanes)
        self.relu = ReLU()
        # The CIFAR stem has no pool; an Identity keeps torchvision's module tree and forward.
        self.maxpool = MaxPool2d(*config.stem_pool) if config.stem_pool else Identity()
        for index, (planes, blocks, stride) in enumerate(
                zip(config.widths, config.layers, config.stage_strides()), start=1):
            out = planes * config.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                projection = conv1x1(inplanes, out, stride, bias=bias_outer, rngs=rngs)
                # v2's projection is a bare convolution: `downsample.0` alone
                downsample = Sequential(projection) if config.preactivation else Sequential(projection, norm(out))
            layers = [block(config, inplanes, planes, stride, downsample, attention, rngs=rngs)]
            layers += [block(config, out, planes, 1, None, attention, rngs=rngs) for _ in range(1, blocks)]
            setattr(self, f"layer{index}", Sequential(*layers))
            inplanes = out
        self.num_stages = len(config.layers)
        self.final_bn = norm(inplanes) if config.preactivation else None
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(inplanes, num_classes, rngs=rngs)
        _initialize(self, config, rngs)

    def forward(self, x):
        if self.input_bn is not None:
            x = self.input_bn(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        if self.final_bn is not None:
            x = self.relu(self.final_bn(x))
        return self.fc(flatten(self.avgpool(x)))


def _initialize(model: ResNet, config: ResNetConfig, rngs: nnx.Rngs) -> None:
    # torchvision's: He init for a ReLU net, fan_out (PyTorch's fan_out ignores groups); BN is built as
    # the identity already; fc keeps Linear's default.
    for _, m in nnx.iter_graph(model):
        if isinstance(m, Conv2d):
            _, fan_out = fans(m.kernel)
            m.kernel.set_value(normal(rngs, m.kernel[...].shape, (2.0 / fan_out) ** 0.5))
    if config.zero_init_residual:
        for _, m in nnx.iter_graph(model):
            if isinstance(m, Bottleneck):
                fill(m.bn3.scale, 0.0)
            elif isinstance(m, BasicBlock):
                fill(m.bn2.scale, 0.0)


def build(config: ResNetConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs,
          attention: Attention = None) -> Network:
    return ResNet(config, num_classes, in_channels, attention, rngs=rngs)
