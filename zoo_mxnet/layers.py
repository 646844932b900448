"""Gluon blocks that compute exactly what their PyTorch counterparts compute."""
from __future__ import annotations

from mxnet.gluon import nn


# --- Elementwise activations and global pooling through oneDNN. ---
# MXNet's CPU backend (oneDNN) keeps feature maps in its blocked memory layout only through its own
# operators. `Activation` and `Pooling` are among them; `relu`, `sigmoid`, `mean` and the contrib
# adaptive pooling are not, and each of those pays a reorder to NCHW and back (ResNet-50 ran 25%
# slower with `F.relu`). The results are the same either way.

def relu(F, x):
    return F.Activation(x, act_type="relu")


def sigmoid(F, x):
    return F.Activation(x, act_type="sigmoid")


def global_avg_pool(F, x):
    """(N, C, H, W) -> (N, C, 1, 1)."""
    return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg")


# --- Classic CNNs (AlexNet, VGG, NiN, GoogLeNet): adaptive average pool, ceil-mode max pool, LRN. ---

class AdaptiveAvgPool2D(nn.HybridBlock):
    """`nn.AdaptiveAvgPool2d(output_size)`: MXNet's contrib operator uses PyTorch's bins
    [floor(i*H/out), ceil((i+1)*H/out)), also for maps smaller than the output."""

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self._output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def hybrid_forward(self, F, x):
        return F.contrib.AdaptiveAvgPooling2D(x, output_size=self._output_size)


class CeilMaxPool2D(nn.HybridBlock):
    """`nn.MaxPool2d(kernel, stride, ceil_mode=True)` without padding, for kernel >= stride.

    MXNet's pooling_convention="full" gives the same windows but refuses inputs smaller than the kernel,
    which PyTorch accepts. Padding the bottom/right with stride - 1 rows of -inf and pooling with
    floor ("valid") gives ceil((H - k) / s) + 1 windows for every H PyTorch accepts; with no padding
    and kernel >= stride no window starts past the input, so PyTorch's rule that drops one never applies.
    """

    def __init__(self, kernel: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        if kernel < stride:
            raise ValueError(f"CeilMaxPool2D needs kernel >= stride, got kernel {kernel}, stride {stride}")
        self._kernel, self._stride = kernel, stride

    def hybrid_forward(self, F, x):
        extra = self._stride - 1
        if extra:
            x = F.pad(x, mode="constant", constant_value=float("-inf"), pad_width=(0, 0, 0, 0, 0, extra, 0, extra))
        return F.Pooling(x, kernel=(self._kernel,) * 2, stride=(self._stride,) * 2, pool_type="max",
                         pooling_convention="valid")


class LocalResponseNorm(nn.HybridBlock):
    """Local response normalisation across channels with the paper's alpha (Krizhevsky et al. 2012);
    MXNet's LRN, like PyTorch's, divides its alpha by the window size, so it gets alpha * size."""

    def __init__(self, size: int, alpha: float, beta: float, k: float, **kwargs):
        super().__init__(**kwargs)
        self._size, self._alpha, self._beta, self._k = size, alpha, beta, k
        self._dtype = "float32"

    def cast(self, dtype):
        self._dtype = dtype
        super().cast(dtype)

    def hybrid_forward(self, F, x):
        if self._dtype == "float32":
            return F.LRN(x, alpha=self._alpha * self._size, beta=self._beta, knorm=self._k, nsize=self._size)
        # MXNet's LRN kernel is float32 only: sum the squares over the channel window with a pooling.
        squares = F.expand_dims(F.square(x), axis=1)
        window = F.Pooling(squares, kernel=(self._size, 1, 1), stride=(1, 1, 1), pad=(self._size // 2, 0, 0),
                           pool_type="sum")
        return x / (self._k + self._alpha * F.squeeze(window, axis=1)) ** self._beta
