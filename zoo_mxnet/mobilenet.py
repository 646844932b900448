"""MobileNet V1, V2 and V3 in MXNet Gluon, and the inverted-residual block EfficientNet shares.

Blocks mirror zoo_torch/mobilenet.py child by child, so Gluon's structured parameter names are
torchvision's state_dict keys.
"""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.mobilenet import (
    InvertedResidualPlan,
    MobileNetConfig,
    MobileNetV1Config,
    MobileNetV2Config,
    MobileNetV3Config,
)

from .layers import relu, sigmoid


class Activation(nn.HybridBlock):
    """PyTorch's activations, written out so that the slopes are PyTorch's.

    MXNet's own `hard_sigmoid` defaults to slope 0.2 (Keras 2's), not PyTorch's 1/6.
    """

    def __init__(self, kind: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def hybrid_forward(self, F, x):
        kind = self.kind
        if kind == "relu":
            return relu(F, x)
        if kind == "relu6":
            return F.clip(x, 0.0, 6.0)
        if kind == "sigmoid":
            return sigmoid(F, x)
        if kind == "silu":
            return x * sigmoid(F, x)
        gate = F.clip(x + 3.0, 0.0, 6.0) / 6.0  # relu6(x + 3) / 6
        return gate if kind == "hardsigmoid" else x * gate  # hardsigmoid / hardswish


def _same_rows(F, x, axis: int, pad: int):
    """Rows (axis 2) or columns (axis 3) of `x` padded as TensorFlow's "same" before a stride-2 window of
    2 * pad + 1: `pad` before and after on an odd size, one fewer before on an even one.

    Written without shapes, which a hybridized block does not see: pad `pad` before and `pad + 1` after,
    then take `size + 2 * pad` rows from offset (size - 1) mod 2. The last row taken on an even size is
    one no window reaches, so it pads `pad` after, as TensorFlow does.
    """
    widths = [0] * 8
    widths[2 * axis], widths[2 * axis + 1] = pad, pad + 1
    padded = F.pad(x, mode="constant", constant_value=0.0, pad_width=tuple(widths))
    positions = F.contrib.arange_like(x, axis=axis)  # 0 .. size - 1
    offset = F.slice_axis(positions, axis=0, begin=-1, end=None) % 2
    rows = F.slice_axis(F.contrib.arange_like(padded, axis=axis), axis=0, begin=0, end=-1)  # size + 2 * pad
    return F.take(padded, F.broadcast_add(rows, offset), axis=axis)


class Conv2DSame(nn.Conv2D):
    """A stride-2 `nn.Conv2D` with TensorFlow's "same" padding, from each input's size (hybridized too);
    its parameters are nn.Conv2D's."""

    def __init__(self, channels: int, kernel_size: int, dilation: int = 1, **kwargs) -> None:
        super().__init__(channels, kernel_size, strides=2, padding=0, dilation=dilation, **kwargs)
        self._same_pad = (kernel_size - 1) * dilation // 2

    def hybrid_forward(self, F, x, weight, bias=None):
        x = _same_rows(F, _same_rows(F, x, 2, self._same_pad), 3, self._same_pad)
        return super().hybrid_forward(F, x, weight, bias)


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *, groups: int = 1,
           dilation: int = 1, padding: str = "symmetric") -> nn.Conv2D:
    """A convolution without bias padded "symmetric"ally or as TensorFlow's "same" (zoo.specs.mobilenet.PADDINGS),
    which differ only with a stride."""
    if padding == "same" and stride > 1:
        if stride != 2:
            raise ValueError(f"'same' padding is built for strides 1 and 2, got {stride}")
        return Conv2DSame(out_channels, kernel_size, dilation=dilation, groups=groups, use_bias=False,
                          in_channels=in_channels)
    return nn.Conv2D(out_channels, kernel_size, strides=stride, padding=(kernel_size - 1) // 2 * dilation,
                     dilation=dilation, groups=groups, use_bias=False, in_channels=in_channels)


