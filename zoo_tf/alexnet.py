"""AlexNet in Keras."""
from __future__ import annotations

from keras import layers

from zoo.specs.alexnet import AlexNetConfig

from .layers import LocalResponseNorm, activation, adaptive_avg_pool, conv2d, max_pool
from .model import functional


def network(inputs, config: AlexNetConfig, num_classes: int):
    x = inputs
    for index, (kind, *conv) in enumerate(config.layers()):
        name = f"features.{index}"
        if kind == "conv":
            i = conv[0]
            x = conv2d(x, config.channels[i], config.kernel_sizes[i], stride=config.strides[i],
                       padding=config.paddings[i], groups=config.groups[i], name=name)
        elif kind == "relu":
            x = activation(x, "relu", name=name)
        elif kind == "lrn":
            x = LocalResponseNorm(config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k, name=name)(x)
        else:
            x = max_pool(x, config.pool_kernel, stride=config.pool_stride, name=name)
    x = adaptive_avg_pool(x, config.pool_size, name="avgpool")
    if not config.hidden:
        return layers.Dense(num_classes, name="classifier.0")(layers.Flatten(name="flatten")(x))
    # torchvision drops out before flattening; elementwise, so the same here on the map. The Dense must
    # see the Flatten directly for the canonical weights' NCHW/NHWC permutation.
    x = layers.Dropout(config.dropout, name="classifier.0")(x)
    x = layers.Flatten(name="flatten")(x)
    for j, hidden in enumerate(config.hidden):
        if j:
            x = layers.Dropout(config.dropout, name=f"classifier.{3 * j}")(x)
        x = layers.Dense(hidden, name=f"classifier.{3 * j + 1}")(x)
        x = activation(x, "relu", name=f"classifier.{3 * j + 2}")
    return layers.Dense(num_classes, name=f"classifier.{3 * len(config.hidden)}")(x)


build = functional(network)
