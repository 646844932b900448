"""VGG in Keras: the spec's plan (`VGGConfig.plan`), translated by zoo_tf.alexnet."""
from __future__ import annotations

from zoo.specs.vgg import VGGConfig

from .alexnet import sequence
from .model import functional


def network(inputs, config: VGGConfig, num_classes: int):
    return sequence(inputs, config.plan(num_classes, inputs.shape[-1]))


build = functional(network)
