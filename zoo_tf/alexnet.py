"""AlexNet in Keras, layers named after torchvision's modules (`features.3`, `classifier.6`).

The network is the spec's plan (`AlexNetConfig.plan`), translated here layer by layer. The translation of
every piece of a classic plan (zoo.plan) lives here too, for LeNet, VGG, NiN and GoogLeNet."""
from __future__ import annotations

from typing import Callable, Iterable

from keras import layers

from zoo.plan import (Activation, AdaptivePool, AvgPool, BatchNorm, CeilPool, Conv, Dropout, Flatten, GlobalPool,
                      Identity, Linear, LocalResponseNorm, Pool)
from zoo.specs.alexnet import AlexNetConfig

from .layers import (LocalResponseNorm as LRN, activation, adaptive_avg_pool, avg_pool, batch_norm, conv2d, max_pool,
                     max_pool_ceil)
from .model import functional

# piece -> (x, piece) -> x through the Keras layers of the piece, named as it is
LAYERS: dict[type, Callable] = {
    Conv: lambda x, c: conv2d(x, c.out_channels, c.kernel, stride=c.stride, padding=c.padding, groups=c.groups,
                              use_bias=c.bias, name=c.name),
    Pool: lambda x, p: max_pool(x, p.kernel, stride=p.stride, padding=p.padding, name=p.name),
    AvgPool: lambda x, p: avg_pool(x, p.kernel, stride=p.stride, padding=p.padding, name=p.name),
    # With stride 1 ceil_mode changes nothing: a plain -inf padded pool.
    CeilPool: lambda x, p: (max_pool_ceil if p.stride > 1 else max_pool)(x, p.kernel, stride=p.stride,
                                                                         padding=p.padding, name=p.name),
    Linear: lambda x, d: layers.Dense(d.out_features, use_bias=d.bias, name=d.name)(x),
    Activation: lambda x, a: activation(x, a.kind, name=a.name),
    Dropout: lambda x, d: layers.Dropout(d.p, name=d.name)(x),
    LocalResponseNorm: lambda x, n: LRN(n.size, n.alpha, n.beta, n.k, name=n.name)(x),
    BatchNorm: lambda x, b: batch_norm(x, eps=b.eps, momentum=b.momentum, name=b.name),
    AdaptivePool: lambda x, p: adaptive_avg_pool(x, p.size, name=p.name),
    GlobalPool: lambda x, p: layers.GlobalAveragePooling2D(name=p.name)(x),
    Identity: lambda x, _: x,
}


def layer(x, piece):
    return LAYERS[type(piece)](x, piece)


def sequence(x, plan: Iterable, translate: Callable = layer):
    """x through the plan's layers in order. A flatten waits for the dense layer after it, which must read
    it directly (the canonical weights' NCHW/NHWC permutation); the elementwise layers between (AlexNet's
    dropout) act alike on the map. Keras' global pool has flattened already."""
    flatten = None
    for piece in plan:
        if isinstance(piece, Flatten):
            flatten = piece if len(x.shape) > 2 else None
            continue
        if flatten is not None and isinstance(piece, Linear):
            x, flatten = layers.Flatten(name=flatten.name)(x), None
        x = translate(x, piece)
    return x


def network(inputs, config: AlexNetConfig, num_classes: int):
    return sequence(inputs, config.plan(num_classes, inputs.shape[-1]))


build = functional(network)
