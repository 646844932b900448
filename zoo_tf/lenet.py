"""LeNet-5 in Keras: the spec's plan (`LeNetConfig.plan`), translated by zoo_tf.alexnet."""
from __future__ import annotations

from zoo.specs.lenet import LeNetConfig

from .alexnet import sequence
from .model import functional


def network(inputs, config: LeNetConfig, num_classes: int):
    return sequence(inputs, config.plan(num_classes, inputs.shape[-1]))


build = functional(network)
