"""Arithmetic the papers share, written once for every framework."""
from __future__ import annotations

import math
from typing import Callable


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of `divisor`, never going more than 10% below it.

    The rule of the TensorFlow MobileNet and EfficientNet reference code, kept so that widths (and so
    parameter counts) equal the references for every width multiplier.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def round_filters(channels: int, width_mult: float, divisor: int = 8) -> int:
    """EfficientNet's compound scaling of a stage's width."""
    return make_divisible(channels * width_mult, divisor)


def round_repeats(repeats: int, depth_mult: float) -> int:
    """EfficientNet's compound scaling of a stage's depth."""
    return int(math.ceil(repeats * depth_mult))


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, ceil_mode: bool = False) -> int:
    """Spatial size after a convolution or pooling window, with PyTorch's rule for `ceil_mode`."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch drops a last window that would start in the right padding only.
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def stem_out(size: int, conv: tuple[int, int, int], pool: tuple[int, int, int] | None = None) -> int:
    """Spatial size after a stem of one (kernel, stride, padding) convolution and an optional max pool."""
    size = conv_out(size, *conv)
    return conv_out(size, *pool) if pool else size


def smallest_input(feature_size: Callable[[int], int]) -> int:
    """Smallest height (= width) for which `feature_size(size)`, a network's last map, is non-empty."""
    size = 1
    while feature_size(size) < 1:
        size += 1
    return size
