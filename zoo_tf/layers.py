"""Keras building blocks that compute exactly what their PyTorch counterparts compute.

PyTorch pads symmetrically; Keras' `padding="same"` pads bottom/right first for stride 2 and even
sizes. So every padded convolution or pooling here pads explicitly and then runs `valid`.
"""
from __future__ import annotations

import keras
from keras import layers, ops


class Pad2D(layers.Layer):
    """Constant padding of an NHWC map by ((top, bottom), (left, right)), e.g. -inf before a max pool."""

    def __init__(self, padding, value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(p) for p in padding)
        self.value = value

    def call(self, x):
        return ops.pad(x, ((0, 0), *self.padding, (0, 0)), constant_values=self.value)

    def compute_output_shape(self, shape):
        def grow(size, pad):
            return None if size is None else size + sum(pad)
        return (shape[0], grow(shape[1], self.padding[0]), grow(shape[2], self.padding[1]), shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}


def _pairs(padding: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph), (pw, pw)


def pad(x, padding, name: str, value: float = 0.0):
    if padding in (0, (0, 0)):
        return x
    if value == 0.0:
        return layers.ZeroPadding2D(_pairs(padding), name=name)(x)
    return Pad2D(_pairs(padding), value, name=name)(x)


def conv2d(x, filters: int, kernel_size, *, name: str, stride=1, padding=0, groups: int = 1,
           dilation: int = 1, use_bias: bool = True):
    """`nn.Conv2d(in, filters, kernel_size, stride, padding, groups=groups, bias=use_bias)`."""
    x = pad(x, padding, name=f"{name}.pad")
    channels = x.shape[-1]
    if groups > 1 and groups == channels and filters % channels == 0:
        return layers.DepthwiseConv2D(kernel_size, strides=stride, depth_multiplier=filters // channels,
                                      dilation_rate=dilation, use_bias=use_bias, name=name)(x)
    conv = GroupedConv2D if groups > 1 else layers.Conv2D
    return conv(filters, kernel_size, strides=stride, groups=groups, dilation_rate=dilation,
                use_bias=use_bias, name=name)(x)


def batch_norm(x, *, name: str, eps: float = 1e-5, momentum: float = 0.1):
    """`nn.BatchNorm2d(eps=eps, momentum=momentum)`: Keras' momentum weighs the old statistic, PyTorch's the new."""
    return layers.BatchNormalization(axis=-1, epsilon=eps, momentum=1.0 - momentum, name=name)(x)


def max_pool(x, pool_size: int, *, name: str, stride: int | None = None, padding: int = 0):
    """`nn.MaxPool2d(pool_size, stride, padding)`: PyTorch pads a max pool with -inf."""
    x = pad(x, padding, name=f"{name}.pad", value=float("-inf"))
    return layers.MaxPooling2D(pool_size, strides=stride or pool_size, name=name)(x)


def avg_pool(x, pool_size: int, *, name: str, stride: int | None = None, padding: int = 0):
    """`nn.AvgPool2d(pool_size, stride, padding)` with PyTorch's default count_include_pad=True."""
    x = pad(x, padding, name=f"{name}.pad")
    return layers.AveragePooling2D(pool_size, strides=stride or pool_size, name=name)(x)


ACTIVATIONS = {
    "relu": "relu",
    "relu6": keras.activations.relu6,
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "silu": "silu",
    # PyTorch's Hardswish/Hardsigmoid: x * relu6(x + 3) / 6 and relu6(x + 3) / 6.
    "hardswish": keras.activations.hard_swish,
    "hardsigmoid": keras.activations.hard_sigmoid,
}


def activation(x, kind: str, *, name: str):
    return layers.Activation(ACTIVATIONS[kind], name=name)(x)


class GroupedConv2D(layers.Conv2D):
    """`layers.Conv2D(groups=g)` without Keras' XLA detour.

    Keras' TensorFlow backend runs every grouped convolution through a `tf.function(jit_compile=True)`
    it defines inside `conv()`, so each eager call (and each gradient) compiles anew: about ten
    seconds per training step of a small ShuffleNet on CPU. Here a 1x1 grouped convolution is one
    batched matmul and a larger one a convolution per group. Kernel and weights are those of
    `Conv2D(groups=g)` (HWIO with I = in/g), so the canonical weight mapping is unchanged.
    """

    def convolution_op(self, inputs, kernel):
        groups = self.groups
        if groups == 1:
            return super().convolution_op(inputs, kernel)
        channels, filters = inputs.shape[-1], self.filters
        if tuple(self.kernel_size) == (1, 1) and tuple(self.strides) == (1, 1):
            n, h, w = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
            x = ops.reshape(inputs, (n, h, w, groups, channels // groups))
            # Output channel o = group * (filters / groups) + k, as in Conv2D(groups=g).
            k = ops.reshape(kernel, (channels // groups, groups, filters // groups))
            x = ops.einsum("nhwgi,igo->nhwgo", x, k)
            return ops.reshape(x, (n, h, w, filters))
        xs = ops.split(inputs, groups, axis=-1)
        ks = ops.split(kernel, groups, axis=-1)
        return ops.concatenate([
            ops.conv(x, k, strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)
            for x, k in zip(xs, ks)
        ], axis=-1)

