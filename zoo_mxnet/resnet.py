"""ResNet in MXNet Gluon, block for block torchvision's module tree (`layer1.0.conv1`, `downsample.0`).

The network is the spec's plan (`ResNetConfig.plan`): every block's convolutions, strides, biases,
shortcut and SE module are decided there, and only translated into blocks here. `preactivation=True`
gives ResNet v2's pre-activation blocks; `conv_bias` and `input_norm` the variants Keras and Gluon build
(zoo.specs.resnet says who builds which).
"""
from __future__ import annotations

from typing import Callable

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

from zoo.plan import Conv
from zoo.specs.resnet import ResidualBlock, ResNetConfig, ResNetPlan

from .layers import global_avg_pool, relu

# (channels, squeezed channels) -> the block a block's `se` plan asks for (zoo_mxnet.senet's)
SqueezeExcitation = Callable[[int, int], nn.HybridBlock]
Norm = Callable[[int], nn.BatchNorm]


def conv2d(conv: Conv) -> nn.Conv2D:
    return nn.Conv2D(conv.out_channels, conv.kernel, strides=conv.stride, padding=conv.padding, groups=conv.groups,
                     use_bias=conv.bias, in_channels=conv.in_channels)


def _shortcut(plan: ResidualBlock, norm: Norm) -> nn.HybridSequential | None:
    if plan.downsample is None:
        return None
    downsample = nn.HybridSequential()
    downsample.add(conv2d(plan.downsample))
    if plan.downsample_norm:  # v2's projection is a bare convolution, and d2l's v1 one
        downsample.add(norm(plan.downsample.out_channels))
    return downsample


def _se(plan: ResidualBlock, se: SqueezeExcitation | None) -> nn.HybridBlock | None:
    return None if plan.se is None else se(plan.out_channels, plan.se)


class InputNorm(nn.HybridBlock):
    """BatchNorm without scale and shift (Gluon v2's on the image): only `running_mean` / `running_var`,
    where Gluon's BatchNorm(scale=False, center=False) would still hold a gamma and a beta."""

    def __init__(self, plan: ResNetPlan, **kwargs) -> None:
        super().__init__(**kwargs)
        channels, self.eps, self.momentum = plan.input_norm, plan.bn_eps, 1.0 - plan.bn_momentum
        with self.name_scope():
            self.running_mean = self.params.get("running_mean", grad_req="null", shape=(channels,),
                                                init="zeros", allow_deferred_init=False, differentiable=False)
            self.running_var = self.params.get("running_var", grad_req="null", shape=(channels,),
                                               init="ones", allow_deferred_init=False, differentiable=False)

    def hybrid_forward(self, F, x, running_mean, running_var):
        if F is mx.nd and autograd.is_training():
            # MXNet's BatchNorm updates its running statistics in its backward pass, which never runs here
            # (nothing before the image needs a gradient: Gluon's own resnet*_v2 keeps them at 0 and 1).
            # Imperatively, they are updated as PyTorch does, with the unbiased batch variance.
            mean = x.mean(axis=(0, 2, 3))
            var = F.square(F.broadcast_sub(x, mean.reshape((1, -1, 1, 1)))).mean(axis=(0, 2, 3))
            count = x.size // x.shape[1]
            running_mean[:] = self.momentum * running_mean + (1.0 - self.momentum) * mean
            running_var[:] = self.momentum * running_var + (1.0 - self.momentum) * var * (count / max(count - 1, 1))
        return F.BatchNorm(x, F.ones_like(running_var), F.zeros_like(running_mean), running_mean, running_var,
                           eps=self.eps, momentum=self.momentum, fix_gamma=True, name="fwd")


