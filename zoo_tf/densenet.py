"""DenseNet in Keras (functional), layer names following torchvision's module paths
(`features.denseblock1.denselayer1.norm1`). The network is the spec's plan (`DenseNetConfig.plan`):
every layer's convolutions, widths, biases and names are decided there, and only translated into layers here."""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf
from keras import layers

from zoo.plan import Conv
from zoo.specs.densenet import DenseLayerPlan, DenseNetConfig, DenseNetPlan

from .layers import activation, avg_pool, batch_norm, conv2d, max_pool
from .model import functional
from .weights import canonical_variables

# (x, name) -> x through the plan's BatchNorm
Norm = Callable[..., object]


def _conv(x, conv: Conv):
    return conv2d(x, conv.out_channels, conv.kernel, stride=conv.stride, padding=conv.padding, groups=conv.groups,
                  use_bias=conv.bias, name=conv.name)


def _concat(features, name: str):
    return features[0] if len(features) == 1 else layers.Concatenate(axis=-1, name=name)(features)


def _bn_function(features, plan: DenseLayerPlan, norm: Norm):
    """concat + norm1 + relu1 + conv1: the part torchvision's memory_efficient recomputes."""
    x = _concat(features, f"{plan.name}.cat")
    return _conv(activation(norm(x, f"{plan.name}.norm1"), "relu", name=f"{plan.name}.relu1"), plan.convs[0])


class Recomputed(keras.layers.Layer):
    """Runs a nested functional block under tf.recompute_grad: its activations are not kept for the
    backward pass but recomputed there (torchvision's memory_efficient uses torch.utils.checkpoint).

    Keras' own RematScope cannot do this here: it rematerialises layer by layer (so the concatenation
    is still stored) and, inside tf.function, fails on layers called with `training=`.
    """

    def __init__(self, block: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, inputs, training=None):
        def forward(*tensors):
            return self.block(list(tensors), training=training)

        return tf.recompute_grad(forward)(*inputs)

    def compute_output_spec(self, inputs, training=None):
        return self.block.compute_output_spec(inputs)

    def canonical_variables(self):
        # The inner layers keep their torchvision names, so the weights are the block's own.
        return canonical_variables(self.block)


def _rematerialized_bn_function(features, plan: DenseLayerPlan, norm: Norm):
    name = plan.name
    inputs = [keras.Input(shape=tuple(f.shape[1:]), name=f"{name}.in{i}") for i, f in enumerate(features)]
    block = keras.Model(inputs, _bn_function(inputs, plan, norm), name=f"{name}.bn_function")
    return Recomputed(block, name=f"{name}.recomputed")(features)


def dense_layer(features, plan: DenseLayerPlan, norm: Norm, memory_efficient: bool):
    out = (_rematerialized_bn_function if memory_efficient else _bn_function)(features, plan, norm)
    for k, conv in enumerate(plan.convs[1:], start=2):
        out = _conv(activation(norm(out, f"{plan.name}.norm{k}"), "relu", name=f"{plan.name}.relu{k}"), conv)
    if plan.drop_rate > 0:
        out = layers.Dropout(plan.drop_rate, name=f"{plan.name}.dropout")(out)
    return out


def network(inputs, config: DenseNetConfig, num_classes: int):
    plan: DenseNetPlan = config.plan(num_classes, inputs.shape[-1])

    def norm(x, name: str):
        return batch_norm(x, name=name, eps=plan.bn_eps, momentum=plan.bn_momentum)

    x = _conv(inputs, plan.stem)
    if plan.stem_norm:
        x = activation(norm(x, "features.norm0"), "relu", name="features.relu0")
    if plan.pool:
        x = max_pool(x, plan.pool.kernel, stride=plan.pool.stride, padding=plan.pool.padding, name=plan.pool.name)
    for block, transition in plan.stages():
        features = [x]
        for layer in block.layers:
            features.append(dense_layer(features, layer, norm, plan.memory_efficient))
        x = _concat(features, f"{block.name}.cat")
        if transition is not None:
            name, pool = transition.name, transition.pool
            x = _conv(activation(norm(x, f"{name}.norm"), "relu", name=f"{name}.relu"), transition.conv)
            x = avg_pool(x, pool.kernel, stride=pool.stride, padding=pool.padding, name=pool.name)
    x = activation(norm(x, "features.norm5"), "relu", name="relu")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return layers.Dense(plan.classifier.out_features, name=plan.classifier.name)(x)


build = functional(network)
