"""DenseNet in Keras (functional), layer names following torchvision's module paths
(`features.denseblock1.denselayer1.norm1`)."""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from zoo.specs.densenet import TRANSITION_POOL, DenseNetConfig

from .layers import activation, avg_pool, batch_norm, conv2d, max_pool
from .model import functional
from .weights import canonical_variables


def _bn(x, config: DenseNetConfig, name: str):
    return batch_norm(x, name=name, eps=config.bn_eps, momentum=config.bn_momentum)


def _concat(features, name: str):
    return features[0] if len(features) == 1 else layers.Concatenate(axis=-1, name=name)(features)


def _bn_function(features, config: DenseNetConfig, name: str):
    """concat + norm1 + relu1 + conv1: the part torchvision's memory_efficient recomputes."""
    x = _concat(features, f"{name}.cat")
    x = activation(_bn(x, config, f"{name}.norm1"), "relu", name=f"{name}.relu1")
    width = config.bn_size * config.growth_rate if config.bottleneck else config.growth_rate
    kernel, padding = (1, 0) if config.bottleneck else (3, 1)
    return conv2d(x, width, kernel, padding=padding, use_bias=config.conv_bias, name=f"{name}.conv1")


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


def _rematerialized_bn_function(features, config: DenseNetConfig, name: str):
    inputs = [keras.Input(shape=tuple(f.shape[1:]), name=f"{name}.in{i}") for i, f in enumerate(features)]
    block = keras.Model(inputs, _bn_function(inputs, config, name), name=f"{name}.bn_function")
    return Recomputed(block, name=f"{name}.recomputed")(features)


def dense_layer(features, config: DenseNetConfig, name: str):
    if config.memory_efficient:
        out = _rematerialized_bn_function(features, config, name)
    else:
        out = _bn_function(features, config, name)
    if config.bottleneck:
        out = activation(_bn(out, config, f"{name}.norm2"), "relu", name=f"{name}.relu2")
        out = conv2d(out, config.growth_rate, 3, padding=1, use_bias=config.conv_bias, name=f"{name}.conv2")
    if config.drop_rate > 0:
        out = layers.Dropout(config.drop_rate, name=f"{name}.dropout")(out)
    return out


def network(inputs, config: DenseNetConfig, num_classes: int):
    stem = config.num_init_features
    kernel, stride, padding = config.stem_conv
    x = conv2d(inputs, stem, kernel, stride=stride, padding=padding, use_bias=config.conv_bias, name="features.conv0")
    if config.stem_pool:
        kernel, stride, padding = config.stem_pool
        x = activation(_bn(x, config, "features.norm0"), "relu", name="features.relu0")
        x = max_pool(x, kernel, stride=stride, padding=padding, name="features.pool0")
    stages = config.stages()
    for index, ((_, _, trans_out), layers_in_block) in enumerate(zip(stages, config.block_config), start=1):
        block = f"features.denseblock{index}"
        features = [x]
        for i in range(1, layers_in_block + 1):
            features.append(dense_layer(features, config, f"{block}.denselayer{i}"))
        x = _concat(features, f"{block}.cat")
        if index < len(stages):
            name = f"features.transition{index}"
            x = activation(_bn(x, config, f"{name}.norm"), "relu", name=f"{name}.relu")
            x = conv2d(x, trans_out, 1, use_bias=config.conv_bias, name=f"{name}.conv")
            x = avg_pool(x, TRANSITION_POOL, stride=TRANSITION_POOL, name=f"{name}.pool")
    x = activation(_bn(x, config, "features.norm5"), "relu", name="relu")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return layers.Dense(num_classes, name="classifier")(x)


build = functional(network)
