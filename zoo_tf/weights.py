"""Keras variables <-> canonical (PyTorch) names and layouts."""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np

Convert = Callable[[np.ndarray], np.ndarray]
# canonical name -> (variable, Keras layout -> PyTorch layout, PyTorch layout -> Keras layout)
VariableMap = dict[str, tuple[keras.Variable, Convert, Convert]]


def _same(array: np.ndarray) -> np.ndarray:
    return array


def _conv_to_torch(kernel: np.ndarray) -> np.ndarray:  # HWIO -> OIHW
    return kernel.transpose(3, 2, 0, 1)


def _conv_from_torch(weight: np.ndarray) -> np.ndarray:  # OIHW -> HWIO
    return weight.transpose(2, 3, 1, 0)


def _depthwise_converters(shape: tuple[int, ...]) -> tuple[Convert, Convert]:
    # Keras (kH, kW, C, M) holds output channel c*M + m, as PyTorch's (C*M, 1, kH, kW) does.
    kh, kw, channels, multiplier = shape

    def to_torch(kernel):
        return kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)

    def from_torch(weight):
        return weight.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1)

    return to_torch, from_torch


def _dense_converters(layer: keras.layers.Dense) -> tuple[Convert, Convert]:
    """Dense kernels are (in, out); PyTorch's are (out, in).

    A dense layer fed straight by a Flatten of an (H, W, C) map sees its inputs in NHWC order,
    while PyTorch flattens NCHW: such a kernel is permuted as well.
    """
    source = layer.input._keras_history.operation
    flat_shape = None
    if isinstance(source, keras.layers.Flatten):
        h, w, c = source.input.shape[1:]
        if h * w > 1:
            flat_shape = (h, w, c)
    if flat_shape is None:
        return (lambda k: k.T), (lambda w: w.T)
    h, w, c = flat_shape

    def to_torch(kernel):
        out = kernel.shape[1]
        return kernel.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, c * h * w)

    def from_torch(weight):
        out = weight.shape[0]
        return weight.reshape(out, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, out)

    return to_torch, from_torch


def layer_variables(layer: keras.layers.Layer) -> VariableMap:
    """The canonical tensors one layer holds; a custom layer may define `canonical_variables()`."""
    prefix = layer.name
    if hasattr(layer, "canonical_variables"):
        return layer.canonical_variables()
    found: VariableMap = {}
    if isinstance(layer, keras.layers.BatchNormalization):
        for attr, key in (("gamma", "weight"), ("beta", "bias"),
                          ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            variable = getattr(layer, attr, None)
            if variable is not None:
                found[f"{prefix}.{key}"] = (variable, _same, _same)
        return found
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        found[f"{prefix}.weight"] = (layer.kernel, *_depthwise_converters(tuple(layer.kernel.shape)))
    elif isinstance(layer, keras.layers.Conv2D):
        found[f"{prefix}.weight"] = (layer.kernel, _conv_to_torch, _conv_from_torch)
    elif isinstance(layer, keras.layers.Dense):
        found[f"{prefix}.weight"] = (layer.kernel, *_dense_converters(layer))
    elif layer.weights:
        raise TypeError(f"layer {prefix!r} ({type(layer).__name__}) holds weights the canonical format has no rule for")
    if getattr(layer, "bias", None) is not None:
        found[f"{prefix}.bias"] = (layer.bias, _same, _same)
    return found


def canonical_variables(model: keras.Model) -> VariableMap:
    found: VariableMap = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested functional block
            found.update(canonical_variables(layer))
        else:
            found.update(layer_variables(layer))
    return found
