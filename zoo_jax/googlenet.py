"""GoogLeNet in Flax NNX, module for module `zoo_torch.googlenet` (torchvision's `GoogLeNet`): the spec's
plan (`GoogLeNetConfig.plan`), translated here module by module.

With `aux_logits` the model returns, as torchvision's does, `GoogLeNetOutputs(logits, aux_logits2,
aux_logits1)` in training mode (`model.train()`) and only the logits in eval mode; the auxiliary heads
are not run in eval mode.
"""
from __future__ import annotations

from collections import namedtuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.specs.googlenet import AuxHead, BasicConv, GoogLeNetConfig, GoogLeNetPlan, InceptionModule

from .alexnet import SequentialNet, layer, modules
from .layers import AdaptiveAvgPool2d, Conv2d, Linear, flatten, init_rngs, on_device
from .network import Network

# What torchvision returns in training mode with the auxiliary classifiers on.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nnx.Module):
    """Convolution without bias, BatchNorm, ReLU."""

    def __init__(self, plan: BasicConv, rngs: nnx.Rngs) -> None:
        self.conv = layer(plan.conv, rngs)
        self.bn = layer(plan.bn, rngs)

    def __call__(self, x):
        return jax.nn.relu(self.bn(self.conv(x)))


class Inception(nnx.Module):
    def __init__(self, plan: InceptionModule, rngs: nnx.Rngs) -> None:
        branches = []
        for name, module in modules(plan.parts, rngs, depth=1, make=make):
            setattr(self, name, module)
            branches.append(name)
        self.branches = tuple(branches)

    def __call__(self, x):
        return jnp.concatenate([getattr(self, branch)(x) for branch in self.branches], axis=-1)


class InceptionAux(nnx.Module):
    def __init__(self, plan: AuxHead, rngs: nnx.Rngs) -> None:
        self.pool_size = plan.pool.size
        self.conv = BasicConv2d(plan.conv, rngs)
        self.fc1 = layer(plan.fc1, rngs)
        self.fc2 = layer(plan.fc2, rngs)
        self.dropout = layer(plan.dropout, rngs)

    def __call__(self, x):
        # torch calls F.adaptive_avg_pool2d here: the layer's computation, without a module of its own.
        x = AdaptiveAvgPool2d(self.pool_size).forward(x)
        x = flatten(self.conv(x))
        x = self.dropout(jax.nn.relu(self.fc1(x)))
        return self.fc2(x)


def make(piece, rngs: nnx.Rngs) -> nnx.Module:
    return {BasicConv: BasicConv2d, InceptionModule: Inception, AuxHead: InceptionAux}.get(type(piece), layer)(piece, rngs)


def _initialize(model: nnx.Module, rngs: nnx.Rngs) -> None:
    """torchvision's: convolution and dense weights from N(0, 0.01) truncated to [-2, 2]; dense biases kept.
    BatchNorm starts at weight 1 and bias 0 already."""
    std, bound = 0.01, 2.0
    kernels = [module.kernel for _, module in nnx.iter_graph(model) if isinstance(module, (Conv2d, Linear))]
    sizes = [int(np.prod(kernel[...].shape)) for kernel in kernels]
    # One draw cut into all the kernels: each shape of an eager jax.random call costs a compile of its own.
    draw = np.asarray(std * jax.random.truncated_normal(rngs.params(), -bound / std, bound / std, (sum(sizes),),
                                                        jnp.float32))
    for kernel, chunk in zip(kernels, np.split(draw, np.cumsum(sizes)[:-1])):
        kernel.set_value(on_device(chunk.reshape(kernel[...].shape)))


class GoogLeNet(SequentialNet):
    def __init__(self, plan: GoogLeNetPlan, *, rngs: nnx.Rngs) -> None:
        super().__init__(plan, make, rngs=rngs)
        self.transform = plan.transform
        # (module, the auxiliary head that reads its output beside the main path in training)
        self.aux = tuple((aux.after, aux.name) for aux in plan.aux)
        self.steps = tuple(name for name in self.steps if name not in dict(self.aux).values())
        _initialize(self, rngs)

    def forward(self, x):
        # Training mode as torch's `self.training`: model.train() / model.eval() set the dropout's flag.
        training = not self.dropout.deterministic
        if self.transform is not None:
            scale, offset = (jnp.asarray(v, x.dtype) for v in self.transform)
            x = x * scale + offset
        heads, aux = dict(self.aux), []
        for name in self.steps:
            module = getattr(self, name)
            x = flatten(x) if module is None else module(x)
            if name in heads and training:
                aux.append(getattr(self, heads[name])(x))
        if aux:
            return GoogLeNetOutputs(x, *reversed(aux))
        return x


def build(config: GoogLeNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return GoogLeNet(config.plan(num_classes, in_channels), rngs=init_rngs())
