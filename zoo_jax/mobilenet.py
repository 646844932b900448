"""MobileNet V1, V2 and V3 in Flax NNX, and the modules EfficientNet shares.

Module for module `zoo_torch.mobilenet` (torchvision's trees: `features.N...`, `classifier.N`), so the
canonical names are torchvision's state_dict keys. The network is the spec's plan (`MobileNetPlan`): every
layer's widths, strides, padding, biases and activations are decided there, and only translated into
modules here.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

from flax import nnx

from zoo.plan import Conv, Linear as LinearPlan
from zoo.specs.mobilenet import (ActivationPlan, ConvNormAct, DropoutPlan, InvertedResidualPlan, MobileNetConfig,
                                 MobileNetPlan, Norm, Piece, SqueezeExcitationPlan, Stack)

from .layers import (ACTIVATIONS, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, Sequential,
                     StochasticDepth, fans, fill, flatten, init_rngs, normal, uniform)
from .network import Network, named_modules

NormLayer = Callable[[int], BatchNorm2d]


def conv2d(conv: Conv, dilation: int = 1, same: bool = False, *, rngs: nnx.Rngs) -> Conv2d:
    """The plan's convolution, padded `conv.padding` a side, or with XLA's "same" (TensorFlow's) where the
    plan says."""
    return Conv2d(conv.in_channels, conv.out_channels, conv.kernel, conv.stride, "same" if same else conv.padding,
                  dilation=dilation, groups=conv.groups, bias=conv.bias, rngs=rngs)


class ConvBNAct(Sequential):
    """Conv + BatchNorm (+ activation): torchvision's Conv2dNormActivation, same child indices."""

    def __init__(self, plan: ConvNormAct, norm: NormLayer, *, rngs: nnx.Rngs) -> None:
        layers = [conv2d(plan.conv, plan.dilation, plan.same, rngs=rngs), norm(plan.out_channels)]
        if plan.activation is not None:
            layers.append(ACTIVATIONS[plan.activation]())
        super().__init__(*layers)
        self.out_channels = plan.out_channels


class SqueezeExcitation(nnx.Module):
    """torchvision.ops.SqueezeExcitation: global pool, 1x1 conv `fc1`, activation, 1x1 conv `fc2`, gate."""

    def __init__(self, plan: SqueezeExcitationPlan, *, rngs: nnx.Rngs) -> None:
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc1 = conv2d(plan.fc1, rngs=rngs)
        self.fc2 = conv2d(plan.fc2, rngs=rngs)
        self.activation = ACTIVATIONS[plan.activation]()
        self.scale_activation = ACTIVATIONS[plan.gate]()

    def __call__(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nnx.Module):
    """Expand 1x1, depthwise, optional SE, linear 1x1 projection, shortcut when shapes allow: one block for
    MobileNetV2, MobileNetV3 and EfficientNet (which adds stochastic depth on the residual branch), its
    layers in a Sequential under the plan's `body` name (`conv` in V2, `block` in V3 and EfficientNet)."""

    def __init__(self, plan: InvertedResidualPlan, norm: NormLayer, *, rngs: nnx.Rngs) -> None:
        self.use_res_connect = plan.residual
        self.out_channels = plan.out_channels
        self.body = plan.body
        setattr(self, plan.body, Sequential(*(module(piece, norm, rngs=rngs) for piece in plan.layers)))
        self.stochastic_depth = (None if plan.stochastic_depth is None
                                 else StochasticDepth(plan.stochastic_depth, rngs=rngs))

    def __call__(self, x):
        result = getattr(self, self.body)(x)
        if self.use_res_connect:
            if self.stochastic_depth is not None:
                result = self.stochastic_depth(result)
            result = result + x
        return result


def module(piece: Piece, norm: NormLayer, *, rngs: nnx.Rngs) -> nnx.Module:
    """The module a piece of the plan asks for (its place in its Sequential gives its name)."""
    match piece:
        case ConvNormAct():
            return ConvBNAct(piece, norm, rngs=rngs)
        case InvertedResidualPlan():
            return InvertedResidual(piece, norm, rngs=rngs)
        case SqueezeExcitationPlan():
            return SqueezeExcitation(piece, rngs=rngs)
        case Stack():
            return Sequential(*(module(p, norm, rngs=rngs) for p in piece.layers))
        case Conv():
            return conv2d(piece, rngs=rngs)
        case Norm():
            return norm(piece.channels)
        case LinearPlan():
            return Linear(piece.in_features, piece.out_features, bias=piece.bias, rngs=rngs)
        case DropoutPlan():
            return Dropout(piece.p, rngs=rngs)
        case ActivationPlan():
            return ACTIVATIONS[piece.kind]()
    raise TypeError(f"no module for {piece!r}")


def init_weights(model: nnx.Module, rngs: nnx.Rngs, linear_init: str = "normal") -> None:
    """torchvision's initialisation of the MobileNets and EfficientNet (BatchNorm starts at 1 and 0 already)."""
    for _, _, m in named_modules(model):
        if isinstance(m, Conv2d):
            # kaiming_normal_(mode="fan_out"); PyTorch's fan-out ignores groups.
            _, fan_out = fans(m.kernel)
            m.kernel.set_value(normal(rngs, m.kernel[...].shape, math.sqrt(2.0 / fan_out)))
            if m.bias is not None:
                fill(m.bias, 0.0)
        elif isinstance(m, Linear):
            shape = m.kernel[...].shape
            if linear_init == "normal":
                m.kernel.set_value(normal(rngs, shape, 0.01))
            else:  # EfficientNet: uniform in +-1/sqrt(out_features)
                bound = 1.0 / math.sqrt(shape[1])
                m.kernel.set_value(uniform(rngs, shape, -bound, bound))
            if m.bias is not None:
                fill(m.bias, 0.0)


class MobileNet(Network):
    """features -> global average pool -> classifier, the layout the MobileNets and EfficientNet share."""

    def __init__(self, plan: MobileNetPlan, *, rngs: nnx.Rngs) -> None:
        norm = partial(BatchNorm2d, eps=plan.bn_eps, momentum=plan.bn_momentum)
        self.features = Sequential(*(module(piece, norm, rngs=rngs) for piece in plan.features))
        self.avgpool = AdaptiveAvgPool2d(1)
        self.classifier = Sequential(*(module(piece, norm, rngs=rngs) for piece in plan.classifier))
        init_weights(self, rngs, plan.linear_init)

    def forward(self, x):
        return self.classifier(flatten(self.avgpool(self.features(x))))


def build(config: MobileNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return MobileNet(config.plan(num_classes, in_channels), rngs=init_rngs())
