"""Shared by the reference tests (-m reference): random weights for Keras and Gluon reference models
(PyTorch ones take zoo_torch.randomize), and the comparison of logits with a reference's."""
from __future__ import annotations

import functools

import numpy as np

import zoo
from compare.crosscheck import relative_error

# The bound: relative error (norm of the difference over norm of the reference) and the same top-1.
RTOL = 1e-4


def _bn_values(rng, name: str, shape) -> np.ndarray | None:
    """BatchNorm terms drawn away from their 0/1 defaults, which would hide mapping errors."""
    if len(shape) != 1:
        return None  # a convolution's or dense layer's kernel, whose Gluon name also ends in "weight"
    for suffixes, low, high in ((("gamma", "weight"), 0.5, 1.5), (("beta", "bias"), -0.2, 0.2),
                                (("moving_mean", "running_mean"), -0.2, 0.2),
                                (("moving_variance", "running_var"), 0.5, 1.5)):
        if name.endswith(suffixes):
            return rng.uniform(low, high, shape).astype(np.float32)
    return None


def _weight(rng, shape, fan_in: int) -> np.ndarray:
    if len(shape) <= 1:
        return rng.uniform(-0.1, 0.1, shape).astype(np.float32)
    return (rng.standard_normal(shape) * (1.0 / max(fan_in, 1)) ** 0.5).astype(np.float32)


def randomize_keras(model, seed: int = 0):
    """Every weight of a Keras model random, BatchNorm statistics included; preprocessing layers
    (Rescaling, Normalization) keep theirs."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights or isinstance(layer, keras.layers.Normalization):
            continue
        values = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if isinstance(layer, keras.layers.BatchNormalization):
                values.append(_bn_values(rng, variable.path, shape))
                continue
            if isinstance(layer, keras.layers.DepthwiseConv2D) and len(shape) == 4:
                fan_in = shape[0] * shape[1]
            else:
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            values.append(_weight(rng, shape, fan_in))
        layer.set_weights(values)
    return model


def randomize_gluon(net, seed: int = 0):
    """Every parameter of an initialised Gluon network random, BatchNorm running statistics included."""
    import mxnet as mx

    rng = np.random.default_rng(seed)
    for name, param in net.collect_params().items():
        shape = param.shape
        value = _bn_values(rng, name, shape)
        if value is None:
            value = _weight(rng, shape, int(np.prod(shape[1:])) if len(shape) > 1 else 1)
        param.set_data(mx.nd.array(value))
    return net


def images(batch: int = 2, size: int = 64, channels: int = 3, seed: int = 0) -> np.ndarray:
    """NCHW float32 test images."""
    return np.random.default_rng(seed).standard_normal((batch, channels, size, size)).astype(np.float32)


def assert_logits_match(ours: np.ndarray, theirs: np.ndarray, what: str, rtol: float = RTOL) -> float:
    """Relative error within `rtol` and the same top-1 for every image; returns the error."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: logits of shape {ours.shape}, the reference's {theirs.shape}"
    error = relative_error(ours, theirs)
    assert error <= rtol, f"{what}: relative error {error:.2e} > {rtol:.0e}"
    assert (ours.argmax(1) == theirs.argmax(1)).all(), f"{what}: top-1 differs"
    return error


def zoo_logits(conversion, framework: str, batch: np.ndarray) -> np.ndarray:
    """The logits of the converted model built in `framework` (NCHW numpy in, through the contract)."""
    model = conversion.create(framework)
    return np.asarray(zoo.backend(framework).predict(model, batch))


def compare_frameworks(conversion, theirs: np.ndarray, frameworks, what: str, batch: np.ndarray) -> dict[str, float]:
    """`assert_logits_match` of the converted model in each of `frameworks`; the errors by framework."""
    return {framework: assert_logits_match(zoo_logits(conversion, framework, batch), theirs, f"{what} in {framework}")
            for framework in frameworks}


@functools.lru_cache(maxsize=1)  # the tests of one reference run one after another (model-major): one build
def timm_reference(name: str, size: int) -> tuple:
    """(the conversion, the logits on `images(size=size)`) of timm's `name` with random weights."""
    import timm
    import torch

    import zoo.convert
    import zoo_torch

    model = zoo_torch.randomize(timm.create_model(name, pretrained=False), seed=1).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(images(size=size))).numpy()
    return zoo.convert.from_timm(model), logits
