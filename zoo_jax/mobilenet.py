"""MobileNet V1, V2 and V3 in Flax NNX, and the inverted-residual block EfficientNet shares.

Module for module `zoo_torch.mobilenet` (torchvision's trees: `features.N...`, `classifier.N`), so the
canonical names are torchvision's state_dict keys.
"""
from __future__ import annotations

import math
from functools import partial

from flax import nnx

from zoo.specs.mobilenet import (
    InvertedResidualPlan,
    MobileNetConfig,
    MobileNetV1Config,
    MobileNetV2Config,
    MobileNetV3Config,
)

from .layers import (ACTIVATIONS, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Hardswish, Linear, Sequential,
                     StochasticDepth, fans, fill, flatten, init_rngs, normal, uniform)
from .network import Network, named_modules


class ConvBNAct(Sequential):
    """Conv (no bias) + BatchNorm (+ activation): torchvision's Conv2dNormActivation, same child indices."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, dilation: int = 1, norm=BatchNorm2d, activation: str | None = "relu",
                 padding: str = "symmetric", *, rngs: nnx.Rngs) -> None:
        # "same": XLA's own, TensorFlow's (zoo.specs.mobilenet.PADDINGS); symmetric: (k-1)//2 a side.
        pad = "same" if padding == "same" else (kernel_size - 1) // 2 * dilation
        layers = [
            Conv2d(in_channels, out_channels, kernel_size, stride, pad, dilation=dilation, groups=groups,
                   bias=False, rngs=rngs),
            norm(out_channels),
        ]
        if activation is not None:
            layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nnx.Module):
    """torchvision.ops.SqueezeExcitation: global pool, 1x1 conv `fc1`, activation, 1x1 conv `fc2`, gate."""

    def __init__(self, channels: int, squeeze_channels: int, activation: str = "relu",
                 gate: str = "hardsigmoid", *, rngs: nnx.Rngs) -> None:
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(channels, squeeze_channels, 1, rngs=rngs)
        self.fc2 = Conv2d(squeeze_channels, channels, 1, rngs=rngs)
        self.activation = ACTIVATIONS[activation]()
        self.scale_activation = ACTIVATIONS[gate]()

    def __call__(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nnx.Module):
    """Expand 1x1, depthwise, optional SE, linear 1x1 projection, shortcut when shapes allow.

    One block for MobileNetV2, MobileNetV3 and EfficientNet, as in `zoo_torch.mobilenet`: V2 names the
    sequence `conv` with the projection conv and its BatchNorm as two entries (`flat_projection`); V3 and
    EfficientNet name it `block`. EfficientNet adds stochastic depth on the residual branch.
    """

    def __init__(self, plan: InvertedResidualPlan, norm, *, body: str = "block", flat_projection: bool = False,
                 stochastic_depth: bool = False, padding: str = "symmetric", rngs: nnx.Rngs) -> None:
        self.use_res_connect = plan.use_residual
        self.out_channels = plan.out_channels
        layers = []
        if plan.expands:
            layers.append(ConvBNAct(plan.in_channels, plan.expanded, 1, norm=norm, activation=plan.activation,
                                    rngs=rngs))
        layers.append(ConvBNAct(plan.expanded, plan.expanded, plan.kernel, plan.depthwise_stride,
                                groups=plan.expanded, dilation=plan.dilation, norm=norm,
                                activation=plan.activation, padding=padding, rngs=rngs))
        if plan.se_channels:
            layers.append(SqueezeExcitation(plan.expanded, plan.se_channels, plan.se_activation, plan.se_gate,
                                            rngs=rngs))
        if flat_projection:
            layers += [Conv2d(plan.expanded, plan.out_channels, 1, bias=False, rngs=rngs), norm(plan.out_channels)]
        else:
            layers.append(ConvBNAct(plan.expanded, plan.out_channels, 1, norm=norm, activation=None, rngs=rngs))
        self.body = body
        setattr(self, body, Sequential(*layers))
        self.stochastic_depth = StochasticDepth(plan.stochastic_depth, rngs=rngs) if stochastic_depth else None

    def __call__(self, x):
        result = getattr(self, self.body)(x)
        if self.use_res_connect:
            if self.stochastic_depth is not None:
                result = self.stochastic_depth(result)
            result = result + x
        return result


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
    """features -> global average pool -> classifier, the layout all three versions share."""

    def __init__(self, features: list, classifier: list) -> None:
        self.features = Sequential(*features)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.classifier = Sequential(*classifier)

    def forward(self, x):
        return self.classifier(flatten(self.avgpool(self.features(x))))


def _norm(config) -> partial:
    return partial(BatchNorm2d, eps=config.bn_eps, momentum=config.bn_momentum)


def mobilenet_v1(config: MobileNetV1Config, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> Network:
    norm, act, padding = _norm(config), config.activation, config.padding
    stem, blocks = config.plan()
    features = [ConvBNAct(in_channels, stem, 3, 2, norm=norm, activation=act, padding=padding, rngs=rngs)]
    for cin, cout, stride in blocks:
        features.append(Sequential(
            ConvBNAct(cin, cin, 3, stride, groups=cin, norm=norm, activation=act, padding=padding, rngs=rngs),
            ConvBNAct(cin, cout, 1, norm=norm, activation=act, rngs=rngs),
        ))
    width = blocks[-1][1]
    return MobileNet(features, [Dropout(config.dropout, rngs=rngs), Linear(width, num_classes, rngs=rngs)])


def mobilenet_v2(config: MobileNetV2Config, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> Network:
    norm = _norm(config)
    plans = config.plan()
    features = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="relu6", padding=config.padding,
                          rngs=rngs)]
    features += [InvertedResidual(p, norm, body="conv", flat_projection=True, padding=config.padding, rngs=rngs)
                 for p in plans]
    features.append(ConvBNAct(plans[-1].out_channels, config.head(), 1, norm=norm, activation="relu6", rngs=rngs))
    return MobileNet(features, [Dropout(config.dropout, rngs=rngs),
                                Linear(config.head(), num_classes, bias=config.classifier_bias, rngs=rngs)])


def mobilenet_v3(config: MobileNetV3Config, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> Network:
    norm = _norm(config)
    plans = config.plan()
    last_conv, hidden = config.head()
    features = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="hardswish",
                          padding=config.padding, rngs=rngs)]
    features += [InvertedResidual(p, norm, padding=config.padding, rngs=rngs) for p in plans]
    features.append(ConvBNAct(plans[-1].out_channels, last_conv, 1, norm=norm, activation="hardswish", rngs=rngs))
    return MobileNet(features, [
        Linear(last_conv, hidden, rngs=rngs), Hardswish(), Dropout(config.dropout, rngs=rngs),
        Linear(hidden, num_classes, rngs=rngs),
    ])


BUILDERS = {MobileNetV1Config: mobilenet_v1, MobileNetV2Config: mobilenet_v2, MobileNetV3Config: mobilenet_v3}


def build(config: MobileNetConfig, *, num_classes: int, in_channels: int) -> Network:
    rngs = init_rngs()
    model = BUILDERS[type(config)](config, num_classes, in_channels, rngs=rngs)
    init_weights(model, rngs)
    return model
