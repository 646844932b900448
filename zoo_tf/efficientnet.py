"""EfficientNet B0-B7 in Keras: the spec's plan (`EfficientNetConfig.network_plan`), in the pieces MobileNet's
are made of, translated by zoo_tf/mobilenet.py."""
from __future__ import annotations

from zoo.specs.efficientnet import EfficientNetConfig

from .mobilenet import mobilenet
from .model import functional


def network(inputs, config: EfficientNetConfig, num_classes: int):
    return mobilenet(inputs, config.network_plan(num_classes, inputs.shape[-1]))


build = functional(network)
