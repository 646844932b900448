"""GoogLeNet in Keras.

With `aux_logits` the model has three outputs, [logits, aux_logits2, aux_logits1], in training and in
inference alike (a Keras functional model has one output structure; this is Keras' way to train with
auxiliary losses, e.g. `loss_weights=[1, 0.3, 0.3]`). PyTorch returns only the logits in eval mode.
"""
from __future__ import annotations

from keras import layers

from zoo.specs.googlenet import STEMS, GoogLeNetConfig

from .layers import activation, adaptive_avg_pool, batch_norm, conv2d, max_pool, max_pool_ceil
from .model import functional


def basic_conv(x, filters: int, config: GoogLeNetConfig, *, name: str, kernel_size: int, stride: int = 1,
               padding: int = 0):
    x = conv2d(x, filters, kernel_size, stride=stride, padding=padding, use_bias=False, name=f"{name}.conv")
    x = batch_norm(x, eps=config.bn_eps, momentum=config.bn_momentum, name=f"{name}.bn")
    return activation(x, "relu", name=f"{name}.relu")


def inception(x, widths, config: GoogLeNetConfig, *, name: str):
    ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = widths
    branch1 = basic_conv(x, ch1x1, config, kernel_size=1, name=f"{name}.branch1")
    branch2 = basic_conv(x, ch3x3red, config, kernel_size=1, name=f"{name}.branch2.0")
    branch2 = basic_conv(branch2, ch3x3, config, kernel_size=3, padding=1, name=f"{name}.branch2.1")
    branch3 = basic_conv(x, ch5x5red, config, kernel_size=1, name=f"{name}.branch3.0")
    # torchvision's 3x3 where the paper has 5x5 (pytorch/vision#906), for its keys and counts.
    branch3 = basic_conv(branch3, ch5x5, config, kernel_size=3, padding=1, name=f"{name}.branch3.1")
    # Stride 1: ceil_mode changes nothing, so a plain -inf padded pool.
    branch4 = max_pool(x, 3, stride=1, padding=1, name=f"{name}.branch4.0")
    branch4 = basic_conv(branch4, pool_proj, config, kernel_size=1, name=f"{name}.branch4.1")
    return layers.Concatenate(axis=-1, name=name)([branch1, branch2, branch3, branch4])


def inception_aux(x, num_classes: int, config: GoogLeNetConfig, *, name: str):
    x = adaptive_avg_pool(x, config.aux_pool, name=f"{name}.pool")
    x = basic_conv(x, config.aux_channels, config, kernel_size=1, name=f"{name}.conv")
    x = layers.Flatten(name=f"{name}.flatten")(x)
    x = activation(layers.Dense(config.aux_hidden, name=f"{name}.fc1")(x), "relu", name=f"{name}.relu")
    x = layers.Dropout(config.dropout_aux, name=f"{name}.dropout")(x)
    return layers.Dense(num_classes, name=f"{name}.fc2")(x)


def network(inputs, config: GoogLeNetConfig, num_classes: int):
    x = inputs
    if config.transform_input:
        if inputs.shape[-1] != 3:
            raise ValueError(f"transform_input re-normalises RGB images and needs in_channels=3, got {inputs.shape[-1]}")
        scale, offset = config.input_transform()
        x = layers.Rescaling(list(scale), list(offset), name="transform_input")(x)
    stem = STEMS[config.stem]
    pools = {name: (kernel, stride) for name, kernel, stride in config.pools()}

    def pool(x, name):
        if name not in pools:
            return x
        return max_pool_ceil(x, pools[name][0], stride=pools[name][1], name=name)

    c1, c2, c3 = config.stem_channels
    x = basic_conv(x, c1, config, kernel_size=stem["kernel"], stride=stem["stride"], padding=stem["padding"], name="conv1")
    x = pool(x, "maxpool1")
    x = basic_conv(x, c2, config, kernel_size=1, name="conv2")
    x = basic_conv(x, c3, config, kernel_size=3, padding=1, name="conv3")
    x = pool(x, "maxpool2")
    aux = []
    for s, (names, stage) in enumerate(zip(config.module_names(), config.inception)):
        for i, (name, widths) in enumerate(zip(names, stage)):
            x = inception(x, widths, config, name=name)
            if config.aux_logits and s == 1 and i in (0, 3):
                aux.append(inception_aux(x, num_classes, config, name=f"aux{len(aux) + 1}"))
        if s < 2:
            x = pool(x, f"maxpool{3 + s}")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="fc")(x)
    if config.aux_logits:
        return [logits, aux[1], aux[0]]
    return logits


build = functional(network)
