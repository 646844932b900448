"""ResNet in PyTorch, module for module torchvision's (`torchvision.models.resnet`), so its checkpoints
load with strict=True. `attention` lets a family put a module (SE) on each block's residual branch.

`preactivation=True` builds ResNet v2 (He et al., 2016) with the pre-activation blocks below, and
`conv_bias` / `input_norm` the variants Keras and Gluon build (zoo.specs.resnet says who builds which)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from zoo.specs.resnet import ResNetConfig

# channels -> module applied to the residual branch before the addition (e.g. squeeze-and-excitation)
Attention = Callable[[int], nn.Module] | None


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=bias)


class BasicBlock(nn.Module):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.Module | None, attention: Attention = None) -> None:
        super().__init__()
        norm = _norm(config)
        _, _, bias3x3 = config.conv_biases()
        self.conv1 = conv3x3(inplanes, planes, stride, bias=bias3x3)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, bias=bias3x3)
        self.bn2 = norm(planes)
        self.se = None if attention is None else attention(planes)
        self.downsample = downsample

    def residual(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        out = self.residual(x)
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.Module | None, attention: Attention = None) -> None:
        super().__init__()
        norm = _norm(config)
        width = config.bottleneck_width(planes)
        out = planes * config.expansion
        stride1, stride2 = config.bottleneck_strides(stride)
        _, bias1x1, bias3x3 = config.conv_biases()
        self.conv1 = conv1x1(inplanes, width, stride1, bias=bias1x1)
        self.bn1 = norm(width)
        self.conv2 = conv3x3(width, width, stride2, config.groups, bias=bias3x3)
        self.bn2 = norm(width)
        self.conv3 = conv1x1(width, out, bias=bias1x1)
        self.bn3 = norm(out)
        self.relu = nn.ReLU(inplace=True)
        self.se = None if attention is None else attention(out)
        self.downsample = downsample

    def residual(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x):
        out = self.residual(x)
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class PreActBasicBlock(nn.Module):
    """ResNet v2's basic block: BN-ReLU-conv twice; the projection shortcut sees the pre-activated input."""

    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.Module | None, attention: Attention = None) -> None:
        super().__init__()
        norm = _norm(config)
        _, _, bias3x3 = config.conv_biases()
        self.bn1 = norm(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride, bias=bias3x3)
        self.bn2 = norm(planes)
        self.conv2 = conv3x3(planes, planes, bias=bias3x3)
        self.se = None if attention is None else attention(planes)
        self.downsample = downsample

    def residual(self, x):
        return self.conv2(self.relu(self.bn2(self.conv1(x))))

    def forward(self, x):
        out = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(out)
        out = self.residual(out)
        if self.se is not None:
            out = self.se(out)
        return out + identity


class PreActBottleneck(nn.Module):
    """ResNet v2's bottleneck: BN-ReLU before each of its three convolutions."""

    def __init__(self, config: ResNetConfig, inplanes: int, planes: int, stride: int,
                 downsample: nn.Module | None, attention: Attention = None) -> None:
        super().__init__()
        norm = _norm(config)
        width = config.bottleneck_width(planes)
        out = planes * config.expansion
        stride1, stride2 = config.bottleneck_strides(stride)
        _, bias1x1, bias3x3 = config.conv_biases()
        self.bn1 = norm(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(inplanes, width, stride1, bias=bias1x1)
        self.bn2 = norm(width)
        self.conv2 = conv3x3(width, width, stride2, config.groups, bias=bias3x3)
        self.bn3 = norm(width)
        self.conv3 = conv1x1(width, out, bias=bias1x1)
        self.se = None if attention is None else attention(out)
        self.downsample = downsample

    def residual(self, x):
        out = self.conv1(x)
        out = self.conv2(self.relu(self.bn2(out)))
        return self.conv3(self.relu(self.bn3(out)))

    def forward(self, x):
        out = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(out)
        out = self.residual(out)
        if self.se is not None:
            out = self.se(out)
        return out + identity


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
PREACT_BLOCKS = {"basic": PreActBasicBlock, "bottleneck": PreActBottleneck}


def _norm(config: ResNetConfig) -> Callable[[int], nn.BatchNorm2d]:
    return lambda channels: nn.BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig, num_classes: int, in_channels: int,
                 attention: Attention = None) -> None:
        super().__init__()
        block = (PREACT_BLOCKS if config.preactivation else BLOCKS)[config.block]
        norm = _norm(config)
        inplanes = config.stem_width
        bias_outer, _, _ = config.conv_biases()
        # Gluon v2's normalisation of the image itself: statistics only, no scale or shift.
        self.input_bn = (nn.BatchNorm2d(in_channels, eps=config.bn_eps, momentum=config.bn_momentum, affine=False)
                         if config.input_norm else None)
        kernel, stride, padding = config.stem_conv
        self.conv1 = nn.Conv2d(in_channels, inplanes, kernel, stride=stride, padding=padding, bias=bias_outer)
        self.bn1 = norm(inplanes)
        self.relu = nn.ReLU(inplace=True)
        # The CIFAR stem has no pool; an Identity keeps torchvision's module tree and forward.
        self.maxpool = nn.MaxPool2d(*config.stem_pool) if config.stem_pool else nn.Identity()
        for index, (planes, blocks, stride) in enumerate(
                zip(config.widths, config.layers, config.stage_strides()), start=1):
            out = planes * config.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                projection = conv1x1(inplanes, out, stride, bias=bias_outer)
                # v2 projects the block's pre-activated input, so no BN follows: `downsample.0` alone
                downsample = nn.Sequential(projection) if config.preactivation else nn.Sequential(projection, norm(out))
            layers = [block(config, inplanes, planes, stride, downsample, attention)]
            layers += [block(config, out, planes, 1, None, attention) for _ in range(1, blocks)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            inplanes = out
        self.num_stages = len(config.layers)
        self.final_bn = norm(inplanes) if config.preactivation else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self._initialize(config)

    def _initialize(self, config: ResNetConfig) -> None:
        # torchvision's: He init for a ReLU net, fan_out; BN as the identity; fc keeps Linear's default.
        if self.fc.weight.is_meta:
            # Shapes only (zoo.convert builds on the meta device): nothing to draw, and torch's meta
            # normal_ imports torch._dynamo, which crashes a process that has loaded TensorFlow.
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if config.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        if self.input_bn is not None:
            x = self.input_bn(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        if self.final_bn is not None:
            x = self.relu(self.final_bn(x))
        return self.fc(self.avgpool(x).flatten(1))


def build(config: ResNetConfig, num_classes: int, in_channels: int, attention: Attention = None) -> nn.Module:
    return ResNet(config, num_classes, in_channels, attention)
