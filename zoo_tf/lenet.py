"""LeNet-5 in Keras."""
from __future__ import annotations

from keras import layers

from zoo.specs.lenet import LeNetConfig

from .layers import activation, avg_pool, conv2d, max_pool
from .model import functional

POOLS = {"avg": avg_pool, "max": max_pool}


def network(inputs, config: LeNetConfig, num_classes: int):
    pool = POOLS[config.pooling]
    c1, c2 = config.channels
    x = conv2d(inputs, c1, config.kernel_size, padding=config.padding, name="features.0")
    x = pool(activation(x, config.activation, name="features.1"), 2, name="features.2")
    x = conv2d(x, c2, config.kernel_size, name="features.3")
    x = pool(activation(x, config.activation, name="features.4"), 2, name="features.5")
    x = layers.Flatten(name="flatten")(x)
    index = 0
    for hidden in config.hidden:
        x = layers.Dense(hidden, name=f"classifier.{index}")(x)
        x = activation(x, config.activation, name=f"classifier.{index + 1}")
        index += 2
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"classifier.{index}")(x)
            index += 1
    return layers.Dense(num_classes, name=f"classifier.{index}")(x)


build = functional(network)
