"""Layer-by-layer view of a built model in any framework, under canonical names.

Each backend names its layers after the module paths of the reference framework's model (its
`layer_shapes`), so one name identifies a layer in every framework. Shapes are reported without the
batch dimension and in (C, H, W) order for every framework; parameter counts come from each backend's
canonical weights (`export_weights`), grouped by the name before the last dot.
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
    backend = zoo.backend(framework)
    shapes, kinds = backend.layer_shapes(model, (1, in_channels, input_size, input_size))
    trainable_names = backend.trainable_names(model)
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
