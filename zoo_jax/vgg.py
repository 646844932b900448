"""VGG in Flax NNX, module for module `zoo_torch.vgg` (torchvision's `VGG` keys and initialisation): the
spec's plan (`VGGConfig.plan`), translated by zoo_jax.alexnet."""
from __future__ import annotations

import math

from flax import nnx

from zoo.specs.vgg import VGGConfig

from .alexnet import SequentialNet
from .layers import Conv2d, Linear, fill, init_rngs, normal
from .network import Network


def _initialize(model: nnx.Module, rngs: nnx.Rngs) -> None:
    """torchvision's: Kaiming-normal (fan_out, ReLU) convolutions, N(0, 0.01) dense layers, zero biases.
    BatchNorm starts at weight 1 and bias 0 already."""
    for _, module in nnx.iter_graph(model):
        if isinstance(module, Conv2d):
            kh, kw, _, out_channels = module.kernel[...].shape
            std = math.sqrt(2.0 / (out_channels * kh * kw))
            module.kernel.set_value(normal(rngs, module.kernel[...].shape, std))
        elif isinstance(module, Linear):
            module.kernel.set_value(normal(rngs, module.kernel[...].shape, 0.01))
        else:
            continue
        fill(module.bias, 0.0)


class VGG(SequentialNet):
    def __init__(self, plan, *, rngs: nnx.Rngs) -> None:
        super().__init__(plan, rngs=rngs)
        _initialize(self, rngs)


def build(config: VGGConfig, *, num_classes: int, in_channels: int) -> Network:
    return VGG(config.plan(num_classes, in_channels), rngs=init_rngs())
