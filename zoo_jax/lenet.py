"""LeNet-5 in Flax NNX, module for module `zoo_torch.lenet`: the spec's plan (`LeNetConfig.plan`),
translated by zoo_jax.alexnet."""
from __future__ import annotations

from zoo.specs.lenet import LeNetConfig

from .alexnet import SequentialNet
from .layers import init_rngs
from .network import Network


class LeNet(SequentialNet):
    pass


def build(config: LeNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return LeNet(config.plan(num_classes, in_channels), rngs=init_rngs())
