"""MobileNet V1, V2 and V3 in PyTorch, and the inverted-residual block EfficientNet shares.

Module trees and state_dict keys are torchvision's (`features.N...`, `classifier.N`), so its
MobileNetV2/V3 checkpoints load with strict=True. V1, which torchvision lacks, follows the same style.
"""
from __future__ import annotations

from functools import partial

import math

import torch
from torch import nn
from torch.nn import functional as F

from zoo.specs.mobilenet import (
    InvertedResidualPlan,
    MobileNetConfig,
    MobileNetV1Config,
    MobileNetV2Config,
    MobileNetV3Config,
)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


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


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *, groups: int = 1,
           dilation: int = 1, bias: bool = False, padding: str = "symmetric") -> nn.Conv2d:
    """A convolution padded "symmetric"ally ((k-1)//2 a side) or as TensorFlow's "same" (zoo.specs.mobilenet.PADDINGS).

    The two differ only with a stride: stride-1 convolutions keep nn.Conv2d's fixed padding either way.
    """
    if padding == "same" and stride > 1:
        return Conv2dSame(in_channels, out_channels, kernel_size, stride, 0, dilation=dilation, groups=groups,
                          bias=bias)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2 * dilation,
                     dilation=dilation, groups=groups, bias=bias)


class ConvBNAct(nn.Sequential):
    """Conv (no bias) + BatchNorm (+ activation): torchvision's Conv2dNormActivation, same child indices."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, dilation: int = 1, norm=nn.BatchNorm2d, activation: str | None = "relu",
                 padding: str = "symmetric") -> None:
        layers: list[nn.Module] = [
            conv2d(in_channels, out_channels, kernel_size, stride, groups=groups, dilation=dilation, padding=padding),
            norm(out_channels),
        ]
        if activation is not None:
            layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: global pool, 1x1 conv `fc1`, activation, 1x1 conv `fc2`, gate."""

    def __init__(self, channels: int, squeeze_channels: int, activation: str = "relu", gate: str = "hardsigmoid") -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = ACTIVATIONS[activation]()
        self.scale_activation = ACTIVATIONS[gate]()

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
    """Expand 1x1, depthwise, optional SE, linear 1x1 projection, shortcut when shapes allow.

    One block for MobileNetV2, MobileNetV3 and EfficientNet. torchvision's MobileNetV2 names the
    sequence `conv` and keeps the projection conv and its BatchNorm as two entries (`flat_projection`);
    V3 and EfficientNet name it `block` and wrap the projection in one Conv-BN. EfficientNet adds
    stochastic depth on the residual branch.
    """

    def __init__(self, plan: InvertedResidualPlan, norm, *, body: str = "block", flat_projection: bool = False,
                 stochastic_depth: bool = False, padding: str = "symmetric") -> None:
        super().__init__()
        self.use_res_connect = plan.use_residual
        self.out_channels = plan.out_channels
        layers: list[nn.Module] = []
        if plan.expands:
            layers.append(ConvBNAct(plan.in_channels, plan.expanded, 1, norm=norm, activation=plan.activation))
        layers.append(ConvBNAct(plan.expanded, plan.expanded, plan.kernel, plan.depthwise_stride,
                                groups=plan.expanded, dilation=plan.dilation, norm=norm, activation=plan.activation,
                                padding=padding))
        if plan.se_channels:
            layers.append(SqueezeExcitation(plan.expanded, plan.se_channels, plan.se_activation, plan.se_gate))
        if flat_projection:
            layers += [nn.Conv2d(plan.expanded, plan.out_channels, 1, bias=False), norm(plan.out_channels)]
        else:
            layers.append(ConvBNAct(plan.expanded, plan.out_channels, 1, norm=norm, activation=None))
        self.body = body
        setattr(self, body, nn.Sequential(*layers))
        if stochastic_depth:
            self.stochastic_depth = StochasticDepth(plan.stochastic_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = getattr(self, self.body)(x)
        if self.use_res_connect:
            if hasattr(self, "stochastic_depth"):
                result = self.stochastic_depth(result)
            result = result + x
        return result


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
    """features -> global average pool -> classifier, the layout all three versions share."""

    def __init__(self, features: list[nn.Module], classifier: list[nn.Module]) -> None:
        super().__init__()
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _norm(config) -> partial:
    return partial(nn.BatchNorm2d, eps=config.bn_eps, momentum=config.bn_momentum)


def mobilenet_v1(config: MobileNetV1Config, num_classes: int, in_channels: int) -> nn.Module:
    norm, act, padding = _norm(config), config.activation, config.padding
    stem, blocks = config.plan()
    features: list[nn.Module] = [ConvBNAct(in_channels, stem, 3, 2, norm=norm, activation=act, padding=padding)]
    for cin, cout, stride in blocks:
        features.append(nn.Sequential(
            ConvBNAct(cin, cin, 3, stride, groups=cin, norm=norm, activation=act, padding=padding),
            ConvBNAct(cin, cout, 1, norm=norm, activation=act),
        ))
    width = blocks[-1][1]
    return MobileNet(features, [nn.Dropout(config.dropout), nn.Linear(width, num_classes)])


def mobilenet_v2(config: MobileNetV2Config, num_classes: int, in_channels: int) -> nn.Module:
    norm = _norm(config)
    plans = config.plan()
    features: list[nn.Module] = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="relu6",
                                           padding=config.padding)]
    features += [InvertedResidual(p, norm, body="conv", flat_projection=True, padding=config.padding) for p in plans]
    features.append(ConvBNAct(plans[-1].out_channels, config.head(), 1, norm=norm, activation="relu6"))
    return MobileNet(features, [nn.Dropout(config.dropout),
                                nn.Linear(config.head(), num_classes, bias=config.classifier_bias)])


def mobilenet_v3(config: MobileNetV3Config, num_classes: int, in_channels: int) -> nn.Module:
    norm = _norm(config)
    plans = config.plan()
    last_conv, hidden = config.head()
    features: list[nn.Module] = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="hardswish",
                                           padding=config.padding)]
    features += [InvertedResidual(p, norm, padding=config.padding) for p in plans]
    features.append(ConvBNAct(plans[-1].out_channels, last_conv, 1, norm=norm, activation="hardswish"))
    return MobileNet(features, [
        nn.Linear(last_conv, hidden), nn.Hardswish(), nn.Dropout(config.dropout), nn.Linear(hidden, num_classes),
    ])


BUILDERS = {MobileNetV1Config: mobilenet_v1, MobileNetV2Config: mobilenet_v2, MobileNetV3Config: mobilenet_v3}


def build(config: MobileNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    model = BUILDERS[type(config)](config, num_classes, in_channels)
    init_weights(model)
    return model
