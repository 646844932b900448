"""ShuffleNet V1 and V2 in Flax NNX, module for module `zoo_torch.shufflenet` (V2: torchvision's tree)."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from zoo.specs.shufflenet import ShuffleNetV1Config, ShuffleNetV2Config, V1Unit

from .layers import (AvgPool2d, BatchNorm2d, ChannelShuffle, Conv2d, Linear, MaxPool2d, ReLU, Sequential,
                     channel_shuffle, fill, init_rngs, normal)
from .network import Network, named_modules


def _bn(channels: int, config) -> BatchNorm2d:
    return BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


def _stem(in_channels: int, out_channels: int, config, *, rngs: nnx.Rngs) -> Sequential:
    return Sequential(
        Conv2d(in_channels, out_channels, 3, 2, 1, bias=False, rngs=rngs),
        _bn(out_channels, config),
        ReLU(),
    )


# ShuffleNet V1 ---------------------------------------------------------------------------------

class ShuffleV1Unit(nnx.Module):
    """Figure 2 (b) and (c) of the paper: 1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv.

    Stride 1 adds the input; stride 2 concatenates a 3x3/2 average-pooled input.
    """

    def __init__(self, unit: V1Unit, config: ShuffleNetV1Config, *, rngs: nnx.Rngs) -> None:
        self.stride = unit.stride
        mid = unit.mid_channels
        self.branch = Sequential(
            Conv2d(unit.in_channels, mid, 1, bias=False, groups=unit.first_groups, rngs=rngs),
            _bn(mid, config),
            ReLU(),
            # Kept for one group too, so every variant has the same keys (and torch's child indices).
            ChannelShuffle(unit.groups),
            # No ReLU after the depthwise convolution (Section 3.2 of the paper).
            Conv2d(mid, mid, 3, unit.stride, 1, groups=mid, bias=False, rngs=rngs),
            _bn(mid, config),
            Conv2d(mid, unit.branch_channels, 1, bias=False, groups=unit.groups, rngs=rngs),
            _bn(unit.branch_channels, config),
        )
        # count_include_pad=True (PyTorch's default), as in the reference code.
        self.shortcut = AvgPool2d(3, 2, 1) if unit.stride == 2 else None
        self.relu = ReLU()

    def __call__(self, x):
        if self.stride == 1:
            return self.relu(x + self.branch(x))
        # The pooled input follows a ReLU and is non-negative already: only the branch needs one.
        return jnp.concatenate((self.shortcut(x), self.relu(self.branch(x))), axis=-1)


class ShuffleNetV1(Network):
    def __init__(self, config: ShuffleNetV1Config, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        stem = config.stem_width()
        self.conv1 = _stem(in_channels, stem, config, rngs=rngs)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        units = config.units()
        self.stages = [f"stage{stage}" for stage in sorted({u.stage for u in units})]
        for stage in sorted({u.stage for u in units}):
            setattr(self, f"stage{stage}", Sequential(
                *(ShuffleV1Unit(u, config, rngs=rngs) for u in units if u.stage == stage)))
        self.fc = Linear(units[-1].out_channels, num_classes, bias=config.fc_bias, rngs=rngs)
        self._initialize_weights(rngs)

    def _initialize_weights(self, rngs: nnx.Rngs) -> None:
        # The reference code's scheme: N(0, 0.01) for the stem and the classifier, N(0, 1/fan-in
        # channels) elsewhere, BatchNorm bias a small positive 1e-4.
        for name, _, m in named_modules(self):
            if isinstance(m, Conv2d):
                std = 0.01 if name.startswith("conv1") else 1.0 / m.kernel[...].shape[2]
                m.kernel.set_value(normal(rngs, m.kernel[...].shape, std))
            elif isinstance(m, BatchNorm2d):
                fill(m.bias, 1e-4)
            elif isinstance(m, Linear):
                m.kernel.set_value(normal(rngs, m.kernel[...].shape, 0.01))
                if m.bias is not None:
                    fill(m.bias, 0.0)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        return self.fc(x.mean((1, 2)))


# ShuffleNet V2 (torchvision's module tree) ------------------------------------------------------

class InvertedResidual(nnx.Module):
    """Figure 3 (c) and (d) of the V2 paper: stride 1 splits the channels in halves and transforms
    one; stride 2 transforms the whole input in two branches. Either way the halves are shuffled."""

    def __init__(self, inp: int, oup: int, stride: int, config: ShuffleNetV2Config, *, rngs: nnx.Rngs) -> None:
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = Sequential(
                Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False, rngs=rngs),
                _bn(inp, config),
                Conv2d(inp, branch_features, 1, bias=False, rngs=rngs),
                _bn(branch_features, config),
                ReLU(),
            )
        else:
            self.branch1 = Sequential()
        self.branch2 = Sequential(
            Conv2d(inp if stride > 1 else branch_features, branch_features, 1, bias=False, rngs=rngs),
            _bn(branch_features, config),
            ReLU(),
            Conv2d(branch_features, branch_features, 3, stride, 1, groups=branch_features, bias=False, rngs=rngs),
            _bn(branch_features, config),
            Conv2d(branch_features, branch_features, 1, bias=False, rngs=rngs),
            _bn(branch_features, config),
            ReLU(),
        )

    def __call__(self, x):
        if self.stride == 1:
            x1, x2 = jnp.split(x, 2, axis=-1)
            out = jnp.concatenate((x1, self.branch2(x2)), axis=-1)
        else:
            out = jnp.concatenate((self.branch1(x), self.branch2(x)), axis=-1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(Network):
    def __init__(self, config: ShuffleNetV2Config, num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> None:
        channels = config.stages_out_channels
        self.conv1 = _stem(in_channels, channels[0], config, rngs=rngs)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stages = []
        width = channels[0]
        for stage, (repeats, out) in enumerate(zip(config.stages_repeats, config.stage_widths()), start=2):
            units = [InvertedResidual(width, out, 2, config, rngs=rngs)]
            units += [InvertedResidual(out, out, 1, config, rngs=rngs) for _ in range(repeats - 1)]
            setattr(self, f"stage{stage}", Sequential(*units))
            self.stages.append(f"stage{stage}")
            width = out
        self.conv5 = Sequential(
            Conv2d(width, channels[-1], 1, bias=False, rngs=rngs),
            _bn(channels[-1], config),
            ReLU(),
        )
        self.fc = Linear(channels[-1], num_classes, rngs=rngs)
        # torchvision keeps PyTorch's default initialisation for ShuffleNetV2 (the layers' own).

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        x = self.conv5(x)
        return self.fc(x.mean((1, 2)))


def build(config: ShuffleNetV1Config | ShuffleNetV2Config, *, num_classes: int, in_channels: int) -> Network:
    if isinstance(config, ShuffleNetV1Config):
        return ShuffleNetV1(config, num_classes, in_channels, rngs=init_rngs())
    if isinstance(config, ShuffleNetV2Config):
        return ShuffleNetV2(config, num_classes, in_channels, rngs=init_rngs())
    raise TypeError(f"expected a ShuffleNetV1Config or ShuffleNetV2Config, got {type(config).__name__}")
