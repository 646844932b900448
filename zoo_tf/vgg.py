"""VGG in Keras."""
from __future__ import annotations

from keras import layers

from zoo.specs.vgg import M, VGGConfig

from .layers import activation, adaptive_avg_pool, batch_norm, conv2d, max_pool
from .model import functional


def network(inputs, config: VGGConfig, num_classes: int):
    x, index = inputs, 0
    for value in config.layers:
        if value == M:
            x = max_pool(x, 2, stride=2, name=f"features.{index}")
            index += 1
            continue
        x = conv2d(x, value, 3, padding=1, name=f"features.{index}")
        index += 1
        if config.batch_norm:
            x = batch_norm(x, eps=config.bn_eps, momentum=config.bn_momentum, name=f"features.{index}")
            index += 1
        x = activation(x, "relu", name=f"features.{index}")
        index += 1
    x = adaptive_avg_pool(x, config.pool_size, name="avgpool")
    x = layers.Flatten(name="flatten")(x)
    for j, hidden in enumerate(config.hidden):
        x = layers.Dense(hidden, name=f"classifier.{3 * j}")(x)
        x = activation(x, "relu", name=f"classifier.{3 * j + 1}")
        x = layers.Dropout(config.dropout, name=f"classifier.{3 * j + 2}")(x)
    return layers.Dense(num_classes, name=f"classifier.{3 * len(config.hidden)}")(x)


build = functional(network)
