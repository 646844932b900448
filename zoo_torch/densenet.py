"""DenseNet in PyTorch, module for module torchvision's (`torchvision.models.densenet`), so its
checkpoints load with strict=True."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from zoo.specs.densenet import TRANSITION_POOL, DenseNetConfig


def _norm(config: DenseNetConfig, channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=config.bn_eps, momentum=config.bn_momentum)


class DenseLayer(nn.Module):
    def __init__(self, config: DenseNetConfig, in_features: int) -> None:
        super().__init__()
        growth, bias = config.growth_rate, config.conv_bias
        self.norm1 = _norm(config, in_features)
        self.relu1 = nn.ReLU(inplace=True)
        if config.bottleneck:
            width = config.bn_size * growth
            self.conv1 = nn.Conv2d(in_features, width, 1, bias=bias)
            self.norm2 = _norm(config, width)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(width, growth, 3, padding=1, bias=bias)
        else:
            # Without a bottleneck the layer is BN-ReLU-Conv3x3 (DenseNet without "B"; d2l's conv_block).
            self.conv1 = nn.Conv2d(in_features, growth, 3, padding=1, bias=bias)
        self.bottleneck = config.bottleneck
        self.drop_rate = float(config.drop_rate)
        self.memory_efficient = config.memory_efficient

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
    def __init__(self, config: DenseNetConfig, layers: int, in_features: int) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(config, in_features + i * config.growth_rate))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, config: DenseNetConfig, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = _norm(config, in_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_features, out_features, 1, bias=config.conv_bias)
        self.pool = nn.AvgPool2d(TRANSITION_POOL, stride=TRANSITION_POOL)


class DenseNet(nn.Module):
    def __init__(self, config: DenseNetConfig, num_classes: int, in_channels: int) -> None:
        super().__init__()
        stem = config.num_init_features
        self.features = nn.Sequential()
        kernel, stride, padding = config.stem_conv
        self.features.add_module("conv0", nn.Conv2d(in_channels, stem, kernel, stride=stride, padding=padding,
                                                    bias=config.conv_bias))
        # Huang et al.'s CIFAR stem stops here: the first dense layer's BN-ReLU follows directly.
        if config.stem_pool:
            self.features.add_module("norm0", _norm(config, stem))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(*config.stem_pool))
        stages = config.stages()
        for index, ((block_in, block_out, trans_out), layers) in enumerate(zip(stages, config.block_config), start=1):
            self.features.add_module(f"denseblock{index}", DenseBlock(config, layers, block_in))
            if index < len(stages):
                self.features.add_module(f"transition{index}", Transition(config, block_out, trans_out))
        # torchvision calls the final BN norm5 whatever the number of blocks.
        self.features.add_module("norm5", _norm(config, config.out_channels()))
        self.classifier = nn.Linear(config.out_channels(), num_classes)
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
    return DenseNet(config, num_classes, in_channels)
