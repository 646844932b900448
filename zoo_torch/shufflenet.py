"""ShuffleNet V1 and V2 in PyTorch. V2's module tree and state_dict keys are torchvision's."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from zoo.specs.shufflenet import ShuffleNetV1Config, ShuffleNetV2Config, V1Unit


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of `groups` groups: (g, C/g) -> (C/g, g), so that the next group
    convolution sees channels from every group of the previous one."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _bn(channels: int, config) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


def _stem(in_channels: int, out_channels: int, config) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, 2, 1, bias=False),
        _bn(out_channels, config),
        nn.ReLU(inplace=True),
    )


# ShuffleNet V1 ---------------------------------------------------------------------------------

class ShuffleV1Unit(nn.Module):
    """Figure 2 (b) and (c) of the paper: 1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv.

    Stride 1 adds the input; stride 2 concatenates a 3x3/2 average-pooled input, so the branch
    only produces the channels the unit adds.
    """

    def __init__(self, unit: V1Unit, config: ShuffleNetV1Config) -> None:
        super().__init__()
        self.stride = unit.stride
        mid = unit.mid_channels
        self.branch = nn.Sequential(
            nn.Conv2d(unit.in_channels, mid, 1, bias=False, groups=unit.first_groups),
            _bn(mid, config),
            nn.ReLU(inplace=True),
            # Kept for one group too (where it changes nothing) so every variant has the same keys.
            ChannelShuffle(unit.groups),
            # No ReLU after the depthwise convolution (Section 3.2 of the paper).
            nn.Conv2d(mid, mid, 3, unit.stride, 1, groups=mid, bias=False),
            _bn(mid, config),
            nn.Conv2d(mid, unit.branch_channels, 1, bias=False, groups=unit.groups),
            _bn(unit.branch_channels, config),
        )
        if unit.stride == 2:
            # count_include_pad=True (PyTorch's default), as in the reference code.
            self.shortcut = nn.AvgPool2d(3, 2, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return self.relu(x + self.branch(x))
        # The pooled input follows a ReLU and is non-negative already: only the branch needs one.
        return torch.cat((self.shortcut(x), self.relu(self.branch(x))), 1)


class ShuffleNetV1(nn.Module):
    def __init__(self, config: ShuffleNetV1Config, num_classes: int, in_channels: int) -> None:
        super().__init__()
        stem = config.stem_width()
        self.conv1 = _stem(in_channels, stem, config)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        units = config.units()
        self.stages = [f"stage{stage}" for stage in sorted({u.stage for u in units})]
        for stage in sorted({u.stage for u in units}):
            setattr(self, f"stage{stage}", nn.Sequential(
                *(ShuffleV1Unit(u, config) for u in units if u.stage == stage)))
        self.fc = nn.Linear(units[-1].out_channels, num_classes, bias=config.fc_bias)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        # The reference code's scheme: N(0, 0.01) for the stem and the classifier, N(0, 1/fan-in
        # channels) elsewhere, BatchNorm bias a small positive 1e-4.
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01 if name.startswith("conv1") else 1.0 / m.weight.shape[1])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 1e-4)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        return self.fc(x.mean([2, 3]))


# ShuffleNet V2 (torchvision's module tree) ------------------------------------------------------

class InvertedResidual(nn.Module):
    """Figure 3 (c) and (d) of the V2 paper: stride 1 splits the channels in halves and transforms
    one; stride 2 transforms the whole input in two branches. Either way the halves are shuffled."""

    def __init__(self, inp: int, oup: int, stride: int, config: ShuffleNetV2Config) -> None:
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                _bn(inp, config),
                nn.Conv2d(inp, branch_features, 1, bias=False),
                _bn(branch_features, config),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, bias=False),
            _bn(branch_features, config),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch_features, branch_features, 3, stride, 1, groups=branch_features, bias=False),
            _bn(branch_features, config),
            nn.Conv2d(branch_features, branch_features, 1, bias=False),
            _bn(branch_features, config),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, config: ShuffleNetV2Config, num_classes: int, in_channels: int) -> None:
        super().__init__()
        channels = config.stages_out_channels
        self.conv1 = _stem(in_channels, channels[0], config)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stages = []
        width = channels[0]
        for stage, (repeats, out) in enumerate(zip(config.stages_repeats, config.stage_widths()), start=2):
            units = [InvertedResidual(width, out, 2, config)]
            units += [InvertedResidual(out, out, 1, config) for _ in range(repeats - 1)]
            setattr(self, f"stage{stage}", nn.Sequential(*units))
            self.stages.append(f"stage{stage}")
            width = out
        self.conv5 = nn.Sequential(
            nn.Conv2d(width, channels[-1], 1, bias=False),
            _bn(channels[-1], config),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(channels[-1], num_classes)
        # torchvision keeps PyTorch's default initialisation for ShuffleNetV2.

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        for stage in self.stages:
            x = getattr(self, stage)(x)
        x = self.conv5(x)
        return self.fc(x.mean([2, 3]))


def build(config: ShuffleNetV1Config | ShuffleNetV2Config, *, num_classes: int, in_channels: int) -> nn.Module:
    if isinstance(config, ShuffleNetV1Config):
        return ShuffleNetV1(config, num_classes, in_channels)
    if isinstance(config, ShuffleNetV2Config):
        return ShuffleNetV2(config, num_classes, in_channels)
    raise TypeError(f"expected a ShuffleNetV1Config or ShuffleNetV2Config, got {type(config).__name__}")
