"""Flax NNX building blocks that compute exactly what their PyTorch counterparts compute, on NHWC maps.

Every module is named after the `torch.nn` module it mirrors and takes the same arguments (plus
`rngs` where it draws random numbers), so a family's JAX builder reads line for line like its
PyTorch one and its module tree, hence its canonical weight names, is the same. Weights are kept in
Flax's layouts (convolution kernels HWIO, dense kernels (in, out)); `canonical()` says how each
converts to PyTorch's.

PyTorch pads symmetrically: convolutions and pools here take explicit (before, after) padding, not
XLA's "SAME", which pads the bottom/right first for stride 2 (a convolution takes "same" only where a
family's `padding` knob asks for TensorFlow's padding).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

Convert = Callable[[np.ndarray], np.ndarray]
# local name (PyTorch's) -> (variable, Flax layout -> PyTorch layout, PyTorch layout -> Flax layout)
Canonical = dict[str, tuple[nnx.Variable, Convert, Convert]]

_RECORDER: dict[int, tuple[int, ...]] | None = None


def _same(array: np.ndarray) -> np.ndarray:
    return array


def _pairs(value: int | Sequence) -> tuple[tuple[int, int], tuple[int, int]]:
    """An int, (ph, pw) or ((top, bottom), (left, right)) as ((top, bottom), (left, right))."""
    if isinstance(value, int):
        return (value, value), (value, value)
    first, second = value
    if isinstance(first, int):
        return (first, first), (second, second)
    return tuple(first), tuple(second)


def _two(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


# ---------------------------------------------------------------- initial weights

def on_device(values, dtype=np.float32) -> jax.Array:
    """A host array as a JAX array of `dtype` on the default device.

    `jax.device_put`, not `jnp.asarray`: in jax 0.10 the latter compiles a copy for every new shape
    (12 ms each), which made building DenseNet-BC-250, hundreds of shapes, take 9.5 s instead of 1.1.
    """
    return jax.device_put(np.asarray(values, dtype))


def fill(variable: nnx.Variable, value: float) -> None:
    """Set every element of `variable` to `value` (an initialiser's constant), keeping its shape and dtype."""
    array = variable[...]
    variable.set_value(on_device(np.full(array.shape, value), array.dtype))


# The seed of every model's initialisation (the `params` stream) and of its dropout masks, so that a model is
# built the same every time.
SEED = 0


def init_rngs() -> nnx.Rngs:
    """The random streams every family's builder starts from."""
    return nnx.Rngs(params=SEED, dropout=SEED + 1)


def host_random(rngs: nnx.Rngs) -> np.random.Generator:
    """A NumPy generator seeded from the `params` stream of `rngs`.

    Initial weights are drawn on the host: `jax.random` compiles one XLA program per distinct weight
    shape, which made building a ResNet take half a minute, for numbers used once.
    """
    return np.random.default_rng(np.asarray(jax.random.key_data(rngs.params())))


def uniform(rngs: nnx.Rngs, shape, low: float, high: float) -> jnp.ndarray:
    values = host_random(rngs).random(shape, dtype=np.float32)  # drawn in float32: VGG's 138M weights
    values *= high - low
    values += low
    return on_device(values)


def normal(rngs: nnx.Rngs, shape, std: float = 1.0) -> jnp.ndarray:
    values = host_random(rngs).standard_normal(shape, dtype=np.float32)
    values *= std
    return on_device(values)


def truncated_normal(rngs: nnx.Rngs, shape, std: float, low: float, high: float) -> jnp.ndarray:
    """Normal(0, std) restricted to [low, high] (in units of the values, not of std), by redrawing."""
    generator = host_random(rngs)
    values = generator.normal(0.0, std, shape)
    outside = (values < low) | (values > high)
    while outside.any():
        values[outside] = generator.normal(0.0, std, int(outside.sum()))
        outside = (values < low) | (values > high)
    return on_device(values)


def fans(kernel: nnx.Variable) -> tuple[int, int]:
    """(fan_in, fan_out) of an HWIO convolution or (in, out) dense kernel, as torch.nn.init computes them."""
    shape = kernel[...].shape
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Layer(nnx.Module):
    """A leaf module: `forward` computes, `__call__` also records the output shape for `layer_shapes`."""

    def __call__(self, x):
        out = self.forward(x)
        if _RECORDER is not None:
            _RECORDER[id(self)] = tuple(out.shape)
        return out

    def forward(self, x):
        raise NotImplementedError

    def canonical(self) -> Canonical:
        return {}


class recording:
    """Within it, every Layer call records its output shape by module id (see `zoo_jax.layer_shapes`)."""

    def __enter__(self) -> dict[int, tuple[int, ...]]:
        global _RECORDER
        self.previous, _RECORDER = _RECORDER, {}
        return _RECORDER

    def __exit__(self, *exc) -> None:
        global _RECORDER
        _RECORDER = self.previous


# ---------------------------------------------------------------- containers

class Sequential(nnx.List):
    """`nn.Sequential`: children named 0, 1, ... in canonical names.

    An `nnx.List`, the container Flax 0.12 takes for a sequence of submodules (a plain list attribute is
    static data there), so Flax's own paths to the children are their indices too.
    """

    def __init__(self, *layers) -> None:
        super().__init__(layers)

    def __call__(self, x):
        for layer in self:
            x = layer(x)
        return x


class Identity(Layer):
    def forward(self, x):
        return x


# ---------------------------------------------------------------- layers with weights

class Conv2d(Layer):
    """`nn.Conv2d(in, out, kernel_size, stride, padding, dilation, groups, bias)`; kernel HWIO.

    `padding` may also be ((top, bottom), (left, right)), for references that pad asymmetrically, or
    "same": XLA's (TensorFlow's) "SAME", from each input's size, for the families that have it as a knob.
    Initialised as PyTorch's default (Kaiming-uniform with a = sqrt(5)); families re-initialise as
    their reference does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, *, rngs: nnx.Rngs) -> None:
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must be divisible "
                             f"by groups {groups}")
        kh, kw = _two(kernel_size)
        self.stride, self.dilation, self.groups = _two(stride), _two(dilation), groups
        self.padding = "SAME" if padding == "same" else _pairs(padding)
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        self.kernel = nnx.Param(uniform(rngs, (kh, kw, in_channels // groups, out_channels), -bound, bound))
        self.bias = nnx.Param(uniform(rngs, (out_channels,), -bound, bound)) if bias else None

    def forward(self, x):
        y = lax.conv_general_dilated(
            x, self.kernel[...].astype(x.dtype), window_strides=self.stride, padding=self.padding,
            rhs_dilation=self.dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=self.groups)
        if self.bias is not None:
            y = y + self.bias[...].astype(x.dtype)
        return y

    def canonical(self) -> Canonical:
        # HWIO <-> OIHW; for a grouped kernel I is in/groups in both, so depthwise (C, 1, kH, kW) is covered.
        entries = {"weight": (self.kernel, lambda k: k.transpose(3, 2, 0, 1), lambda w: w.transpose(2, 3, 1, 0))}
        if self.bias is not None:
            entries["bias"] = (self.bias, _same, _same)
        return entries


class Linear(Layer):
    """`nn.Linear(in, out, bias)`; kernel (in, out), PyTorch's (out, in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rngs: nnx.Rngs) -> None:
        bound = 1.0 / math.sqrt(in_features)
        self.kernel = nnx.Param(uniform(rngs, (in_features, out_features), -bound, bound))
        self.bias = nnx.Param(uniform(rngs, (out_features,), -bound, bound)) if bias else None

    def forward(self, x):
        y = x @ self.kernel[...].astype(x.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(x.dtype)
        return y

    def canonical(self) -> Canonical:
        entries = {"weight": (self.kernel, lambda k: k.T, lambda w: w.T)}
        if self.bias is not None:
            entries["bias"] = (self.bias, _same, _same)
        return entries


class BatchNorm2d(Layer):
    """`nn.BatchNorm2d(num_features, eps, momentum)` on NHWC maps.

    `momentum` is PyTorch's (the weight of the new statistic); Flax's convention weighs the old one,
    and is what is stored. In training a batch is normalised by its biased variance and the running
    variance takes the unbiased one, as PyTorch does (nnx.BatchNorm would take the biased one).
    `model.eval()` sets `use_running_average`.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.epsilon = eps
        self.momentum = 1.0 - momentum
        self.use_running_average = False
        self.scale = nnx.Param(on_device(np.ones(num_features)))
        self.bias = nnx.Param(on_device(np.zeros(num_features)))
        self.mean = nnx.BatchStat(on_device(np.zeros(num_features)))
        self.var = nnx.BatchStat(on_device(np.ones(num_features)))

    def forward(self, x):
        dtype = x.dtype
        if self.use_running_average:
            mean, var = self.mean[...].astype(dtype), self.var[...].astype(dtype)
        else:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            count = math.prod(x.shape[:-1])
            unbiased = var * (count / max(count - 1, 1))
            m = self.momentum
            self.mean.set_value((m * self.mean[...] + (1.0 - m) * mean).astype(self.mean[...].dtype))
            self.var.set_value((m * self.var[...] + (1.0 - m) * unbiased).astype(self.var[...].dtype))
        inv = lax.rsqrt(var + self.epsilon) * self.scale[...].astype(dtype)
        return (x - mean) * inv + self.bias[...].astype(dtype)

    def canonical(self) -> Canonical:
        return {"weight": (self.scale, _same, _same), "bias": (self.bias, _same, _same),
                "running_mean": (self.mean, _same, _same), "running_var": (self.var, _same, _same)}


# ---------------------------------------------------------------- activations

class _Activation(Layer):
    fn: Callable = staticmethod(lambda x: x)

    def forward(self, x):
        return type(self).fn(x)


def _activation(name: str, fn: Callable) -> type:
    return type(name, (_Activation,), {"fn": staticmethod(fn), "__doc__": f"`nn.{name}()`."})


def _relu6(x):
    return jnp.clip(x, 0.0, 6.0)


ReLU = _activation("ReLU", jax.nn.relu)
ReLU6 = _activation("ReLU6", _relu6)
Tanh = _activation("Tanh", jnp.tanh)
Sigmoid = _activation("Sigmoid", jax.nn.sigmoid)
SiLU = _activation("SiLU", jax.nn.silu)
# PyTorch's: x * relu6(x + 3) / 6 and relu6(x + 3) / 6 (jax.nn.hard_swish is the same formula).
Hardswish = _activation("Hardswish", lambda x: x * _relu6(x + 3.0) / 6.0)
Hardsigmoid = _activation("Hardsigmoid", lambda x: _relu6(x + 3.0) / 6.0)

ACTIVATIONS = {"relu": ReLU, "relu6": ReLU6, "tanh": Tanh, "sigmoid": Sigmoid, "silu": SiLU,
               "hardswish": Hardswish, "hardsigmoid": Hardsigmoid}


# ---------------------------------------------------------------- pooling

def _ceil_extra(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Rows past the symmetric padding that PyTorch's ceil_mode=True last window reaches."""
    span = dilation * (kernel - 1) + 1
    out = -(-(size + 2 * padding - span) // stride) + 1
    if (out - 1) * stride >= size + padding:  # a last window starting in the right padding is dropped
        out -= 1
    return max((out - 1) * stride + span - (size + 2 * padding), 0)


def _pool_padding(x, kernel, stride, padding, ceil_mode: bool):
    (kh, kw), (sh, sw), ((pt, pb), (pl, pr)) = kernel, stride, padding
    if ceil_mode:
        pb += _ceil_extra(x.shape[1], kh, sh, pt)
        pr += _ceil_extra(x.shape[2], kw, sw, pl)
    return ((0, 0), (pt, pb), (pl, pr), (0, 0))


class MaxPool2d(Layer):
    """`nn.MaxPool2d(kernel_size, stride, padding, ceil_mode)`: padding counts as -inf."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> None:
        self.kernel_size = _two(kernel_size)
        self.stride = _two(stride) if stride is not None else self.kernel_size
        self.padding, self.ceil_mode = _pairs(padding), ceil_mode

    def forward(self, x):
        pads = _pool_padding(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, *self.kernel_size, 1), (1, *self.stride, 1), pads)


class AvgPool2d(Layer):
    """`nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad)`.

    PyTorch divides by the window's extent clipped to the padded input: with count_include_pad the
    zero padding counts, the rows ceil_mode adds past it never do.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        self.kernel_size = _two(kernel_size)
        self.stride = _two(stride) if stride is not None else self.kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = _pairs(padding), ceil_mode, count_include_pad

    def forward(self, x):
        window, strides = (1, *self.kernel_size, 1), (1, *self.stride, 1)
        pads = _pool_padding(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        total = lax.reduce_window(x, 0.0, lax.add, window, strides, pads)
        if not self.ceil_mode and self.count_include_pad:
            return total / (self.kernel_size[0] * self.kernel_size[1])
        # Count the cells each window covers: ones over the input (and the padding, where it counts).
        (pt, pb), (pl, pr) = self.padding
        ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
        if self.count_include_pad:
            ones = jnp.pad(ones, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=1.0)
            pads = ((0, 0), (0, pads[1][1] - pb), (0, pads[2][1] - pr), (0, 0))
        count = lax.reduce_window(ones, 0.0, lax.add, window, strides, pads)
        return total / count


def _adaptive_bins(size: int, out: int, dtype) -> jnp.ndarray:
    """(out, size) averaging matrix of PyTorch's adaptive pool: bin i spans [floor(i*size/out), ceil((i+1)*size/out))."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return jnp.asarray(matrix, dtype)


class AdaptiveAvgPool2d(Layer):
    """`nn.AdaptiveAvgPool2d(output_size)`."""

    def __init__(self, output_size) -> None:
        self.output_size = _two(output_size)

    def forward(self, x):
        oh, ow = self.output_size
        h, w = x.shape[1], x.shape[2]
        if (oh, ow) == (1, 1):
            return jnp.mean(x, axis=(1, 2), keepdims=True)
        if (h, w) == (oh, ow):
            return x
        if h % oh == 0 and w % ow == 0:
            n, c = x.shape[0], x.shape[3]
            return x.reshape(n, oh, h // oh, ow, w // ow, c).mean(axis=(2, 4))
        # Pooling is linear and separable in height and width: two small matrix products.
        x = jnp.einsum("ph,nhwc->npwc", _adaptive_bins(h, oh, x.dtype), x)
        return jnp.einsum("qw,npwc->npqc", _adaptive_bins(w, ow, x.dtype), x)


class LocalResponseNorm(Layer):
    """`nn.LocalResponseNorm(size, alpha, beta, k)`: x / (k + alpha / size * sum of x^2 over `size` channels)^beta.

    PyTorch's window covers channels c - size//2 to c + (size-1)//2, zero beyond the edges.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        before, after = self.size // 2, (self.size - 1) // 2
        window = lax.reduce_window(jnp.square(x), 0.0, lax.add, (1, 1, 1, self.size), (1, 1, 1, 1),
                                   ((0, 0), (0, 0), (0, 0), (before, after)))
        return x / jnp.power(self.k + self.alpha / self.size * window, self.beta)


# ---------------------------------------------------------------- regularisation and reshaping

class Dropout(Layer):
    """`nn.Dropout(p)`: active in training (`model.train()`), the identity after `model.eval()`."""

    def __init__(self, p: float = 0.5, *, rngs: nnx.Rngs) -> None:
        self.p = p
        self.deterministic = False
        self.rngs = rngs

    def forward(self, x):
        if self.deterministic or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = jax.random.bernoulli(self.rngs.dropout(), keep, x.shape)
        return jnp.where(mask, x / keep, jnp.zeros_like(x))


class StochasticDepth(Layer):
    """torchvision.ops.StochasticDepth(p, "row"): drop a sample's residual branch with probability p in training."""

    def __init__(self, p: float, *, rngs: nnx.Rngs) -> None:
        self.p = p
        self.deterministic = False
        self.rngs = rngs

    def forward(self, x):
        if self.deterministic or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = jax.random.bernoulli(self.rngs.dropout(), survival, (x.shape[0], 1, 1, 1))
        return x * (noise.astype(x.dtype) / survival)


class Flatten(Layer):
    """`nn.Flatten()` / `x.flatten(1)` of an NHWC map in PyTorch's (C, H, W) order, so that the dense
    layer after it takes PyTorch's weights unpermuted."""

    def forward(self, x):
        if x.ndim == 4:
            x = jnp.transpose(x, (0, 3, 1, 2))
        return x.reshape(x.shape[0], -1)


def channel_shuffle(x, groups: int):
    """ShuffleNet's shuffle on NHWC: channel g * (C / groups) + k moves to k * groups + g, as in PyTorch."""
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4).reshape(n, h, w, c)


class ChannelShuffle(Layer):
    def __init__(self, groups: int) -> None:
        self.groups = groups

    def forward(self, x):
        return channel_shuffle(x, self.groups)


def flatten(x):
    """`x.flatten(1)` in PyTorch's order (see Flatten), for maps outside a Sequential."""
    return Flatten.forward(None, x)
