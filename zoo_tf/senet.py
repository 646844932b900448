"""SE-ResNet in Keras: zoo_tf.resnet with a squeeze-and-excitation module (`layerX.Y.se.fc1/fc2`, 1x1
convolutions) on every block's residual branch, squeezed as the plan says."""
from __future__ import annotations

from keras import layers

from zoo.specs.senet import SEResNetConfig

from . import resnet
from .layers import activation, conv2d
from .model import functional


def squeeze_excitation(x, *, squeezed: int, name: str):
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}.avgpool")(x)
    s = conv2d(s, squeezed, 1, name=f"{name}.fc1")
    s = activation(s, "relu", name=f"{name}.relu")
    s = activation(conv2d(s, channels, 1, name=f"{name}.fc2"), "sigmoid", name=f"{name}.sigmoid")
    return layers.Multiply(name=f"{name}.scale")([x, s])


def network(inputs, config: SEResNetConfig, num_classes: int):
    return resnet.network(inputs, config, num_classes, attention=squeeze_excitation)


build = functional(network)
