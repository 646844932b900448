"""MobileNet V1, V2 and V3 in MXNet Gluon, and the blocks EfficientNet shares.

The network is the spec's plan (`MobileNetPlan`): every layer's widths, strides, padding, biases and
activations are decided there, and only translated into blocks here. Blocks mirror zoo_torch/mobilenet.py
child by child, so Gluon's structured parameter names are torchvision's state_dict keys.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from mxnet.gluon import nn

from zoo.plan import Conv, Linear
from zoo.specs.mobilenet import (ActivationPlan, ConvNormAct, DropoutPlan, InvertedResidualPlan, MobileNetConfig,
                                 MobileNetPlan, Norm, Piece, SqueezeExcitationPlan, Stack)

from .layers import relu, sigmoid

NormLayer = Callable[[int], nn.BatchNorm]


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

    def __init__(self, channels: int, kernel_size: int, strides: int, dilation: int = 1, **kwargs) -> None:
        if strides != 2:
            raise ValueError(f"'same' padding is built for strides 1 and 2, got {strides}")
        super().__init__(channels, kernel_size, strides=2, padding=0, dilation=dilation, **kwargs)
        self._same_pad = (kernel_size - 1) * dilation // 2

    def hybrid_forward(self, F, x, weight, bias=None):
        x = _same_rows(F, _same_rows(F, x, 2, self._same_pad), 3, self._same_pad)
        return super().hybrid_forward(F, x, weight, bias)


def conv2d(conv: Conv, dilation: int = 1, same: bool = False) -> nn.Conv2D:
    """The plan's convolution, padded `conv.padding` a side, or as TensorFlow's "same" where the plan says."""
    if same:
        return Conv2DSame(conv.out_channels, conv.kernel, conv.stride, dilation=dilation, groups=conv.groups,
                          use_bias=conv.bias, in_channels=conv.in_channels)
    return nn.Conv2D(conv.out_channels, conv.kernel, strides=conv.stride, padding=conv.padding, dilation=dilation,
                     groups=conv.groups, use_bias=conv.bias, in_channels=conv.in_channels)


class ConvBNAct(nn.HybridSequential):
    """torchvision's Conv2dNormActivation: 0 conv, 1 BatchNorm, 2 activation (optional)."""

    def __init__(self, plan: ConvNormAct, norm: NormLayer, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.add(conv2d(plan.conv, plan.dilation, plan.same))
            self.add(norm(plan.out_channels))
            if plan.activation is not None:
                self.add(Activation(plan.activation))


def batch_norm(channels: int, *, eps: float, momentum: float) -> nn.BatchNorm:
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    return nn.BatchNorm(epsilon=eps, momentum=1.0 - momentum, in_channels=channels)


class SqueezeExcitation(nn.HybridBlock):
    """torchvision.ops.SqueezeExcitation: pool, 1x1 conv `fc1`, activation, 1x1 conv `fc2`, gate, rescale."""

    def __init__(self, plan: SqueezeExcitationPlan, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.avgpool = nn.GlobalAvgPool2D()
            self.fc1 = conv2d(plan.fc1)
            self.fc2 = conv2d(plan.fc2)
            self.activation = Activation(plan.activation)
            self.scale_activation = Activation(plan.gate)

    def hybrid_forward(self, F, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return F.broadcast_mul(scale, x)


class InvertedResidual(nn.HybridBlock):
    """Expand, depthwise, optional SE, linear projection, shortcut (see zoo_torch.mobilenet.InvertedResidual)."""

    def __init__(self, plan: InvertedResidualPlan, norm: NormLayer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_res_connect = plan.residual
        self.drop_prob = plan.stochastic_depth
        self.body = plan.body
        with self.name_scope():
            setattr(self, plan.body, sequential(plan.layers, norm))

    def hybrid_forward(self, F, x):
        result = getattr(self, self.body)(x)
        if not self.use_res_connect:
            return result
        if self.drop_prob:
            # Row-mode stochastic depth: a dropout mask shared over C, H, W drops whole samples in
            # training (rescaling the others) and is the identity in inference.
            result = F.Dropout(result, p=self.drop_prob, axes=(1, 2, 3))
        return result + x


def block(piece: Piece, norm: NormLayer) -> nn.HybridBlock:
    """The block a piece of the plan asks for (its place in its HybridSequential gives its name)."""
    match piece:
        case ConvNormAct():
            return ConvBNAct(piece, norm)
        case InvertedResidualPlan():
            return InvertedResidual(piece, norm)
        case SqueezeExcitationPlan():
            return SqueezeExcitation(piece)
        case Stack():
            return sequential(piece.layers, norm)
        case Conv():
            return conv2d(piece)
        case Norm():
            return norm(piece.channels)
        case Linear():
            return nn.Dense(piece.out_features, use_bias=piece.bias, in_units=piece.in_features)
        case DropoutPlan():
            return nn.Dropout(piece.p)
        case ActivationPlan():
            return Activation(piece.kind)
    raise TypeError(f"no block for {piece!r}")


def sequential(pieces, norm: NormLayer) -> nn.HybridSequential:
    blocks = nn.HybridSequential()
    blocks.add(*(block(piece, norm) for piece in pieces))
    return blocks


class MobileNet(nn.HybridBlock):
    """features -> global average pool -> classifier, the layout the MobileNets and EfficientNet share."""

    def __init__(self, plan: MobileNetPlan, **kwargs) -> None:
        super().__init__(**kwargs)
        norm = partial(batch_norm, eps=plan.bn_eps, momentum=plan.bn_momentum)
        with self.name_scope():
            self.features = sequential(plan.features, norm)
            self.avgpool = nn.GlobalAvgPool2D()
            self.classifier = sequential(plan.classifier, norm)

    def hybrid_forward(self, F, x):
        return self.classifier(F.flatten(self.avgpool(self.features(x))))


def build(config: MobileNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return MobileNet(config.plan(num_classes, in_channels))