class ConvBNAct(nn.HybridSequential):
    """torchvision's Conv2dNormActivation: 0 conv without bias, 1 BatchNorm, 2 activation (optional)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 dilation: int = 1, norm: dict | None = None, activation: str | None = "relu",
                 padding: str = "symmetric", **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.add(conv2d(in_channels, out_channels, kernel_size, stride, groups=groups, dilation=dilation,
                            padding=padding))
            self.add(batch_norm(out_channels, norm))
            if activation is not None:
                self.add(Activation(activation))


def batch_norm(channels: int, norm: dict) -> nn.BatchNorm:
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    return nn.BatchNorm(epsilon=norm["eps"], momentum=1.0 - norm["momentum"], in_channels=channels)


class SqueezeExcitation(nn.HybridBlock):
    """torchvision.ops.SqueezeExcitation: pool, 1x1 conv `fc1`, activation, 1x1 conv `fc2`, gate, rescale."""

    def __init__(self, channels: int, squeeze_channels: int, activation: str, gate: str, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.avgpool = nn.GlobalAvgPool2D()
            self.fc1 = nn.Conv2D(squeeze_channels, 1, in_channels=channels)
            self.fc2 = nn.Conv2D(channels, 1, in_channels=squeeze_channels)
            self.activation = Activation(activation)
            self.scale_activation = Activation(gate)

    def hybrid_forward(self, F, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return F.broadcast_mul(scale, x)


class InvertedResidual(nn.HybridBlock):
    """Expand, depthwise, optional SE, linear projection, shortcut (see zoo_torch.mobilenet.InvertedResidual)."""

    def __init__(self, plan: InvertedResidualPlan, norm: dict, *, body: str = "block", flat_projection: bool = False,
                 padding: str = "symmetric", **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_res_connect = plan.use_residual
        self.drop_prob = plan.stochastic_depth
        self.body = body
        with self.name_scope():
            layers = nn.HybridSequential()
            if plan.expands:
                layers.add(ConvBNAct(plan.in_channels, plan.expanded, 1, norm=norm, activation=plan.activation))
            layers.add(ConvBNAct(plan.expanded, plan.expanded, plan.kernel, plan.depthwise_stride, groups=plan.expanded,
                                 dilation=plan.dilation, norm=norm, activation=plan.activation, padding=padding))
            if plan.se_channels:
                layers.add(SqueezeExcitation(plan.expanded, plan.se_channels, plan.se_activation, plan.se_gate))
            if flat_projection:
                layers.add(nn.Conv2D(plan.out_channels, 1, use_bias=False, in_channels=plan.expanded))
                layers.add(batch_norm(plan.out_channels, norm))
            else:
                layers.add(ConvBNAct(plan.expanded, plan.out_channels, 1, norm=norm, activation=None))
            setattr(self, body, layers)

    def hybrid_forward(self, F, x):
        result = getattr(self, self.body)(x)
        if not self.use_res_connect:
            return result
        if self.drop_prob:
            # Row-mode stochastic depth: a dropout mask shared over C, H, W drops whole samples in
            # training (rescaling the others) and is the identity in inference.
            result = F.Dropout(result, p=self.drop_prob, axes=(1, 2, 3))
        return result + x


class MobileNet(nn.HybridBlock):
    """features -> global average pool -> classifier, the layout all three versions share."""

    def __init__(self, features: list, classifier: list, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            self.features.add(*features)
            self.avgpool = nn.GlobalAvgPool2D()
            self.classifier = nn.HybridSequential()
            self.classifier.add(*classifier)

    def hybrid_forward(self, F, x):
        return self.classifier(F.flatten(self.avgpool(self.features(x))))


def _norm(config) -> dict:
    return {"eps": config.bn_eps, "momentum": config.bn_momentum}


def mobilenet_v1(config: MobileNetV1Config, num_classes: int, in_channels: int) -> nn.HybridBlock:
    norm, act, padding = _norm(config), config.activation, config.padding
    stem, blocks = config.plan()
    features = [ConvBNAct(in_channels, stem, 3, 2, norm=norm, activation=act, padding=padding)]
    for cin, cout, stride in blocks:
        block = nn.HybridSequential()
        block.add(ConvBNAct(cin, cin, 3, stride, groups=cin, norm=norm, activation=act, padding=padding),
                  ConvBNAct(cin, cout, 1, norm=norm, activation=act))
        features.append(block)
    width = blocks[-1][1]
    return MobileNet(features, [nn.Dropout(config.dropout), nn.Dense(num_classes, in_units=width)])


def mobilenet_v2(config: MobileNetV2Config, num_classes: int, in_channels: int) -> nn.HybridBlock:
    norm = _norm(config)
    plans = config.plan()
    features = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="relu6", padding=config.padding)]
    features += [InvertedResidual(p, norm, body="conv", flat_projection=True, padding=config.padding) for p in plans]
    features.append(ConvBNAct(plans[-1].out_channels, config.head(), 1, norm=norm, activation="relu6"))
    return MobileNet(features, [nn.Dropout(config.dropout),
                                nn.Dense(num_classes, use_bias=config.classifier_bias, in_units=config.head())])


def mobilenet_v3(config: MobileNetV3Config, num_classes: int, in_channels: int) -> nn.HybridBlock:
    norm = _norm(config)
    plans = config.plan()
    last_conv, hidden = config.head()
    features = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="hardswish", padding=config.padding)]
    features += [InvertedResidual(p, norm, padding=config.padding) for p in plans]
    features.append(ConvBNAct(plans[-1].out_channels, last_conv, 1, norm=norm, activation="hardswish"))
    return MobileNet(features, [
        nn.Dense(hidden, in_units=last_conv), Activation("hardswish"), nn.Dropout(config.dropout),
        nn.Dense(num_classes, in_units=hidden),
    ])


BUILDERS = {MobileNetV1Config: mobilenet_v1, MobileNetV2Config: mobilenet_v2, MobileNetV3Config: mobilenet_v3}


def build(config: MobileNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return BUILDERS[type(config)](config, num_classes, in_channels)
