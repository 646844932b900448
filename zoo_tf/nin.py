"""Network in Network in Keras."""
from __future__ import annotations

from keras import layers

from zoo.specs.nin import NiNConfig

from .layers import activation, conv2d, max_pool
from .model import functional


def nin_block(x, channels: int, kernel: int, stride: int, padding: int, mlp_layers: int, *, name: str):
    x = activation(conv2d(x, channels, kernel, stride=stride, padding=padding, name=f"{name}.0"), "relu", name=f"{name}.1")
    for j in range(1, mlp_layers + 1):
        x = conv2d(x, channels, 1, name=f"{name}.{2 * j}")
        x = activation(x, "relu", name=f"{name}.{2 * j + 1}")
    return x


def network(inputs, config: NiNConfig, num_classes: int):
    x = inputs
    for b, (channels, kernel, stride, padding) in enumerate(config.blocks):
        x = nin_block(x, channels, kernel, stride, padding, config.mlp_layers, name=f"features.{2 * b}")
        x = max_pool(x, config.pool_kernel, stride=config.pool_stride, name=f"features.{2 * b + 1}")
    x = layers.Dropout(config.dropout, name=f"features.{2 * len(config.blocks)}")(x)
    x = nin_block(x, num_classes, config.head_kernel, 1, config.head_padding, config.mlp_layers, name="classifier.0")
    return layers.GlobalAveragePooling2D(name="classifier.1")(x)


build = functional(network)
