"""ResNet in Flax NNX, module for module `zoo_torch.resnet` (torchvision's tree, so its checkpoints load).
The network is the spec's plan (`ResNetConfig.plan`): every block's convolutions, strides, biases,
shortcut and SE module are decided there, and only translated into modules here.

`preactivation=True` builds ResNet v2's pre-activation blocks; `conv_bias` and `input_norm` the
variants Keras and Gluon build (zoo.specs.resnet says who builds which)."""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from zoo.plan import Conv
from zoo.specs.resnet import ResidualBlock, ResNetConfig, ResNetPlan

from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Layer, Linear, MaxPool2d, ReLU, Sequential,
                     fans, fill, flatten, init_rngs, normal, on_device)
from .network import Network

# (channels, squeezed channels, *, rngs) -> the module a block's `se` plan asks for (zoo_jax.senet's)
SqueezeExcitation = Callable[..., nnx.Module]
Norm = Callable[[int], BatchNorm2d]


def conv2d(conv: Conv, *, rngs: nnx.Rngs) -> Conv2d:
    return Conv2d(conv.in_channels, conv.out_channels, conv.kernel, stride=conv.stride, padding=conv.padding,
                  groups=conv.groups, bias=conv.bias, rngs=rngs)


def _shortcut(plan: ResidualBlock, norm: Norm, rngs: nnx.Rngs) -> Sequential | None:
    if plan.downsample is None:
        return None
    projection = conv2d(plan.downsample, rngs=rngs)
    # v2's projection is a bare convolution, and d2l's v1 one: `downsample.0` alone
    return Sequential(projection, norm(plan.downsample.out_channels)) if plan.downsample_norm else Sequential(projection)


def _se(plan: ResidualBlock, se: SqueezeExcitation | None, rngs: nnx.Rngs) -> nnx.Module | None:
    return None if plan.se is None else se(plan.out_channels, plan.se, rngs=rngs)


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
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, *,
                 rngs: nnx.Rngs) -> None:
        conv1, conv2 = plan.convs
        self.conv1 = conv2d(conv1, rngs=rngs)
        self.bn1 = norm(conv1.out_channels)
        self.relu = ReLU()
        self.conv2 = conv2d(conv2, rngs=rngs)
        self.bn2 = norm(conv2.out_channels)
        self.se = _se(plan, se, rngs)
        self.downsample = _shortcut(plan, norm, rngs)

    def residual(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(_Block):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, *,
                 rngs: nnx.Rngs) -> None:
        conv1, conv2, conv3 = plan.convs
        self.conv1 = conv2d(conv1, rngs=rngs)
        self.bn1 = norm(conv1.out_channels)
        self.conv2 = conv2d(conv2, rngs=rngs)
        self.bn2 = norm(conv2.out_channels)
        self.conv3 = conv2d(conv3, rngs=rngs)
        self.bn3 = norm(conv3.out_channels)
        self.relu = ReLU()
        self.se = _se(plan, se, rngs)
        self.downsample = _shortcut(plan, norm, rngs)

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
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, *,
                 rngs: nnx.Rngs) -> None:
        conv1, conv2 = plan.convs
        self.bn1 = norm(conv1.in_channels)
        self.relu = ReLU()
        self.conv1 = conv2d(conv1, rngs=rngs)
        self.bn2 = norm(conv2.in_channels)
        self.conv2 = conv2d(conv2, rngs=rngs)
        self.se = _se(plan, se, rngs)
        self.downsample = _shortcut(plan, norm, rngs)

    def residual(self, x):
        return self.conv2(self.relu(self.bn2(self.conv1(x))))


class PreActBottleneck(_PreActBlock):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, *,
                 rngs: nnx.Rngs) -> None:
        conv1, conv2, conv3 = plan.convs
        self.bn1 = norm(conv1.in_channels)
        self.relu = ReLU()
        self.conv1 = conv2d(conv1, rngs=rngs)
        self.bn2 = norm(conv2.in_channels)
        self.conv2 = conv2d(conv2, rngs=rngs)
        self.bn3 = norm(conv3.in_channels)
        self.conv3 = conv2d(conv3, rngs=rngs)
        self.se = _se(plan, se, rngs)
        self.downsample = _shortcut(plan, norm, rngs)

    def residual(self, x):
        out = self.conv1(x)
        out = self.conv2(self.relu(self.bn2(out)))
        return self.conv3(self.relu(self.bn3(out)))


# (kind, preactivation) -> the block's module
BLOCKS = {("basic", False): BasicBlock, ("bottleneck", False): Bottleneck,
          ("basic", True): PreActBasicBlock, ("bottleneck", True): PreActBottleneck}


class ResNet(Network):
    def __init__(self, plan: ResNetPlan, se: SqueezeExcitation | None = None, *, rngs: nnx.Rngs) -> None:
        def norm(channels: int) -> BatchNorm2d:
            return BatchNorm2d(channels, eps=plan.bn_eps, momentum=plan.bn_momentum)

        self.input_bn = InputNorm(plan.input_norm, plan.bn_eps, plan.bn_momentum) if plan.input_norm else None
        self.conv1 = conv2d(plan.stem, rngs=rngs)
        self.bn1 = norm(plan.stem.out_channels)
        self.relu = ReLU()
        # The CIFAR stem has no pool; an Identity keeps torchvision's module tree and forward.
        self.maxpool = MaxPool2d(plan.pool.kernel, plan.pool.stride, plan.pool.padding) if plan.pool else Identity()
        for name, blocks in zip(plan.stage_names, plan.stages):
            setattr(self, name, Sequential(*(BLOCKS[b.kind, b.preactivation](b, norm, se, rngs=rngs) for b in blocks)))
        self.num_stages = len(plan.stages)
        self.final_bn = norm(plan.final_norm) if plan.final_norm else None
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(plan.features, plan.num_classes, rngs=rngs)
        _initialize(self, plan, rngs)

    def forward(self, x):
        if self.input_bn is not None:
            x = self.input_bn(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        if self.final_bn is not None:
            x = self.relu(self.final_bn(x))
        return self.fc(flatten(self.avgpool(x)))


def _initialize(model: ResNet, plan: ResNetPlan, rngs: nnx.Rngs) -> None:
    # torchvision's: He init for a ReLU net, fan_out (PyTorch's fan_out ignores groups); BN is built as
    # the identity already; fc keeps Linear's default.
    for _, m in nnx.iter_graph(model):
        if isinstance(m, Conv2d):
            _, fan_out = fans(m.kernel)
            m.kernel.set_value(normal(rngs, m.kernel[...].shape, (2.0 / fan_out) ** 0.5))
    if plan.zero_init_residual:
        for _, m in nnx.iter_graph(model):
            if isinstance(m, Bottleneck):
                fill(m.bn3.scale, 0.0)
            elif isinstance(m, BasicBlock):
                fill(m.bn2.scale, 0.0)


def build(config: ResNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return ResNet(config.plan(num_classes, in_channels), rngs=init_rngs())
