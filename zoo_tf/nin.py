"""Network in Network in Keras: the spec's plan (`NiNConfig.plan`), translated by zoo_tf.alexnet."""
from __future__ import annotations

from zoo.specs.nin import NiNConfig

from .alexnet import sequence
from .model import functional


def network(inputs, config: NiNConfig, num_classes: int):
    return sequence(inputs, config.plan(num_classes, inputs.shape[-1]))


build = functional(network)
