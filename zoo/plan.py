"""The pieces of a network's plan: what a family's config says the network is, layer by layer, under the
canonical module names (PyTorch `state_dict` prefixes), so that every framework's builder only translates
it into its own layers, and counts, outlines and converters read the same decisions."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution as PyTorch's `nn.Conv2d` takes it, under its module name (`layer2.0.conv2`)."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = False

    @property
    def params(self) -> int:
        weights = self.out_channels * (self.in_channels // self.groups) * self.kernel * self.kernel
        return weights + (self.out_channels if self.bias else 0)

    def local(self) -> str:
        """The module's own name within its block (`conv2` of `layer2.0.conv2`)."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Pool:
    """A pooling window: (kernel, stride, padding) as PyTorch's pools take them."""

    name: str
    kernel: int
    stride: int
    padding: int = 0


@dataclass(frozen=True)
class Linear:
    """A dense layer as PyTorch's `nn.Linear` takes it, under its module name (`classifier.6`)."""

    name: str
    in_features: int
    out_features: int
    bias: bool = True

    @property
    def params(self) -> int:
        return self.out_features * self.in_features + (self.out_features if self.bias else 0)
