"""The MXNet Gluon backend: the contract's functions (`zoo.contract`). Inputs are NCHW.

Blocks mirror the PyTorch modules' structure and child names, so Gluon's structured parameter
names are the canonical names once BatchNorm's gamma/beta are called weight/bias.
"""
from __future__ import annotations

import gc
import warnings
from typing import Mapping

from . import _compat  # noqa: F401  (must run before mxnet is imported)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import gluon  # noqa: E402

from zoo.contract import family_builder  # noqa: E402
from zoo.inputs import (InputSignature, check_images, check_input_shape, check_labels, check_model,  # noqa: E402
                        model_classes)
from zoo.registry import FamilyConfig, ModelSpec  # noqa: E402
from zoo.weights import check_mapping  # noqa: E402

from .families import FAMILIES  # noqa: E402
from .training import forward_backward  # noqa: E402

FRAMEWORK = "mxnet"
LAYOUT = "NCHW"
_GLUON_TO_CANONICAL = {"gamma": "weight", "beta": "bias"}

# The input check is a pre-hook on the top-level block, which Block.__call__ runs before the cached
# graph, hybridized or not; Gluon's warning is about hooks on child blocks inside a hybridized graph.
warnings.filterwarnings("ignore", message=r'(?s)".*" is being hybridized while still having forward hook')


def version() -> str:
    return mx.__version__


def build_model(spec: ModelSpec, config: FamilyConfig, *, num_classes: int, in_channels: int,
                signature: InputSignature, dtype: str = "float32") -> gluon.HybridBlock:
    model = family_builder(FAMILIES, FRAMEWORK, spec.family)(config, num_classes=num_classes, in_channels=in_channels)
    model.initialize(mx.init.Xavier())
    if dtype != "float32":
        model.cast(dtype)
    deferred = [name for name, p in model.collect_params().items() if p._deferred_init]
    if deferred:
        raise RuntimeError(f"{spec.name}: parameters left with unknown shapes: {', '.join(deferred)}")
    model.zoo_name = spec.name
    model.zoo_signature = signature
    # Checked by a hook, once at the edge, so that `hybrid_forward` stays free of input asserts.
    model.register_forward_pre_hook(_check_input)
    return model


def _dtype(model: gluon.Block):
    return next(iter(model.collect_params().values())).dtype


def _inputs(model: gluon.Block, images: np.ndarray) -> mx.nd.NDArray:
    """A numpy NCHW batch, checked whole at the edge (`zoo.inputs.check_images`), as an NDArray of the
    model's dtype."""
    check_model(model, gluon.Block, FRAMEWORK)
    images = check_images(images, getattr(model, "zoo_signature", None))
    return mx.nd.array(images, dtype=_dtype(model))


def _check_input(block: gluon.Block, inputs: tuple) -> None:
    if inputs and isinstance(inputs[0], mx.nd.NDArray):
        block.zoo_signature.check(inputs[0].shape, LAYOUT)


def canonical_parameters(model: gluon.Block) -> dict[str, gluon.Parameter]:
    """Canonical name -> Gluon parameter."""
    found = {}
    for name, param in model._collect_params_with_prefix().items():
        head, _, leaf = name.rpartition(".")
        leaf = _GLUON_TO_CANONICAL.get(leaf, leaf)
        found[f"{head}.{leaf}" if head else leaf] = param
    return found


def count_parameters(model: gluon.Block) -> tuple[int, int]:
    """(trainable parameters, all parameters including BatchNorm running statistics)."""
    params = list(model.collect_params().values())
    trainable = sum(int(np.prod(p.shape)) for p in params if p.grad_req != "null")
    total = sum(int(np.prod(p.shape)) for p in params)
    return trainable, total


def export_weights(model: gluon.Block) -> dict[str, np.ndarray]:
    check_model(model, gluon.Block, FRAMEWORK)
    return {name: param.data().asnumpy().copy() for name, param in canonical_parameters(model).items()}


def load_weights(model: gluon.Block, mapping: Mapping[str, np.ndarray]) -> None:
    """Load a canonical mapping whole or not at all: one error names every missing, unexpected,
    mis-shaped and mis-typed tensor, and leaves the model as it was."""
    check_model(model, gluon.Block, FRAMEWORK)
    params = canonical_parameters(model)
    arrays = check_mapping({name: tuple(p.shape) for name, p in params.items()}, mapping,
                           getattr(model, "zoo_name", "model"))
    # Every tensor is converted before the first one is written, so nothing can fail halfway.
    values = {name: mx.nd.array(arrays[name], dtype=param.dtype) for name, param in params.items()}
    for name, param in params.items():
        param.set_data(values[name])


def predict(model: gluon.Block, images: np.ndarray) -> np.ndarray:
    """Logits for an NCHW batch of finite real numbers, in inference mode."""
    return model(_inputs(model, images)).asnumpy()


def infer_output_shape(model: gluon.HybridBlock, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape for an NCHW input shape, inferred on the symbolic graph (no arithmetic is done)."""
    check_model(model, gluon.HybridBlock, FRAMEWORK)
    input_shape = check_input_shape(input_shape, getattr(model, "zoo_signature", None))
    _, out_shapes, _ = model(mx.sym.var("data", dtype=_dtype(model))).infer_shape(data=tuple(input_shape))
    return tuple(out_shapes[0])

def loss_gradients(model: gluon.Block, images: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Cross-entropy of one training-mode forward pass and its gradient for every trainable canonical tensor."""
    x = _inputs(model, images)
    params = {name: p for name, p in canonical_parameters(model).items() if p.grad_req != "null"}
    y = mx.nd.array(check_labels(labels, x.shape[0], model_classes(model)), dtype=x.dtype)
    loss = forward_backward(model, x, y)
    return float(loss.asscalar()), {name: p.grad().asnumpy().copy() for name, p in params.items()}


def release_memory() -> None:
    gc.collect()


def bench_runner(device: str, options: dict):
    from .bench import Runner

    return Runner(device, options)
