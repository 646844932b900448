"""What a Keras model is made of: its layer table (`compare summary`) under canonical names, every
layer being named after the PyTorch module it mirrors."""
from __future__ import annotations

import keras

from .weights import canonical_variables


def layer_shapes(model, input_shape: tuple[int, ...]) -> tuple[dict[str, tuple], dict[str, str]]:
    """Output shape (without the batch, (C, H, W) for maps) of every layer, traced symbolically."""
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


def trainable_names(model) -> set[str]:
    return {name for name, (variable, _, _) in canonical_variables(model).items() if variable.trainable}
