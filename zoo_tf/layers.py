"""Keras building blocks that compute exactly what their PyTorch counterparts compute.

PyTorch pads symmetrically; Keras' `padding="same"` pads bottom/right first for stride 2 and even
sizes. So padded convolutions and poolings pad explicitly and then run `valid`, except stride-1
convolutions padded by (k - 1) / 2, where the two agree: there "same" spares a padded copy of the
map (MobileNet V2 ran 7% faster with it, its depthwise convolutions most of all).
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


def _pads_as_same(kernel_size, stride, padding, dilation: int) -> bool:
    """Whether PyTorch's symmetric `padding` is Keras' "same": stride 1 and (k - 1) * dilation / 2 a side."""
    kernels = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    strides = (stride,) * 2 if isinstance(stride, int) else tuple(stride)
    sides = [before for before, _ in _pairs(padding)]
    return strides == (1, 1) and all((k - 1) * dilation == 2 * p for k, p in zip(kernels, sides))


def conv2d(x, filters: int, kernel_size, *, name: str, stride=1, padding=0, groups: int = 1,
           dilation: int = 1, use_bias: bool = True):
    """`nn.Conv2d(in, filters, kernel_size, stride, padding, groups=groups, bias=use_bias)`; `padding="same"`
    is TensorFlow's own (bottom/right first), for the families that have it as a knob."""
    same = padding == "same" or (padding not in (0, (0, 0)) and _pads_as_same(kernel_size, stride, padding, dilation))
    if not same:
        x = pad(x, padding, name=f"{name}.pad")
    mode = "same" if same else "valid"
    channels = x.shape[-1]
    if groups > 1 and groups == channels and filters % channels == 0:
        return layers.DepthwiseConv2D(kernel_size, strides=stride, padding=mode,
                                      depth_multiplier=filters // channels, dilation_rate=dilation,
                                      use_bias=use_bias, name=name)(x)
    conv = GroupedConv2D if groups > 1 else layers.Conv2D
    return conv(filters, kernel_size, strides=stride, padding=mode, groups=groups, dilation_rate=dilation,
                use_bias=use_bias, name=name)(x)


