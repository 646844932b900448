"""DenseNet in Flax NNX, module for module `zoo_torch.densenet` (torchvision's tree, so its checkpoints
load): `features.denseblock1.denselayer1.norm1`, `features.transition1.conv`, `features.norm5`, `classifier`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.specs.densenet import TRANSITION_POOL, DenseNetConfig

from .layers import AvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, ReLU, fans, fill, init_rngs, normal
from .network import Network


def _norm(config: DenseNetConfig, channels: int) -> BatchNorm2d:
    return BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


class DenseLayer(nnx.Module):
    def __init__(self, config: DenseNetConfig, in_features: int, *, rngs: nnx.Rngs) -> None:
        growth, bias = config.growth_rate, config.conv_bias
        self.norm1 = _norm(config, in_features)
        self.relu1 = ReLU()
        if config.bottleneck:
            width = config.bn_size * growth
            self.conv1 = Conv2d(in_features, width, 1, bias=bias, rngs=rngs)
            self.norm2 = _norm(config, width)
            self.relu2 = ReLU()
            self.conv2 = Conv2d(width, growth, 3, padding=1, bias=bias, rngs=rngs)
        else:
            # Without a bottleneck the layer is BN-ReLU-Conv3x3 (DenseNet without "B"; d2l's conv_block).
            self.conv1 = Conv2d(in_features, growth, 3, padding=1, bias=bias, rngs=rngs)
        self.bottleneck = config.bottleneck
        self.memory_efficient = config.memory_efficient
        # torch calls F.dropout, so no module of this name appears in its tree: hence the private name.
        self._dropout = Dropout(config.drop_rate, rngs=rngs) if config.drop_rate > 0 else None

    def bn_function(self, *features):
        return self.conv1(self.relu1(self.norm1(jnp.concatenate(features, axis=-1))))

    def __call__(self, features: list):
        # The concatenation is the memory hog (quadratic in depth): recomputing it and its BN-ReLU-conv
        # in the backward pass instead of keeping them is torchvision's memory_efficient. As torch, only
        # where gradients are taken in training (torch: with grad enabled); inference runs it plainly.
        if self.memory_efficient and not self.norm1.use_running_average:
            out = self._checkpointed_bn_function(features)
        else:
            out = self.bn_function(*features)
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        if self._dropout is not None:
            out = self._dropout(out)
        return out

    def _checkpointed_bn_function(self, features: list):
        # jax.checkpoint over a functional copy, rather than nnx.remat, which re-homes the modules into
        # its trace and so breaks a model closed over by a plain JAX transform. norm1's statistics are
        # written back once, from the forward pass; the backward pass's recomputation only feeds gradients.
        graphdef, state = nnx.split(self)

        def bn_function(state, *features):
            layer = nnx.merge(graphdef, state)
            return layer.bn_function(*features), nnx.state(layer.norm1, nnx.BatchStat)

        out, statistics = jax.checkpoint(bn_function)(state, *features)
        nnx.update(self.norm1, statistics)
        return out


class DenseBlock(nnx.Module):
    """torch's nn.ModuleDict of `denselayer1`, `denselayer2`, ..."""

    def __init__(self, config: DenseNetConfig, layers: int, in_features: int, *, rngs: nnx.Rngs) -> None:
        for i in range(layers):
            setattr(self, f"denselayer{i + 1}", DenseLayer(config, in_features + i * config.growth_rate, rngs=rngs))
        self.num_layers = layers

    def __call__(self, x):
        features = [x]
        for i in range(self.num_layers):
            features.append(getattr(self, f"denselayer{i + 1}")(features))
        return jnp.concatenate(features, axis=-1)


class Transition(nnx.Module):
    def __init__(self, config: DenseNetConfig, in_features: int, out_features: int, *, rngs: nnx.Rngs) -> None:
        self.norm = _norm(config, in_features)
        self.relu = ReLU()
        self.conv = Conv2d(in_features, out_features, 1, bias=config.conv_bias, rngs=rngs)
        self.pool = AvgPool2d(TRANSITION_POOL, stride=TRANSITION_POOL)

    def __call__(self, x):
        return self.pool(self.conv(self.relu(self.norm(x))))


class Features(nnx.Module):
    """torch's `nn.Sequential` filled by `add_module(name, ...)`: named children, run in the order added."""

    def __init__(self) -> None:
        self._order: tuple[str, ...] = ()

    def add_module(self, name: str, module: nnx.Module) -> None:
        setattr(self, name, module)
        self._order += (name,)

    def __call__(self, x):
        for name in self._order:
            x = getattr(self, name)(x)
        return x


class DenseNet(Network):
    def __init__(self, config: DenseNetConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        stem = config.num_init_features
        self.features = Features()
        kernel, stride, padding = config.stem_conv
        self.features.add_module("conv0", Conv2d(in_channels, stem, kernel, stride=stride, padding=padding,
                                                 bias=config.conv_bias, rngs=rngs))
        # Huang et al.'s CIFAR stem stops here: the first dense layer's BN-ReLU follows directly.
        if config.stem_pool:
            self.features.add_module("norm0", _norm(config, stem))
            self.features.add_module("relu0", ReLU())
            self.features.add_module("pool0", MaxPool2d(*config.stem_pool))
        stages = config.stages()
        for index, ((block_in, block_out, trans_out), layers) in enumerate(zip(stages, config.block_config), start=1):
            self.features.add_module(f"denseblock{index}", DenseBlock(config, layers, block_in, rngs=rngs))
            if index < len(stages):
                self.features.add_module(f"transition{index}", Transition(config, block_out, trans_out, rngs=rngs))
        # torchvision calls the final BN norm5 whatever the number of blocks.
        self.features.add_module("norm5", _norm(config, config.out_channels()))
        self.classifier = Linear(config.out_channels(), num_classes, rngs=rngs)
        _initialize(self, rngs)

    def forward(self, x):
        out = jax.nn.relu(self.features(x))
        return self.classifier(jnp.mean(out, axis=(1, 2)))


def _initialize(model: DenseNet, rngs: nnx.Rngs) -> None:
    # torchvision's: kaiming_normal_ (fan_in, gain sqrt(2)) for convs with zero biases; BN is built as
    # the identity already; the classifier keeps Linear's default weight and a zero bias.
    for _, m in nnx.iter_graph(model):
        if isinstance(m, Conv2d):
            fan_in, _ = fans(m.kernel)
            m.kernel.set_value(normal(rngs, m.kernel[...].shape, (2.0 / fan_in) ** 0.5))
            if m.bias is not None:
                fill(m.bias, 0.0)
    fill(model.classifier.bias, 0.0)


def build(config: DenseNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return DenseNet(config, num_classes, in_channels, rngs=init_rngs())
