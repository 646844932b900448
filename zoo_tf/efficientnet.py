"""EfficientNet B0-B7 in Keras, built from MobileNet's inverted-residual block (zoo_tf/mobilenet.py)."""
from __future__ import annotations

from zoo.specs.efficientnet import EfficientNetConfig

from .mobilenet import conv_bn_act, head, inverted_residual
from .model import functional


def network(inputs, config: EfficientNetConfig, num_classes: int):
    norm = {"eps": config.bn_eps, "momentum": config.bn_momentum}
    stages = config.plan()
    x = conv_bn_act(inputs, config.stem(), 3, stride=2, name="features.0", norm=norm, act="silu",
                    padding=config.padding)
    for s, stage in enumerate(stages, start=1):
        for b, plan in enumerate(stage):
            x = inverted_residual(x, plan, name=f"features.{s}.{b}", norm=norm, padding=config.padding)
    x = conv_bn_act(x, config.head(), 1, name=f"features.{len(stages) + 1}", norm=norm, act="silu")
    return head(x, [], num_classes, dropout=config.dropout)


build = functional(network)
