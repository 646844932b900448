"""ResNet in MXNet Gluon, block for block torchvision's module tree (`layer1.0.conv1`, `downsample.0`).

`attention(channels)` may return a block (SE) for each block's residual branch, before the addition.
`preactivation=True` builds ResNet v2's pre-activation blocks; `conv_bias` and `input_norm` the
variants Keras and Gluon build (zoo.specs.resnet says who builds which).
"""
from __future__ import annotations

from typing import Callable

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

from zoo.specs.resnet import ResNetConfig

from .layers import global_avg_pool, relu

Attention = Callable[[int], nn.HybridBlock] | None


def _norm(config: ResNetConfig, channels: int) -> nn.BatchNorm:
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    return nn.BatchNorm(momentum=1.0 - config.bn_momentum, epsilon=config.bn_eps, in_channels=channels)


def _conv(in_channels: int, channels: int, kernel: int, stride: int = 1, groups: int = 1,
          bias: bool = False) -> nn.Conv2D:
    return nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups,
                     use_bias=bias, in_channels=in_channels)


class InputNorm(nn.HybridBlock):
    """BatchNorm without scale and shift (Gluon v2's on the image): only `running_mean` / `running_var`,
    where Gluon's BatchNorm(scale=False, center=False) would still hold a gamma and a beta."""

    def __init__(self, config: ResNetConfig, channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eps, self.momentum = config.bn_eps, 1.0 - config.bn_momentum
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
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.HybridBlock | None, attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        _, _, bias3x3 = config.conv_biases()
        with self.name_scope():
            self.conv1 = _conv(inplanes, planes, 3, stride, bias=bias3x3)
            self.bn1 = _norm(config, planes)
            self.conv2 = _conv(planes, planes, 3, bias=bias3x3)
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
        _, bias1x1, bias3x3 = config.conv_biases()
        with self.name_scope():
            self.conv1 = _conv(inplanes, width, 1, stride1, bias=bias1x1)
            self.bn1 = _norm(config, width)
            self.conv2 = _conv(width, width, 3, stride2, config.groups, bias=bias3x3)
            self.bn2 = _norm(config, width)
            self.conv3 = _conv(width, out, 1, bias=bias1x1)
            self.bn3 = _norm(config, out)
            self.se = None if attention is None else attention(out)
        self.downsample = downsample

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
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.HybridBlock | None, attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        _, _, bias3x3 = config.conv_biases()
        with self.name_scope():
            self.bn1 = _norm(config, inplanes)
            self.conv1 = _conv(inplanes, planes, 3, stride, bias=bias3x3)
            self.bn2 = _norm(config, planes)
            self.conv2 = _conv(planes, planes, 3, bias=bias3x3)
            self.se = None if attention is None else attention(planes)
        self.downsample = downsample

    def residual(self, F, x):
        return self.conv2(relu(F, self.bn2(self.conv1(x))))


class PreActBottleneck(_PreActBlock):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.HybridBlock | None, attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        width = config.bottleneck_width(planes)
        out = planes * config.expansion
        stride1, stride2 = config.bottleneck_strides(stride)
        _, bias1x1, bias3x3 = config.conv_biases()
        with self.name_scope():
            self.bn1 = _norm(config, inplanes)
            self.conv1 = _conv(inplanes, width, 1, stride1, bias=bias1x1)
            self.bn2 = _norm(config, width)
            self.conv2 = _conv(width, width, 3, stride2, config.groups, bias=bias3x3)
            self.bn3 = _norm(config, width)
            self.conv3 = _conv(width, out, 1, bias=bias1x1)
            self.se = None if attention is None else attention(out)
        self.downsample = downsample

    def residual(self, F, x):
        out = self.conv1(x)
        out = self.conv2(relu(F, self.bn2(out)))
        return self.conv3(relu(F, self.bn3(out)))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
PREACT_BLOCKS = {"basic": PreActBasicBlock, "bottleneck": PreActBottleneck}


class ResNet(nn.HybridBlock):
    def __init__(self, config: ResNetConfig, num_classes: int, in_channels: int,
                 attention: Attention = None, **kwargs) -> None:
        super().__init__(**kwargs)
        block = (PREACT_BLOCKS if config.preactivation else BLOCKS)[config.block]
        inplanes = config.stem_width
        bias_outer, _, _ = config.conv_biases()
        self.pooled_stem = config.stem_pool is not None
        with self.name_scope():
            self.input_bn = InputNorm(config, in_channels) if config.input_norm else None
            kernel, stride, padding = config.stem_conv
            self.conv1 = nn.Conv2D(inplanes, kernel, strides=stride, padding=padding, use_bias=bias_outer,
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
                    downsample.add(_conv(inplanes, out, 1, stride, bias=bias_outer))
                    if not config.preactivation:  # v2's projection is a bare convolution
                        downsample.add(_norm(config, out))
                stage = nn.HybridSequential()
                stage.add(block(config, inplanes, planes, stride, downsample, attention))
                for _ in range(1, blocks):
                    stage.add(block(config, out, planes, 1, None, attention))
                setattr(self, f"layer{index}", stage)
                inplanes = out
            self.final_bn = _norm(config, inplanes) if config.preactivation else None
            self.fc = nn.Dense(num_classes, in_units=inplanes)
        self.num_stages = len(config.layers)

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


def build(config: ResNetConfig, num_classes: int, in_channels: int, attention: Attention = None) -> nn.HybridBlock:
    return ResNet(config, num_classes, in_channels, attention)
