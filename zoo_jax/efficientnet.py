"""EfficientNet B0-B7 in Flax NNX, module for module `zoo_torch.efficientnet` (torchvision's tree): the spec's
plan (`EfficientNetConfig.network_plan`), in the pieces MobileNet's are made of, translated by
zoo_jax/mobilenet.py."""
from __future__ import annotations

from zoo.specs.efficientnet import EfficientNetConfig

from .layers import init_rngs
from .mobilenet import MobileNet
from .network import Network


def build(config: EfficientNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return MobileNet(config.network_plan(num_classes, in_channels), rngs=init_rngs())
