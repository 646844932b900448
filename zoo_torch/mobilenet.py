"""MobileNet V1, V2 and V3 in PyTorch, and the modules EfficientNet shares.

Module trees and state_dict keys are torchvision's (`features.N...`, `classifier.N`), so its
MobileNetV2/V3 checkpoints load with strict=True. V1, which torchvision lacks, follows the same style.
The network is the spec's plan (`MobileNetPlan`): every layer's widths, strides, padding, biases and
activations are decided there, and only translated into modules here.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from zoo.plan import Conv, Linear
from zoo.specs.mobilenet import (ActivationPlan, ConvNormAct, DropoutPlan, InvertedResidualPlan, MobileNetConfig,
                                 MobileNetPlan, Norm, Piece, SqueezeExcitationPlan, Stack)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}
NormLayer = Callable[[int], nn.BatchNorm2d]


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one dimension: (before, after), the odd one after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """`nn.Conv2d` with TensorFlow's "same" padding, computed from each input's size (timm's Conv2dSame);
    its parameters and state_dict keys are nn.Conv2d's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv2d(conv: Conv, dilation: int = 1, same: bool = False) -> nn.Conv2d:
    """The plan's convolution, padded `conv.padding` a side, or as TensorFlow's "same" where the plan says."""
    padding = 0 if same else conv.padding
    return (Conv2dSame if same else nn.Conv2d)(conv.in_channels, conv.out_channels, conv.kernel, conv.stride, padding,
                                               dilation=dilation, groups=conv.groups, bias=conv.bias)


class ConvBNAct(nn.Sequential):
    """Conv + BatchNorm (+ activation): torchvision's Conv2dNormActivation, same child indices."""

    def __init__(self, plan: ConvNormAct, norm: NormLayer) -> None:
        layers: list[nn.Module] = [conv2d(plan.conv, plan.dilation, plan.same), norm(plan.out_channels)]
        if plan.activation is not None:
            layers.append(ACTIVATIONS[plan.activation]())
        super().__init__(*layers)
        self.out_channels = plan.out_channels


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: global pool, 1x1 conv `fc1`, activation, 1x1 conv `fc2`, gate."""

    def __init__(self, plan: SqueezeExcitationPlan) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = conv2d(plan.fc1)
        self.fc2 = conv2d(plan.fc2)
        self.activation = ACTIVATIONS[plan.activation]()
        self.scale_activation = ACTIVATIONS[plan.gate]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth(p, "row"): drop a sample's residual branch with probability p in training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
        return x * noise.div_(survival)


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise, optional SE, linear 1x1 projection, shortcut when shapes allow: one block for
    MobileNetV2, MobileNetV3 and EfficientNet (which adds stochastic depth on the residual branch), its
    layers in a Sequential under the plan's `body` name (`conv` in V2, `block` in V3 and EfficientNet)."""

    def __init__(self, plan: InvertedResidualPlan, norm: NormLayer) -> None:
        super().__init__()
        self.use_res_connect = plan.residual
        self.out_channels = plan.out_channels
        self.body = plan.body
        setattr(self, plan.body, nn.Sequential(*(module(piece, norm) for piece in plan.layers)))
        if plan.stochastic_depth is not None:
            self.stochastic_depth = StochasticDepth(plan.stochastic_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = getattr(self, self.body)(x)
        if self.use_res_connect:
            if hasattr(self, "stochastic_depth"):
                result = self.stochastic_depth(result)
            result = result + x
        return result


def module(piece: Piece, norm: NormLayer) -> nn.Module:
    """The module a piece of the plan asks for (its place in its Sequential gives its name)."""
    match piece:
        case ConvNormAct():
            return ConvBNAct(piece, norm)
        case InvertedResidualPlan():
            return InvertedResidual(piece, norm)
        case SqueezeExcitationPlan():
            return SqueezeExcitation(piece)
        case Stack():
            return nn.Sequential(*(module(p, norm) for p in piece.layers))
        case Conv():
            return conv2d(piece)
        case Norm():
            return norm(piece.channels)
        case Linear():
            return nn.Linear(piece.in_features, piece.out_features, bias=piece.bias)
        case DropoutPlan():
            return nn.Dropout(piece.p)
        case ActivationPlan():
            return ACTIVATIONS[piece.kind]()
    raise TypeError(f"no module for {piece!r}")


def init_weights(model: nn.Module, linear_init: str = "normal") -> None:
    """torchvision's initialisation of the MobileNets and EfficientNet."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_init == "normal":
                nn.init.normal_(m.weight, 0, 0.01)
            else:  # EfficientNet: uniform in +-1/sqrt(out_features)
                bound = 1.0 / m.out_features ** 0.5
                nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MobileNet(nn.Module):
    """features -> global average pool -> classifier, the layout the MobileNets and EfficientNet share."""

    def __init__(self, plan: MobileNetPlan) -> None:
        super().__init__()
        norm = partial(nn.BatchNorm2d, eps=plan.bn_eps, momentum=plan.bn_momentum)
        self.features = nn.Sequential(*(module(piece, norm) for piece in plan.features))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(*(module(piece, norm) for piece in plan.classifier))
        init_weights(self, plan.linear_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def build(config: MobileNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return MobileNet(config.plan(num_classes, in_channels))
