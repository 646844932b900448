"""DenseNet in PyTorch, module for module torchvision's (`torchvision.models.densenet`), so its
checkpoints load with strict=True. The network is the spec's plan (`DenseNetConfig.plan`): every layer's
convolutions, widths, biases and names are decided there, and only translated into modules here."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from zoo.plan import Conv
from zoo.specs.densenet import DenseBlockPlan, DenseLayerPlan, DenseNetConfig, DenseNetPlan, TransitionPlan

Norm = Callable[[int], nn.BatchNorm2d]


def conv2d(conv: Conv) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel, stride=conv.stride, padding=conv.padding,
                     groups=conv.groups, bias=conv.bias)


class DenseLayer(nn.Module):
    def __init__(self, plan: DenseLayerPlan, norm: Norm, memory_efficient: bool) -> None:
        super().__init__()
        for k, conv in enumerate(plan.convs, start=1):
            self.add_module(f"norm{k}", norm(conv.in_channels))
            self.add_module(f"relu{k}", nn.ReLU(inplace=True))
            self.add_module(f"conv{k}", conv2d(conv))
        self.bottleneck = plan.bottleneck
        self.drop_rate = plan.drop_rate
        self.memory_efficient = memory_efficient

    def bn_function(self, *features):
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    def forward(self, features: list):
        # The concatenation is the memory hog (quadratic in depth); checkpointing recomputes it and
        # its BN-ReLU-conv in the backward pass instead of keeping them (torchvision's memory_efficient).
        if self.memory_efficient and torch.is_grad_enabled() and any(f.requires_grad for f in features):
            out = cp.checkpoint(self.bn_function, *features, use_reentrant=False)
        else:
            out = self.bn_function(*features)
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    def __init__(self, plan: DenseBlockPlan, norm: Norm, memory_efficient: bool) -> None:
        super().__init__({layer.local(): DenseLayer(layer, norm, memory_efficient)
                          for layer in plan.layers})

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, plan: TransitionPlan, norm: Norm) -> None:
        super().__init__()
        self.norm = norm(plan.norm)
        self.relu = nn.ReLU(inplace=True)
        self.conv = conv2d(plan.conv)
        self.pool = nn.AvgPool2d(plan.pool.kernel, stride=plan.pool.stride, padding=plan.pool.padding)


class DenseNet(nn.Module):
    def __init__(self, plan: DenseNetPlan) -> None:
        super().__init__()

        def norm(channels: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(channels, eps=plan.bn_eps, momentum=plan.bn_momentum)

        self.features = nn.Sequential()
        self.features.add_module("conv0", conv2d(plan.stem))
        if plan.stem_norm:
            self.features.add_module("norm0", norm(plan.stem_norm))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
        if plan.pool:
            self.features.add_module("pool0", nn.MaxPool2d(plan.pool.kernel, plan.pool.stride, plan.pool.padding))
        for block, transition in plan.stages():
            self.features.add_module(block.local(), DenseBlock(block, norm, plan.memory_efficient))
            if transition is not None:
                self.features.add_module(transition.local(), Transition(transition, norm))
        self.features.add_module("norm5", norm(plan.final_norm))
        self.classifier = nn.Linear(plan.classifier.in_features, plan.classifier.out_features)
        # torchvision's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        out = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


def build(config: DenseNetConfig, *, num_classes: int, in_channels: int) -> nn.Module:
    return DenseNet(config.plan(num_classes, in_channels))
