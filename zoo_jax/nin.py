"""Network in Network in Flax NNX (d2l.ai's ImageNet-size NiN), module for module `zoo_torch.nin`: the
spec's plan (`NiNConfig.plan`), translated by zoo_jax.alexnet."""
from __future__ import annotations

from zoo.specs.nin import NiNConfig

from .alexnet import SequentialNet
from .layers import init_rngs
from .network import Network


class NiN(SequentialNet):
    pass


def build(config: NiNConfig, *, num_classes: int, in_channels: int) -> Network:
    return NiN(config.plan(num_classes, in_channels), rngs=init_rngs())
