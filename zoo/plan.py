"""The pieces of a network's plan: what a family's config says the network is, layer by layer, under the
canonical module names (PyTorch `state_dict` prefixes), so that every framework's builder only translates
it into its own layers, and counts, outlines and converters read the same decisions."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Iterator


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


# The pieces of the classic sequential networks (LeNet, AlexNet, VGG, NiN, GoogLeNet), which each framework
# translates in one place (its `alexnet` module).

@dataclass(frozen=True)
class Activation:
    """An element-wise nonlinearity: "relu", "tanh" or "sigmoid"."""

    name: str
    kind: str = "relu"


@dataclass(frozen=True)
class Dropout:
    name: str
    p: float


@dataclass(frozen=True)
class LocalResponseNorm:
    """Local response normalisation across `size` neighbouring channels (Krizhevsky et al. 2012, Sec. 3.3).
    `alpha` is the paper's, which multiplies the plain sum of squares; PyTorch and MXNet divide theirs by the
    window size, so their builders pass alpha * size."""

    name: str
    size: int
    alpha: float
    beta: float
    k: float


@dataclass(frozen=True)
class BatchNorm:
    """BatchNorm over `channels`; `momentum` is PyTorch's (the weight of the new statistic)."""

    name: str
    channels: int
    eps: float = 1e-5
    momentum: float = 0.1

    @property
    def params(self) -> int:
        return 2 * self.channels  # scale and shift (and as many running statistics, mean and variance)


@dataclass(frozen=True)
class AvgPool(Pool):
    """An average pool (PyTorch's, the zero padding counted); a plain `Pool` is a max pool."""


@dataclass(frozen=True)
class CeilPool(Pool):
    """A max pool that rounds its output size up (PyTorch's ceil_mode=True, Caffe's rounding)."""


@dataclass(frozen=True)
class AdaptivePool:
    """PyTorch's adaptive average pool to a size x size map."""

    name: str
    size: int


@dataclass(frozen=True)
class GlobalPool:
    """The average over the whole map, one number per channel (`nn.AdaptiveAvgPool2d((1, 1))`)."""

    name: str


@dataclass(frozen=True)
class Flatten:
    """The map flattened in PyTorch's (C, H, W) order for the dense layer after it. Between torchvision's
    containers (`flatten`) it is `torch.flatten` in forward, with no module; inside one, `nn.Flatten`."""

    name: str = "flatten"


@dataclass(frozen=True)
class Identity:
    """A layer that passes its input on: where a variant leaves one out, so that torchvision's tree stays."""

    name: str


Layer = (Conv | Pool | Linear | Activation | Dropout | LocalResponseNorm | BatchNorm | AdaptivePool | GlobalPool | Flatten
         | Identity)


def sequential(prefix: str, layers: Iterable) -> tuple[Layer, ...]:
    """`layers` as the nn.Sequential `prefix`, each named by its index there (`features.0`, `features.1`, ...);
    a tuple among them is a Sequential within it (NiN's blocks: `features.0.0`)."""
    named: list = []
    for index, layer in enumerate(layers):
        name = f"{prefix}.{index}"
        named += sequential(name, layer) if isinstance(layer, tuple) else [replace(layer, name=name)]
    return tuple(named)


def leaves(layers: Iterable) -> Iterator[Layer]:
    """Every layer of a plan, composite ones (GoogLeNet's BasicConv2d, inception modules, auxiliary heads)
    opened into their `parts`."""
    for layer in layers:
        parts = getattr(layer, "parts", None)
        if parts is None:
            yield layer
        else:
            yield from leaves(parts)


def parameters(layers: Iterable) -> int:
    """Trainable parameters of a plan's layers (the spec's `params`)."""
    return sum(getattr(layer, "params", 0) for layer in leaves(layers))


def running_statistics(layers: Iterable) -> int:
    """BatchNorm's running means and variances in a plan's layers (`params_total` - `params`)."""
    return sum(2 * layer.channels for layer in leaves(layers) if isinstance(layer, BatchNorm))