class _Block(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        out = self.residual(F, x)
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return relu(F, out + identity)


class BasicBlock(_Block):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        conv1, conv2 = plan.convs
        with self.name_scope():
            self.conv1 = conv2d(conv1)
            self.bn1 = norm(conv1.out_channels)
            self.conv2 = conv2d(conv2)
            self.bn2 = norm(conv2.out_channels)
            self.se = _se(plan, se)
            self.downsample = _shortcut(plan, norm)

    def residual(self, F, x):
        return self.bn2(self.conv2(relu(F, self.bn1(self.conv1(x)))))


class Bottleneck(_Block):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        conv1, conv2, conv3 = plan.convs
        with self.name_scope():
            self.conv1 = conv2d(conv1)
            self.bn1 = norm(conv1.out_channels)
            self.conv2 = conv2d(conv2)
            self.bn2 = norm(conv2.out_channels)
            self.conv3 = conv2d(conv3)
            self.bn3 = norm(conv3.out_channels)
            self.se = _se(plan, se)
            self.downsample = _shortcut(plan, norm)

    def residual(self, F, x):
        out = relu(F, self.bn1(self.conv1(x)))
        out = relu(F, self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class _PreActBlock(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        out = relu(F, self.bn1(x))
        # v2: the projection sees the pre-activated input, and the sum is passed on as it is
        identity = x if self.downsample is None else self.downsample(out)
        out = self.residual(F, out)
        if self.se is not None:
            out = self.se(out)
        return out + identity


class PreActBasicBlock(_PreActBlock):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        conv1, conv2 = plan.convs
        with self.name_scope():
            self.bn1 = norm(conv1.in_channels)
            self.conv1 = conv2d(conv1)
            self.bn2 = norm(conv2.in_channels)
            self.conv2 = conv2d(conv2)
            self.se = _se(plan, se)
            self.downsample = _shortcut(plan, norm)

    def residual(self, F, x):
        return self.conv2(relu(F, self.bn2(self.conv1(x))))


class PreActBottleneck(_PreActBlock):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        conv1, conv2, conv3 = plan.convs
        with self.name_scope():
            self.bn1 = norm(conv1.in_channels)
            self.conv1 = conv2d(conv1)
            self.bn2 = norm(conv2.in_channels)
            self.conv2 = conv2d(conv2)
            self.bn3 = norm(conv3.in_channels)
            self.conv3 = conv2d(conv3)
            self.se = _se(plan, se)
            self.downsample = _shortcut(plan, norm)

    def residual(self, F, x):
        out = self.conv1(x)
        out = self.conv2(relu(F, self.bn2(out)))
        return self.conv3(relu(F, self.bn3(out)))


# (kind, preactivation) -> the block
BLOCKS = {("basic", False): BasicBlock, ("bottleneck", False): Bottleneck,
          ("basic", True): PreActBasicBlock, ("bottleneck", True): PreActBottleneck}


class ResNet(nn.HybridBlock):
    def __init__(self, plan: ResNetPlan, se: SqueezeExcitation | None = None, **kwargs) -> None:
        super().__init__(**kwargs)

        def norm(channels: int) -> nn.BatchNorm:
            # Gluon's momentum weighs the old statistic, PyTorch's the new one.
            return nn.BatchNorm(momentum=1.0 - plan.bn_momentum, epsilon=plan.bn_eps, in_channels=channels)

        self.pooled_stem = plan.pool is not None
        with self.name_scope():
            self.input_bn = InputNorm(plan) if plan.input_norm else None
            self.conv1 = conv2d(plan.stem)
            self.bn1 = norm(plan.stem.out_channels)
            if self.pooled_stem:
                self.maxpool = nn.MaxPool2D(plan.pool.kernel, strides=plan.pool.stride, padding=plan.pool.padding)
            for name, blocks in zip(plan.stage_names, plan.stages):
                stage = nn.HybridSequential()
                for block in blocks:
                    stage.add(BLOCKS[block.kind, block.preactivation](block, norm, se))
                setattr(self, name, stage)
            self.final_bn = norm(plan.final_norm) if plan.final_norm else None
            self.fc = nn.Dense(plan.num_classes, in_units=plan.features)
        self.num_stages = len(plan.stages)

    def hybrid_forward(self, F, x):
        if self.input_bn is not None:
            x = self.input_bn(x)
        x = relu(F, self.bn1(self.conv1(x)))
        if self.pooled_stem:
            x = self.maxpool(x)
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        if self.final_bn is not None:
            x = relu(F, self.final_bn(x))
        return self.fc(F.flatten(global_avg_pool(F, x)))


def build(config: ResNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return ResNet(config.plan(num_classes, in_channels))
