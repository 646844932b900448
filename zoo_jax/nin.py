"""Network in Network in Flax NNX (d2l.ai's ImageNet-size NiN), module for module `zoo_torch.nin`."""
from __future__ import annotations

from flax import nnx

from zoo.specs.nin import NiNConfig

from .layers import AdaptiveAvgPool2d, Conv2d, Dropout, Flatten, MaxPool2d, ReLU, Sequential, init_rngs
from .network import Network


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int,
              mlp_layers: int, *, rngs: nnx.Rngs) -> Sequential:
    """A convolution followed by `mlp_layers` 1x1 convolutions, each with a ReLU: the paper's mlpconv."""
    layers = [Conv2d(in_channels, out_channels, kernel_size, stride, padding, rngs=rngs), ReLU()]
    for _ in range(mlp_layers):
        layers += [Conv2d(out_channels, out_channels, kernel_size=1, rngs=rngs), ReLU()]
    return Sequential(*layers)


class NiN(Network):
    def __init__(self, config: NiNConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        layers = []
        channels = in_channels
        for out_channels, kernel, stride, padding in config.blocks:
            layers.append(nin_block(channels, out_channels, kernel, stride, padding, config.mlp_layers, rngs=rngs))
            layers.append(MaxPool2d(config.pool_kernel, config.pool_stride))
            channels = out_channels
        layers.append(Dropout(config.dropout, rngs=rngs))
        self.features = Sequential(*layers)
        # No dense layer: the last block has one channel per class, averaged over the whole map.
        self.classifier = Sequential(
            nin_block(channels, num_classes, config.head_kernel, 1, config.head_padding, config.mlp_layers,
                      rngs=rngs),
            AdaptiveAvgPool2d((1, 1)),
            Flatten(),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def build(config: NiNConfig, *, num_classes: int, in_channels: int) -> Network:
    return NiN(config, num_classes, in_channels, rngs=init_rngs())
