"""GoogLeNet in Flax NNX, module for module `zoo_torch.googlenet` (torchvision's `GoogLeNet`).

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

from zoo.specs.googlenet import STEMS, GoogLeNetConfig

from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Identity, Linear, MaxPool2d, Sequential,
                     flatten, init_rngs, on_device)
from .network import Network

# What torchvision returns in training mode with the auxiliary classifiers on.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nnx.Module):
    """Convolution without bias, BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, config: GoogLeNetConfig, *, rngs: nnx.Rngs,
                 **kwargs) -> None:
        self.conv = Conv2d(in_channels, out_channels, bias=False, rngs=rngs, **kwargs)
        self.bn = BatchNorm2d(out_channels, eps=config.bn_eps, momentum=config.bn_momentum)

    def __call__(self, x):
        return jax.nn.relu(self.bn(self.conv(x)))


class Inception(nnx.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...], config: GoogLeNetConfig, *,
                 rngs: nnx.Rngs) -> None:
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = widths
        self.branch1 = BasicConv2d(in_channels, ch1x1, config, kernel_size=1, rngs=rngs)
        self.branch2 = Sequential(
            BasicConv2d(in_channels, ch3x3red, config, kernel_size=1, rngs=rngs),
            BasicConv2d(ch3x3red, ch3x3, config, kernel_size=3, padding=1, rngs=rngs),
        )
        self.branch3 = Sequential(
            BasicConv2d(in_channels, ch5x5red, config, kernel_size=1, rngs=rngs),
            # torchvision's 3x3 where the paper has 5x5 (pytorch/vision#906), for its keys and counts.
            BasicConv2d(ch5x5red, ch5x5, config, kernel_size=3, padding=1, rngs=rngs),
        )
        self.branch4 = Sequential(
            MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, config, kernel_size=1, rngs=rngs),
        )

    def __call__(self, x):
        return jnp.concatenate([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], axis=-1)


def inception_width(widths: tuple[int, ...]) -> int:
    return widths[0] + widths[2] + widths[4] + widths[5]


class InceptionAux(nnx.Module):
    def __init__(self, in_channels: int, num_classes: int, config: GoogLeNetConfig, *, rngs: nnx.Rngs) -> None:
        self.pool_size = config.aux_pool
        self.conv = BasicConv2d(in_channels, config.aux_channels, config, kernel_size=1, rngs=rngs)
        self.fc1 = Linear(config.aux_channels * config.aux_pool ** 2, config.aux_hidden, rngs=rngs)
        self.fc2 = Linear(config.aux_hidden, num_classes, rngs=rngs)
        self.dropout = Dropout(config.dropout_aux, rngs=rngs)

    def __call__(self, x):
        # torch calls F.adaptive_avg_pool2d here: the layer's computation, without a module of its own.
        x = AdaptiveAvgPool2d(self.pool_size).forward(x)
        x = flatten(self.conv(x))
        x = self.dropout(jax.nn.relu(self.fc1(x)))
        return self.fc2(x)


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


class GoogLeNet(Network):
    def __init__(self, config: GoogLeNetConfig, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        if config.transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB images and needs in_channels=3, got {in_channels}")
        self.aux_logits = config.aux_logits
        self.transform_input = config.transform_input
        self.input_transform = config.input_transform()
        stem = STEMS[config.stem]
        c1, c2, c3 = config.stem_channels
        pools = {name: (kernel, stride) for name, kernel, stride in config.pools()}

        def pool(name: str) -> nnx.Module:
            if name not in pools:
                return Identity()
            return MaxPool2d(pools[name][0], stride=pools[name][1], ceil_mode=True)

        self.conv1 = BasicConv2d(in_channels, c1, config, kernel_size=stem["kernel"], stride=stem["stride"],
                                 padding=stem["padding"], rngs=rngs)
        self.maxpool1 = pool("maxpool1")
        self.conv2 = BasicConv2d(c1, c2, config, kernel_size=1, rngs=rngs)
        self.conv3 = BasicConv2d(c2, c3, config, kernel_size=3, padding=1, rngs=rngs)
        self.maxpool2 = pool("maxpool2")
        # Attribute order is torchvision's, so canonical names come in the same order.
        self.stages = tuple(tuple(names) for names in config.module_names())
        channels = c3
        aux_inputs = []
        for s, (names, stage) in enumerate(zip(self.stages, config.inception)):
            for i, (name, widths) in enumerate(zip(names, stage)):
                setattr(self, name, Inception(channels, widths, config, rngs=rngs))
                channels = inception_width(widths)
                if s == 1 and i in (0, 3):
                    aux_inputs.append(channels)
            if s < 2:
                setattr(self, f"maxpool{3 + s}", pool(f"maxpool{3 + s}"))
        self.aux1_after, self.aux2_after = self.stages[1][0], (self.stages[1][3] if len(self.stages[1]) > 3 else None)
        if config.aux_logits:
            self.aux1 = InceptionAux(aux_inputs[0], num_classes, config, rngs=rngs)
            self.aux2 = InceptionAux(aux_inputs[1], num_classes, config, rngs=rngs)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.dropout = Dropout(config.dropout, rngs=rngs)
        self.fc = Linear(channels, num_classes, rngs=rngs)
        _initialize(self, rngs)

    def _transform_input(self, x):
        # From ImageNet mean/std normalisation to the (x - 0.5) / 0.5 scale the ported weights expect.
        scale, offset = (jnp.asarray(v, x.dtype) for v in self.input_transform)
        return x * scale + offset

    def forward(self, x):
        # Training mode as torch's `self.training`: model.train() / model.eval() set the dropout's flag.
        training = not self.dropout.deterministic
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        aux1 = aux2 = None
        for s, names in enumerate(self.stages):
            for name in names:
                x = getattr(self, name)(x)
                if self.aux1 is not None and training:
                    if name == self.aux1_after:
                        aux1 = self.aux1(x)
                    elif name == self.aux2_after:
                        aux2 = self.aux2(x)
            if s < 2:
                x = getattr(self, f"maxpool{3 + s}")(x)
        x = self.dropout(flatten(self.avgpool(x)))
        x = self.fc(x)
        if training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def build(config: GoogLeNetConfig, *, num_classes: int, in_channels: int) -> Network:
    return GoogLeNet(config, num_classes, in_channels, rngs=init_rngs())
