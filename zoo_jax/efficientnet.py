"""EfficientNet B0-B7 in Flax NNX, module for module `zoo_torch.efficientnet` (torchvision's tree).

The MBConv block is MobileNet's `InvertedResidual` (zoo_jax/mobilenet.py) with SiLU, SE and
stochastic depth; each stage is its own Sequential (`features.<stage>.<block>`), as in torchvision.
"""
from __future__ import annotations

from functools import partial


from zoo.specs.efficientnet import EfficientNetConfig

from .layers import BatchNorm2d, Dropout, Linear, Sequential, init_rngs
from .network import Network
from .mobilenet import ConvBNAct, InvertedResidual, MobileNet, init_weights


def build(config: EfficientNetConfig, *, num_classes: int, in_channels: int) -> Network:
    rngs = init_rngs()
    norm = partial(BatchNorm2d, eps=config.bn_eps, momentum=config.bn_momentum)
    features = [ConvBNAct(in_channels, config.stem(), 3, 2, norm=norm, activation="silu", padding=config.padding,
                          rngs=rngs)]
    stages = config.plan()
    for stage in stages:
        features.append(Sequential(*(InvertedResidual(p, norm, stochastic_depth=True, padding=config.padding,
                                                      rngs=rngs) for p in stage)))
    features.append(ConvBNAct(stages[-1][-1].out_channels, config.head(), 1, norm=norm, activation="silu", rngs=rngs))
    model = MobileNet(features, [Dropout(config.dropout, rngs=rngs), Linear(config.head(), num_classes, rngs=rngs)])
    init_weights(model, rngs, linear_init="uniform")
    return model
