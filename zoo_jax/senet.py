"""SE-ResNet in Flax NNX, module for module `zoo_torch.senet`: zoo_jax.resnet with a squeeze-and-excitation
module on every block's residual branch, as `layerX.Y.se.fc1` / `se.fc2`, squeezed as the plan says."""
from __future__ import annotations

from flax import nnx

from zoo.specs.senet import SEResNetConfig

from . import resnet
from .layers import AdaptiveAvgPool2d, Conv2d, ReLU, Sigmoid, init_rngs
from .network import Network


class SqueezeExcitation(nnx.Module):
    """Hu et al.'s SE module; the same layout and names as torchvision.ops.SqueezeExcitation."""

    def __init__(self, channels: int, squeezed: int, *, rngs: nnx.Rngs) -> None:
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(channels, squeezed, 1, rngs=rngs)
        self.relu = ReLU()
        self.fc2 = Conv2d(squeezed, channels, 1, rngs=rngs)
        self.sigmoid = Sigmoid()

    def __call__(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


def build(config: SEResNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return resnet.ResNet(config.plan(num_classes, in_channels), se=SqueezeExcitation, rngs=init_rngs())
