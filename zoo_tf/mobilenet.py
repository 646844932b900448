"""MobileNet V1, V2 and V3 in Keras, and the layers EfficientNet shares.

The network is the spec's plan (`MobileNetPlan`): every layer's name (the PyTorch module it mirrors,
`features.2.conv.1.0`, `features.4.block.2.fc1`), widths, strides, padding, biases and activations are
decided there, and only translated into layers here. Convolutions pad `padding` a side as PyTorch does
(zoo_tf.layers.conv2d pads stride-2 ones explicitly, where Keras' "same" would pad bottom/right only), or
with Keras' own "same" where the plan asks for TensorFlow's padding, as keras.applications does.
"""
from __future__ import annotations

from keras import layers

from zoo.plan import Conv, Linear
from zoo.specs.mobilenet import (ActivationPlan, ConvNormAct, DropoutPlan, InvertedResidualPlan, MobileNetConfig,
                                 MobileNetPlan, Norm, Piece, SqueezeExcitationPlan, Stack)

from .layers import activation, batch_norm, conv2d
from .model import functional


def _conv(x, conv: Conv, dilation: int = 1, same: bool = False):
    return conv2d(x, conv.out_channels, conv.kernel, name=conv.name, stride=conv.stride,
                  padding="same" if same else conv.padding, groups=conv.groups, dilation=dilation, use_bias=conv.bias)


def conv_bn_act(x, plan: ConvNormAct, norm: dict):
    """torchvision's Conv2dNormActivation: `name.0` conv, `name.1` BatchNorm, `name.2` activation."""
    x = batch_norm(_conv(x, plan.conv, plan.dilation, plan.same), name=f"{plan.name}.1", **norm)
    return x if plan.activation is None else activation(x, plan.activation, name=f"{plan.name}.2")


def squeeze_excitation(x, plan: SqueezeExcitationPlan):
    """torchvision.ops.SqueezeExcitation: pool, 1x1 conv `fc1`, act, 1x1 conv `fc2`, gate, rescale."""
    scale = layers.GlobalAveragePooling2D(keepdims=True, name=f"{plan.name}.avgpool")(x)
    scale = activation(_conv(scale, plan.fc1), plan.activation, name=f"{plan.name}.activation")
    scale = activation(_conv(scale, plan.fc2), plan.gate, name=f"{plan.name}.scale_activation")
    return layers.Multiply(name=f"{plan.name}.scale")([scale, x])


def inverted_residual(x, plan: InvertedResidualPlan, norm: dict):
    """Expand, depthwise, optional SE, linear projection, shortcut (see zoo_torch.mobilenet.InvertedResidual)."""
    out = x
    for piece in plan.layers:
        out = layer(out, piece, norm)
    if not plan.residual:
        return out
    if plan.stochastic_depth:
        # Row-mode stochastic depth: one Bernoulli draw per sample, rescaled; identity in inference.
        out = layers.Dropout(plan.stochastic_depth, noise_shape=(None, 1, 1, 1),
                             name=f"{plan.name}.stochastic_depth")(out)
    return layers.Add(name=f"{plan.name}.add")([out, x])


def layer(x, piece: Piece, norm: dict):
    """`x` through what a piece of the plan asks for, under the plan's names."""
    match piece:
        case ConvNormAct():
            return conv_bn_act(x, piece, norm)
        case InvertedResidualPlan():
            return inverted_residual(x, piece, norm)
        case SqueezeExcitationPlan():
            return squeeze_excitation(x, piece)
        case Stack():
            for inner in piece.layers:
                x = layer(x, inner, norm)
            return x
        case Conv():
            return _conv(x, piece)
        case Norm():
            return batch_norm(x, name=piece.name, **norm)
        case Linear():
            return layers.Dense(piece.out_features, use_bias=piece.bias, name=piece.name)(x)
        case DropoutPlan():
            return layers.Dropout(piece.p, name=piece.name)(x)
        case ActivationPlan():
            return activation(x, piece.kind, name=piece.name)
    raise TypeError(f"no layer for {piece!r}")


def mobilenet(inputs, plan: MobileNetPlan):
    """features, global average pool (`avgpool`), classifier: the layout the MobileNets and EfficientNet share."""
    norm = {"eps": plan.bn_eps, "momentum": plan.bn_momentum}
    x = inputs
    for piece in plan.features:
        x = layer(x, piece, norm)
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    for piece in plan.classifier:
        x = layer(x, piece, norm)
    return x


def network(inputs, config: MobileNetConfig, num_classes: int):
    return mobilenet(inputs, config.plan(num_classes, inputs.shape[-1]))


build = functional(network)
