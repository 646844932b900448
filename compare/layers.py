"""Layer-by-layer view of a built model in any framework, under canonical (PyTorch module path) names.

TensorFlow layers are named after the PyTorch module they mirror and MXNet blocks mirror the PyTorch
module tree, so one name identifies a layer in all three. Shapes are reported without the batch
dimension and in PyTorch's order (C, H, W) for every framework; parameter counts come from each
backend's canonical weights (`export_weights`), grouped by the name before the last dot.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import zoo


@dataclass
class Layer:
    name: str
    kind: str = ""
    shape: tuple[int, ...] | None = None  # output without the batch dimension, (C, H, W) for maps
    params: int = 0                        # trainable
    state: int = 0                         # all canonical state (trainable + running statistics)


@dataclass
class LayerTable:
    framework: str
    layers: dict[str, Layer] = field(default_factory=dict)
    output_shape: tuple[int, ...] | None = None
    params: int = 0
    params_total: int = 0


def layer_table(framework: str, model, input_size: int, in_channels: int) -> LayerTable:
    """The layers of `model` (built by `zoo.create_model(..., framework)`) for one image of `input_size`."""
    shapes, kinds = _SHAPES[framework](model, (1, in_channels, input_size, input_size))
    backend = zoo.backend(framework)
    trainable_names = _TRAINABLE[framework](model)
    table = LayerTable(framework)
    table.params, table.params_total = backend.count_parameters(model)
    for name, shape in shapes.items():
        if name == "":
            table.output_shape = shape
            continue
        table.layers[name] = Layer(name, kinds.get(name, ""), shape)
    for key, array in backend.export_weights(model).items():
        owner = key.rpartition(".")[0]
        layer = table.layers.setdefault(owner, Layer(owner, kinds.get(owner, "")))
        layer.state += int(np.size(array))
        if key in trainable_names:
            layer.params += int(np.size(array))
    return table


# ---------------------------------------------------------------- PyTorch

def _torch_shapes(model, input_shape):
    import torch

    shapes: dict[str, tuple] = {}
    kinds: dict[str, str] = {}
    handles = []

    def hook_for(name):
        def hook(module, args, output):
            shape = _first_shape(output)
            if shape is not None:
                shapes[name] = tuple(shape[1:])
        return hook

    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            kinds[name] = type(module).__name__
            handles.append(module.register_forward_hook(hook_for(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    shapes[""] = tuple(output.shape[1:])
    return shapes, kinds


def _torch_trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- TensorFlow / Keras

def _tf_shapes(model, input_shape):
    import keras

    n, c, h, w = input_shape
    shapes: dict[str, tuple] = {}
    kinds: dict[str, str] = {}
    layers, outputs = [], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer used at several places has no single output
            continue
        if isinstance(output, (list, tuple)):
            output = output[0]
        layers.append(layer)
        outputs.append(output)
    probe = keras.Model(model.inputs, outputs)
    specs = probe.compute_output_spec(keras.KerasTensor((n, h, w, c)))
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
    for layer, spec in zip(layers, specs):
        kinds[layer.name] = type(layer).__name__
        shapes[layer.name] = _nhwc_to_nchw(tuple(spec.shape[1:]))
    final = model.compute_output_spec(keras.KerasTensor((n, h, w, c)))
    shapes[""] = _nhwc_to_nchw(tuple(final.shape[1:]))
    return shapes, kinds


def _nhwc_to_nchw(shape: tuple) -> tuple:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _tf_trainable(model) -> set[str]:
    from zoo_tf.weights import canonical_variables

    return {name for name, (variable, _, _) in canonical_variables(model).items() if variable.trainable}


# ---------------------------------------------------------------- MXNet Gluon

def _mxnet_children(block, prefix=""):
    for name, child in block._children.items():
        child = child() if callable(child) and not hasattr(child, "_children") else child  # weakref in MXNet 2
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        yield from _mxnet_children(child, path)


def _mxnet_shapes(model, input_shape):
    import mxnet as mx

    shapes: dict[str, tuple] = {}
    kinds: dict[str, str] = {}
    handles = []

    def hook_for(name):
        def hook(block, inputs, output):
            shape = _first_shape(output)
            if shape is not None:
                shapes[name] = tuple(shape[1:])
        return hook

    for name, block in _mxnet_children(model):
        if not block._children:
            kinds[name] = type(block).__name__
            handles.append(block.register_forward_hook(hook_for(name)))
    try:
        # Imperative (not hybridized) so that every child block runs its hooks.
        output = model(mx.nd.zeros(input_shape))
    finally:
        for handle in handles:
            handle.detach()
    shapes[""] = tuple(output.shape[1:])
    return shapes, kinds


def _mxnet_trainable(model) -> set[str]:
    return {name for name, p in zoo.backend("mxnet").canonical_parameters(model).items() if p.grad_req != "null"}


def _first_shape(output):
    if hasattr(output, "shape"):
        return tuple(output.shape)
    if isinstance(output, (list, tuple)):
        for item in output:
            shape = _first_shape(item)
            if shape is not None:
                return shape
    return None


_SHAPES = {"torch": _torch_shapes, "tf": _tf_shapes, "mxnet": _mxnet_shapes}
_TRAINABLE = {"torch": _torch_trainable, "tf": _tf_trainable, "mxnet": _mxnet_trainable}


def merge_order(tables: list[LayerTable], keep=None) -> list[str]:
    """Row names in execution order of the first table, others' extra layers inserted after their predecessor."""
    order: list[str] = []
    for table in tables:
        previous = None
        for name in table.layers:
            if keep is not None and not keep(table, name):
                continue
            if name not in order:
                index = order.index(previous) + 1 if previous in order else len(order)
                order.insert(index, name)
            previous = name
    return order
