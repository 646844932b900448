"""GoogLeNet in Keras: the spec's plan (`GoogLeNetConfig.plan`), translated here module by module.

With `aux_logits` the model has three outputs, [logits, aux_logits2, aux_logits1], in training and in
inference alike (a Keras functional model has one output structure; this is Keras' way to train with
auxiliary losses, e.g. `loss_weights=[1, 0.3, 0.3]`). PyTorch returns only the logits in eval mode.
"""
from __future__ import annotations

from keras import layers

from zoo.specs.googlenet import BasicConv, GoogLeNetConfig, InceptionModule

from .alexnet import layer, sequence
from .layers import activation
from .model import functional


def basic_conv(x, plan: BasicConv):
    return activation(layer(layer(x, plan.conv), plan.bn), "relu", name=f"{plan.name}.relu")


def inception(x, plan: InceptionModule):
    return layers.Concatenate(axis=-1, name=plan.name)([sequence(x, branch, translate) for branch in plan.branches])


def translate(x, piece):
    return {BasicConv: basic_conv, InceptionModule: inception}.get(type(piece), layer)(x, piece)


def network(inputs, config: GoogLeNetConfig, num_classes: int):
    plan = config.plan(num_classes, inputs.shape[-1])
    x = inputs
    if plan.transform:
        scale, offset = plan.transform
        x = layers.Rescaling(list(scale), list(offset), name="transform_input")(x)
    heads, aux = {head.after: head for head in plan.aux}, []
    for piece in plan.layers:
        x = translate(x, piece)
        if piece.name in heads:
            aux.append(sequence(x, heads[piece.name].sequence(), translate))
    logits = sequence(x, plan.head, translate)
    return [logits, *reversed(aux)] if aux else logits


build = functional(network)
