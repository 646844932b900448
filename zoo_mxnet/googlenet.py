"""GoogLeNet in MXNet Gluon.

With `aux_logits` the block returns (logits, aux_logits2, aux_logits1) in training and in inference
alike: a hybridized graph has one output structure. PyTorch returns only the logits in eval mode.
"""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.googlenet import STEMS, GoogLeNetConfig

from .layers import AdaptiveAvgPool2D, CeilMaxPool2D, relu


class BasicConv2d(nn.HybridBlock):
    def __init__(self, in_channels: int, channels: int, config: GoogLeNetConfig, kernel_size: int, stride: int = 1,
                 padding: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel_size, strides=stride, padding=padding, use_bias=False,
                                  in_channels=in_channels)
            # Gluon's momentum weighs the old statistic, PyTorch's the new one.
            self.bn = nn.BatchNorm(momentum=1.0 - config.bn_momentum, epsilon=config.bn_eps, in_channels=channels)

    def hybrid_forward(self, F, x):
        return relu(F, self.bn(self.conv(x)))


def _sequential(*blocks) -> nn.HybridSequential:
    seq = nn.HybridSequential()
    seq.add(*blocks)
    return seq


class Inception(nn.HybridBlock):
    def __init__(self, in_channels: int, widths: tuple[int, ...], config: GoogLeNetConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = widths
        with self.name_scope():
            self.branch1 = BasicConv2d(in_channels, ch1x1, config, 1)
            self.branch2 = _sequential(BasicConv2d(in_channels, ch3x3red, config, 1),
                                       BasicConv2d(ch3x3red, ch3x3, config, 3, padding=1))
            # torchvision's 3x3 where the paper has 5x5 (pytorch/vision#906), for its keys and counts.
            self.branch3 = _sequential(BasicConv2d(in_channels, ch5x5red, config, 1),
                                       BasicConv2d(ch5x5red, ch5x5, config, 3, padding=1))
            # Stride 1: ceil_mode changes nothing; MXNet's max pool ignores its padding as -inf would.
            self.branch4 = _sequential(nn.MaxPool2D(3, 1, padding=1), BasicConv2d(in_channels, pool_proj, config, 1))

    def hybrid_forward(self, F, x):
        return F.concat(self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x), dim=1)


def inception_width(widths: tuple[int, ...]) -> int:
    return widths[0] + widths[2] + widths[4] + widths[5]


class InceptionAux(nn.HybridBlock):
    def __init__(self, in_channels: int, num_classes: int, config: GoogLeNetConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.pool = AdaptiveAvgPool2D(config.aux_pool)
            self.conv = BasicConv2d(in_channels, config.aux_channels, config, 1)
            self.fc1 = nn.Dense(config.aux_hidden, in_units=config.aux_channels * config.aux_pool ** 2)
            self.fc2 = nn.Dense(num_classes, in_units=config.aux_hidden)
            self.dropout = nn.Dropout(config.dropout_aux)

    def hybrid_forward(self, F, x):
        x = self.conv(self.pool(x))
        return self.fc2(self.dropout(relu(F, self.fc1(x))))


class GoogLeNet(nn.HybridBlock):
    def __init__(self, config: GoogLeNetConfig, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if config.transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB images and needs in_channels=3, got {in_channels}")
        self._transform = config.input_transform() if config.transform_input else None
        stem = STEMS[config.stem]
        pools = {name: (kernel, stride) for name, kernel, stride in config.pools()}
        c1, c2, c3 = config.stem_channels
        self._stages = config.module_names()
        self._aux_after = (self._stages[1][0], self._stages[1][3]) if config.aux_logits else ()

        def pool(name):
            return CeilMaxPool2D(*pools[name]) if name in pools else nn.HybridSequential()  # empty: identity

        with self.name_scope():
            self.conv1 = BasicConv2d(in_channels, c1, config, stem["kernel"], stem["stride"], stem["padding"])
            self.maxpool1 = pool("maxpool1")
            self.conv2 = BasicConv2d(c1, c2, config, 1)
            self.conv3 = BasicConv2d(c2, c3, config, 3, padding=1)
            self.maxpool2 = pool("maxpool2")
            channels, aux_inputs = c3, []
            for s, (names, stage) in enumerate(zip(self._stages, config.inception)):
                for name, widths in zip(names, stage):
                    setattr(self, name, Inception(channels, widths, config))
                    channels = inception_width(widths)
                    if name in self._aux_after:
                        aux_inputs.append(channels)
                if s < 2:
                    setattr(self, f"maxpool{3 + s}", pool(f"maxpool{3 + s}"))
            if config.aux_logits:
                self.aux1 = InceptionAux(aux_inputs[0], num_classes, config)
                self.aux2 = InceptionAux(aux_inputs[1], num_classes, config)
            self.avgpool = nn.GlobalAvgPool2D()
            self.dropout = nn.Dropout(config.dropout)
            self.fc = nn.Dense(num_classes, in_units=channels)

    def hybrid_forward(self, F, x):
        if self._transform is not None:
            x = F.concat(*[F.slice_axis(x, axis=1, begin=c, end=c + 1) * s + o
                           for c, (s, o) in enumerate(zip(*self._transform))], dim=1)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        aux = []
        for s, names in enumerate(self._stages):
            for name in names:
                x = getattr(self, name)(x)
                if name in self._aux_after:
                    aux.append(getattr(self, f"aux{len(aux) + 1}")(x))
            if s < 2:
                x = getattr(self, f"maxpool{3 + s}")(x)
        x = self.fc(self.dropout(self.avgpool(x)))
        if aux:
            return x, aux[1], aux[0]
        return x


def build(config: GoogLeNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return GoogLeNet(config, num_classes, in_channels)