class BatchNorm(layers.BatchNormalization):
    """Keras' BatchNormalization with PyTorch's moving variance.

    Both normalise a training batch by its biased variance, but PyTorch folds the unbiased one
    (n / (n - 1) times larger) into its running estimate and Keras the biased one; without this,
    the same training run leaves different statistics for inference.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or self.renorm or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        previous = ops.copy(self.moving_variance)
        outputs = super().call(inputs, training=training, mask=mask)
        values = ops.cast(ops.prod(ops.shape(inputs)[:-1]), previous.dtype)
        folded = self.moving_variance - previous * self.momentum  # (1 - momentum) * biased variance
        self.moving_variance.assign(previous * self.momentum + folded * values / ops.maximum(values - 1.0, 1.0))
        return outputs


def batch_norm(x, *, name: str, eps: float = 1e-5, momentum: float = 0.1):
    """`nn.BatchNorm2d(eps=eps, momentum=momentum)`: Keras' momentum weighs the old statistic, PyTorch's the new."""
    return BatchNorm(axis=-1, epsilon=eps, momentum=1.0 - momentum, name=name)(x)


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

# --- Classic CNNs (AlexNet, VGG, NiN, GoogLeNet): adaptive average pool, ceil-mode max pool, LRN. ---

def _adaptive_bins(size, out: int):
    """(out, size) averaging matrix of PyTorch's adaptive pool: bin i spans [floor(i*size/out), ceil((i+1)*size/out)).

    Works on a dynamic `size` (a scalar tensor), so the pool needs no static height or width; bins overlap
    where size is not a multiple of out, and repeat a pixel where size < out.
    """
    import tensorflow as tf

    size = tf.cast(size, tf.int32)
    i = tf.range(out, dtype=tf.int32)
    start = (i * size) // out
    end = ((i + 1) * size + out - 1) // out
    j = tf.range(size, dtype=tf.int32)[None, :]
    inside = tf.logical_and(j >= start[:, None], j < end[:, None])
    return tf.cast(inside, tf.float32) / tf.cast(end - start, tf.float32)[:, None]


class AdaptiveAvgPool2D(layers.Layer):
    """`nn.AdaptiveAvgPool2d(output_size)` on NHWC maps of any (also unknown) height and width."""

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def call(self, x):
        import tensorflow as tf

        oh, ow = self.output_size
        if (oh, ow) == (1, 1):
            return tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        shape = tf.shape(x)
        rows = tf.cast(_adaptive_bins(shape[1], oh), x.dtype)
        cols = tf.cast(_adaptive_bins(shape[2], ow), x.dtype)
        # Two small matrix products: pooling is linear, and separable in height and width.
        x = tf.einsum("ph,nhwc->npwc", rows, x)
        return tf.einsum("qw,npwc->npqc", cols, x)

    def compute_output_shape(self, shape):
        return (shape[0], *self.output_size, shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


def adaptive_avg_pool(x, output_size, *, name: str):
    return AdaptiveAvgPool2D(output_size, name=name)(x)


def _ceil_pool_size(size, kernel: int, stride: int, padding: int, as_int=int):
    """PyTorch's ceil_mode output size (as zoo.arith.conv_out), for an int or a scalar int tensor `size`."""
    out = -((-(size + 2 * padding - kernel)) // stride) + 1
    # A last window starting in the right padding is dropped.
    return out - as_int((out - 1) * stride >= size + padding)


class CeilModePad2D(layers.Layer):
    """Pad an NHWC map with -inf so that a `valid` max pool gives PyTorch's ceil_mode=True windows.

    PyTorch's symmetric `padding` goes on both sides; the extra rows/columns a ceil-mode last window reaches
    past the input go at the bottom/right. Sizes may be unknown until the call.
    """

    def __init__(self, pool_size: int, stride: int, padding: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.stride, self.padding = pool_size, stride, padding

    def _extra(self, size, as_int=int):
        out = _ceil_pool_size(size, self.pool_size, self.stride, self.padding, as_int)
        return (out - 1) * self.stride + self.pool_size - (size + 2 * self.padding)

    def call(self, x):
        import tensorflow as tf

        shape = tf.shape(x)
        p = self.padding
        def as_int(flag):
            return tf.cast(flag, tf.int32)

        extra_h = tf.maximum(self._extra(shape[1], as_int), 0)
        extra_w = tf.maximum(self._extra(shape[2], as_int), 0)
        paddings = [[0, 0], [p, p + extra_h], [p, p + extra_w], [0, 0]]
        return tf.pad(x, paddings, constant_values=float("-inf"))

    def compute_output_shape(self, shape):
        def grow(size):
            if size is None:
                return None
            return size + 2 * self.padding + max(self._extra(size), 0)
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "stride": self.stride, "padding": self.padding}


def max_pool_ceil(x, pool_size: int, *, name: str, stride: int | None = None, padding: int = 0):
    """`nn.MaxPool2d(pool_size, stride, padding, ceil_mode=True)`."""
    stride = stride or pool_size
    x = CeilModePad2D(pool_size, stride, padding, name=f"{name}.pad")(x)
    return layers.MaxPooling2D(pool_size, strides=stride, name=name)(x)


class LocalResponseNorm(layers.Layer):
    """Local response normalisation across channels: x / (k + alpha * sum over `size` channels of x^2)^beta.

    `alpha` is the paper's (Krizhevsky et al. 2012), as TensorFlow's; PyTorch's LocalResponseNorm takes
    alpha * size. `size` is odd, the window centred on each channel.
    """

    def __init__(self, size: int, alpha: float, beta: float, k: float, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, x):
        import tensorflow as tf

        if x.dtype != tf.float64:
            return tf.nn.local_response_normalization(x, depth_radius=self.size // 2, bias=self.k,
                                                      alpha=self.alpha, beta=self.beta)
        # TensorFlow's LRN kernel has no float64 version: window sums of squares from a cumulative sum.
        radius, channels = self.size // 2, x.shape[-1]
        squares = ops.pad(ops.square(x), ((0, 0), (0, 0), (0, 0), (radius + 1, radius)))
        running = ops.cumsum(squares, axis=-1)
        window = running[..., self.size:self.size + channels] - running[..., :channels]
        return x / ops.power(self.k + self.alpha * window, self.beta)

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
