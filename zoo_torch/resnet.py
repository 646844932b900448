"""ResNet in PyTorch, module for module torchvision's (`torchvision.models.resnet`), so its checkpoints
load with strict=True. The network is the spec's plan (`ResNetConfig.plan`): every block's convolutions,
strides, biases, shortcut and SE module are decided there, and only translated into modules here.

`preactivation=True` builds ResNet v2 (He et al., 2016) with the pre-activation blocks below, and
`conv_bias` / `input_norm` the variants Keras and Gluon build (zoo.specs.resnet says who builds which)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from zoo.plan import Conv
from zoo.specs.resnet import ResidualBlock, ResNetConfig, ResNetPlan

# (channels, squeezed channels) -> the module a block's `se` plan asks for (zoo_torch.senet's)
SqueezeExcitation = Callable[[int, int], nn.Module]
Norm = Callable[[int], nn.BatchNorm2d]


def conv2d(conv: Conv) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel, stride=conv.stride, padding=conv.padding,
                     groups=conv.groups, bias=conv.bias)


def _shortcut(plan: ResidualBlock, norm: Norm) -> nn.Sequential | None:
    if plan.downsample is None:
        return None
    projection = conv2d(plan.downsample)
    # v2 projects the block's pre-activated input, so no BN follows, nor in d2l's v1 blocks: `downsample.0` alone
    return nn.Sequential(projection, norm(projection.out_channels)) if plan.downsample_norm else nn.Sequential(projection)


def _se(plan: ResidualBlock, se: SqueezeExcitation | None) -> nn.Module | None:
    return None if plan.se is None else se(plan.out_channels, plan.se)


class BasicBlock(nn.Module):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None) -> None:
        super().__init__()
        conv1, conv2 = plan.convs
        self.conv1 = conv2d(conv1)
        self.bn1 = norm(conv1.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv2d(conv2)
        self.bn2 = norm(conv2.out_channels)
        self.se = _se(plan, se)
        self.downsample = _shortcut(plan, norm)

    def residual(self, x):
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        out = self.residual(x)
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None) -> None:
        super().__init__()
        conv1, conv2, conv3 = plan.convs
        self.conv1 = conv2d(conv1)
        self.bn1 = norm(conv1.out_channels)
        self.conv2 = conv2d(conv2)
        self.bn2 = norm(conv2.out_channels)
        self.conv3 = conv2d(conv3)
        self.bn3 = norm(conv3.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.se = _se(plan, se)
        self.downsample = _shortcut(plan, norm)

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

    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None) -> None:
        super().__init__()
        conv1, conv2 = plan.convs
        self.bn1 = norm(conv1.in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv2d(conv1)
        self.bn2 = norm(conv2.in_channels)
        self.conv2 = conv2d(conv2)
        self.se = _se(plan, se)
        self.downsample = _shortcut(plan, norm)

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

    def __init__(self, plan: ResidualBlock, norm: Norm, se: SqueezeExcitation | None = None) -> None:
        super().__init__()
        conv1, conv2, conv3 = plan.convs
        self.bn1 = norm(conv1.in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv2d(conv1)
        self.bn2 = norm(conv2.in_channels)
        self.conv2 = conv2d(conv2)
        self.bn3 = norm(conv3.in_channels)
        self.conv3 = conv2d(conv3)
        self.se = _se(plan, se)
        self.downsample = _shortcut(plan, norm)

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


# (kind, preactivation) -> the block's module
BLOCKS = {("basic", False): BasicBlock, ("bottleneck", False): Bottleneck,
          ("basic", True): PreActBasicBlock, ("bottleneck", True): PreActBottleneck}


class ResNet(nn.Module):
    def __init__(self, plan: ResNetPlan, se: SqueezeExcitation | None = None) -> None:
        super().__init__()

        def norm(channels: int, affine: bool = True) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(channels, eps=plan.bn_eps, momentum=plan.bn_momentum, affine=affine)

        # Gluon v2's normalisation of the image itself: statistics only, no scale or shift.
        self.input_bn = norm(plan.input_norm, affine=False) if plan.input_norm else None
        self.conv1 = conv2d(plan.stem)
        self.bn1 = norm(plan.stem.out_channels)
        self.relu = nn.ReLU(inplace=True)
        # The CIFAR stem has no pool; an Identity keeps torchvision's module tree and forward.
        self.maxpool = nn.MaxPool2d(plan.pool.kernel, plan.pool.stride, plan.pool.padding) if plan.pool else nn.Identity()
        for name, blocks in zip(plan.stage_names, plan.stages):
            self.add_module(name, nn.Sequential(*(BLOCKS[b.kind, b.preactivation](b, norm, se) for b in blocks)))
        self.num_stages = len(plan.stages)
        self.final_bn = norm(plan.final_norm) if plan.final_norm else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(plan.features, plan.num_classes)
        self._initialize(plan)

    def _initialize(self, plan: ResNetPlan) -> None:
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
        if plan.zero_init_residual:
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


def build(config: ResNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return ResNet(config.plan(num_classes, in_channels))
