"""DenseNet in MXNet Gluon, block for block torchvision's module tree
(`features.denseblock1.denselayer1.norm1`, `features.transition1.conv`, `classifier`).

`memory_efficient` is accepted and does nothing here: Gluon 1.x has no per-block recomputation.
MXNet's only form of it is the executor's global memory mirroring (the MXNET_BACKWARD_DO_MIRROR
environment variable, read when a graph is bound), which recomputes cheap operators such as BN and
ReLU across the whole network; set it in the environment if the memory matters. Outputs and gradients
are the same either way.
"""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.densenet import TRANSITION_POOL, DenseNetConfig

from .layers import global_avg_pool, relu


def _activation(config: DenseNetConfig):
    """oneDNN's ReLU (see `layers.relu`) where MXNet 1.9 can train with it, else the plain `relu`.

    MXNet's oneDNN concat backward fails (SIGFPE, or "could not construct a sub-memory") on gradients in
    its blocked layout when the concatenated layer outputs are not whole 16-channel blocks. The plain
    `relu` hands those gradients over in NCHW; the outputs are the same either way.
    """
    return relu if config.growth_rate % 16 == 0 else (lambda F, x: F.relu(x))


def _norm(config: DenseNetConfig, channels: int) -> nn.BatchNorm:
    # Gluon's momentum weighs the old statistic, PyTorch's the new one.
    return nn.BatchNorm(momentum=1.0 - config.bn_momentum, epsilon=config.bn_eps, in_channels=channels)


def _conv(config: DenseNetConfig, in_channels: int, channels: int, kernel: int) -> nn.Conv2D:
    return nn.Conv2D(channels, kernel, padding=kernel // 2, use_bias=config.conv_bias,
                     in_channels=in_channels)


class NamedSequential(nn.HybridBlock):
    """PyTorch's nn.Sequential(OrderedDict(...)): children run in order and keep their names."""

    def add(self, name: str, block: nn.HybridBlock) -> None:
        self.register_child(block, name)

    def hybrid_forward(self, F, x):
        for block in self._children.values():
            x = block(x)
        return x


class DenseLayer(nn.HybridBlock):
    def __init__(self, config: DenseNetConfig, in_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        growth = config.growth_rate
        self.bottleneck = config.bottleneck
        self.drop_rate = float(config.drop_rate)
        self.relu = _activation(config)
        with self.name_scope():
            self.norm1 = _norm(config, in_features)
            if self.bottleneck:
                width = config.bn_size * growth
                self.conv1 = _conv(config, in_features, width, 1)
                self.norm2 = _norm(config, width)
                self.conv2 = _conv(config, width, growth, 3)
            else:
                self.conv1 = _conv(config, in_features, growth, 3)

    def hybrid_forward(self, F, x):
        out = self.conv1(self.relu(F, self.norm1(x)))
        if self.bottleneck:
            out = self.conv2(self.relu(F, self.norm2(out)))
        if self.drop_rate > 0:
            out = F.Dropout(out, p=self.drop_rate)
        return out


class DenseBlock(nn.HybridBlock):
    def __init__(self, config: DenseNetConfig, layers: int, in_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_layers = layers
        with self.name_scope():
            for i in range(layers):
                setattr(self, f"denselayer{i + 1}", DenseLayer(config, in_features + i * config.growth_rate))

    def hybrid_forward(self, F, x):
        # Each layer appends its features to the running map: the same tensors as torchvision's
        # concatenation of all earlier maps for every layer, and 3% faster for DenseNet-121 here.
        for i in range(1, self.num_layers + 1):
            x = F.concat(x, getattr(self, f"denselayer{i}")(x), dim=1)
        return x


class Transition(nn.HybridBlock):
    def __init__(self, config: DenseNetConfig, in_features: int, out_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.relu = _activation(config)
        with self.name_scope():
            self.norm = _norm(config, in_features)
            self.conv = _conv(config, in_features, out_features, 1)
            self.pool = nn.AvgPool2D(TRANSITION_POOL, strides=TRANSITION_POOL)

    def hybrid_forward(self, F, x):
        return self.pool(self.conv(self.relu(F, self.norm(x))))


class ReLU(nn.HybridBlock):
    def __init__(self, config: DenseNetConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.relu = _activation(config)

    def hybrid_forward(self, F, x):
        return self.relu(F, x)


class DenseNet(nn.HybridBlock):
    def __init__(self, config: DenseNetConfig, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        stem = config.num_init_features
        self.relu = _activation(config)
        with self.name_scope():
            self.features = NamedSequential()
            with self.features.name_scope():
                kernel, stride, padding = config.stem_conv
                self.features.add("conv0", nn.Conv2D(stem, kernel, strides=stride, padding=padding,
                                                     use_bias=config.conv_bias, in_channels=in_channels))
                if config.stem_pool:
                    kernel, stride, padding = config.stem_pool
                    self.features.add("norm0", _norm(config, stem))
                    self.features.add("relu0", ReLU(config))
                    self.features.add("pool0", nn.MaxPool2D(kernel, strides=stride, padding=padding))
                stages = config.stages()
                for index, ((block_in, block_out, trans_out), layers) in enumerate(
                        zip(stages, config.block_config), start=1):
                    self.features.add(f"denseblock{index}", DenseBlock(config, layers, block_in))
                    if index < len(stages):
                        self.features.add(f"transition{index}", Transition(config, block_out, trans_out))
                self.features.add("norm5", _norm(config, config.out_channels()))
            self.classifier = nn.Dense(num_classes, in_units=config.out_channels())

    def hybrid_forward(self, F, x):
        out = self.relu(F, self.features(x))
        return self.classifier(F.flatten(global_avg_pool(F, out)))


def build(config: DenseNetConfig, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return DenseNet(config, num_classes, in_channels)
