"""ResNet in Keras (functional), layer names following torchvision's module paths (`layer1.0.conv1`).

The network is the spec's plan (`ResNetConfig.plan`): every block's convolutions, strides, biases,
shortcut and SE module are decided there, and only translated into layers here. `attention(x, squeezed=,
name=)` builds the SE module a block's plan asks for. `preactivation=True` gives ResNet v2's pre-activation
blocks; `conv_bias` and `input_norm` the variants Keras and Gluon build (zoo.specs.resnet says who builds which).
"""
from __future__ import annotations

from typing import Callable

from keras import layers

from zoo.plan import Conv
from zoo.specs.resnet import ResidualBlock, ResNetConfig, ResNetPlan

from .layers import BatchNorm, activation, batch_norm, conv2d, max_pool
from .model import functional

# (x, *, squeezed, name) -> the graph of the SE module a block's `se` plan asks for (zoo_tf.senet's)
Attention = Callable[..., object] | None
# (x, name) -> x through the plan's BatchNorm
Norm = Callable[..., object]


def _conv(x, conv: Conv):
    return conv2d(x, conv.out_channels, conv.kernel, stride=conv.stride, padding=conv.padding, groups=conv.groups,
                  use_bias=conv.bias, name=conv.name)


def block(x, plan: ResidualBlock, norm: Norm, attention: Attention = None):
    """torchvision's BasicBlock or Bottleneck: convK + bnK, with ReLUs between, then the sum and a ReLU."""
    name, out = plan.name, x
    for k, conv in enumerate(plan.convs, start=1):
        out = norm(_conv(out, conv), f"{name}.bn{k}")
        if k < len(plan.convs):
            out = activation(out, "relu", name=f"{name}.relu{k}")
    if plan.se is not None:
        out = attention(out, squeezed=plan.se, name=f"{name}.se")
    if plan.downsample is not None:
        x = _conv(x, plan.downsample)
        if plan.downsample_norm:  # none in d2l's blocks
            x = norm(x, f"{name}.downsample.1")
    out = layers.Add(name=f"{name}.add")([out, x])
    return activation(out, "relu", name=f"{name}.relu")


def preact_block(x, plan: ResidualBlock, norm: Norm, attention: Attention = None):
    """ResNet v2's block: BN-ReLU before each convolution; the projection sees the pre-activated input, and
    the sum is passed on as it is."""
    name = plan.name
    pre = activation(norm(x, f"{name}.bn1"), "relu", name=f"{name}.relu1")
    out = _conv(pre, plan.convs[0])
    for k, conv in enumerate(plan.convs[1:], start=2):
        out = _conv(activation(norm(out, f"{name}.bn{k}"), "relu", name=f"{name}.relu{k}"), conv)
    if plan.se is not None:
        out = attention(out, squeezed=plan.se, name=f"{name}.se")
    if plan.downsample is not None:
        x = _conv(pre, plan.downsample)
    return layers.Add(name=f"{name}.add")([out, x])


def network(inputs, config: ResNetConfig, num_classes: int, attention: Attention = None):
    plan: ResNetPlan = config.plan(num_classes, inputs.shape[-1])

    def norm(x, name: str):
        return batch_norm(x, name=name, eps=plan.bn_eps, momentum=plan.bn_momentum)

    x = inputs
    if plan.input_norm:
        # Gluon v2's normalisation of the image itself: statistics only, no scale or shift.
        x = BatchNorm(axis=-1, epsilon=plan.bn_eps, momentum=1.0 - plan.bn_momentum, center=False,
                      scale=False, name="input_bn")(x)
    x = activation(norm(_conv(x, plan.stem), "bn1"), "relu", name="relu")
    if plan.pool:
        x = max_pool(x, plan.pool.kernel, stride=plan.pool.stride, padding=plan.pool.padding, name=plan.pool.name)
    for residual in plan.blocks():
        x = (preact_block if residual.preactivation else block)(x, residual, norm, attention)
    if plan.final_norm:
        x = activation(norm(x, "final_bn"), "relu", name="final_relu")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return layers.Dense(plan.num_classes, name="fc")(x)


build = functional(network)
