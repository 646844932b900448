"""DenseNet in Flax NNX, module for module `zoo_torch.densenet` (torchvision's tree, so its checkpoints
load): `features.denseblock1.denselayer1.norm1`, `features.transition1.conv`, `features.norm5`, `classifier`.
The network is the spec's plan (`DenseNetConfig.plan`): every layer's convolutions, widths, biases and names
are decided there, and only translated into modules here."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.plan import Conv
from zoo.specs.densenet import DenseBlockPlan, DenseLayerPlan, DenseNetConfig, DenseNetPlan, TransitionPlan

from .layers import AvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, ReLU, fans, fill, init_rngs, normal
from .network import Network

Norm = Callable[[int], BatchNorm2d]


def conv2d(conv: Conv, *, rngs: nnx.Rngs) -> Conv2d:
    return Conv2d(conv.in_channels, conv.out_channels, conv.kernel, stride=conv.stride, padding=conv.padding,
                  groups=conv.groups, bias=conv.bias, rngs=rngs)


class DenseLayer(nnx.Module):
    def __init__(self, plan: DenseLayerPlan, norm: Norm, memory_efficient: bool, *, rngs: nnx.Rngs) -> None:
        for k, conv in enumerate(plan.convs, start=1):
            setattr(self, f"norm{k}", norm(conv.in_channels))
            setattr(self, f"relu{k}", ReLU())
            setattr(self, f"conv{k}", conv2d(conv, rngs=rngs))
        self.bottleneck = plan.bottleneck
        self.memory_efficient = memory_efficient
        # torch calls F.dropout, so no module of this name appears in its tree: hence the private name.
        self._dropout = Dropout(plan.drop_rate, rngs=rngs) if plan.drop_rate > 0 else None

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

    def __init__(self, plan: DenseBlockPlan, norm: Norm, memory_efficient: bool, *, rngs: nnx.Rngs) -> None:
        for layer in plan.layers:
            setattr(self, layer.local(), DenseLayer(layer, norm, memory_efficient, rngs=rngs))
        self.layer_names = tuple(layer.local() for layer in plan.layers)

    def __call__(self, x):
        features = [x]
        for name in self.layer_names:
            features.append(getattr(self, name)(features))
        return jnp.concatenate(features, axis=-1)


class Transition(nnx.Module):
    def __init__(self, plan: TransitionPlan, norm: Norm, *, rngs: nnx.Rngs) -> None:
        self.norm = norm(plan.norm)
        self.relu = ReLU()
        self.conv = conv2d(plan.conv, rngs=rngs)
        self.pool = AvgPool2d(plan.pool.kernel, stride=plan.pool.stride, padding=plan.pool.padding)

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
    def __init__(self, plan: DenseNetPlan, *, rngs: nnx.Rngs) -> None:
        def norm(channels: int) -> BatchNorm2d:
            return BatchNorm2d(channels, eps=plan.bn_eps, momentum=plan.bn_momentum)

        self.features = Features()
        self.features.add_module("conv0", conv2d(plan.stem, rngs=rngs))
        if plan.stem_norm:
            self.features.add_module("norm0", norm(plan.stem_norm))
            self.features.add_module("relu0", ReLU())
        if plan.pool:
            self.features.add_module("pool0", MaxPool2d(plan.pool.kernel, plan.pool.stride, plan.pool.padding))
        for block, transition in plan.stages():
            self.features.add_module(block.local(), DenseBlock(block, norm, plan.memory_efficient, rngs=rngs))
            if transition is not None:
                self.features.add_module(transition.local(), Transition(transition, norm, rngs=rngs))
        self.features.add_module("norm5", norm(plan.final_norm))
        self.classifier = Linear(plan.classifier.in_features, plan.classifier.out_features, rngs=rngs)
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
    return DenseNet(config.plan(num_classes, in_channels), rngs=init_rngs())
