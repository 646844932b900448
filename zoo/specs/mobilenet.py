"""MobileNet V1 (Howard et al. 2017), V2 (Sandler et al. 2018) and V3 (Howard et al. 2019).

V1 stacks depthwise-separable convolutions; V2 inverts the residual (expand 1x1, depthwise, linear
1x1 projection); V3 adds squeeze-and-excitation and hard-swish to that block. Each config's
`plan(num_classes, in_channels)` is the whole network as torchvision lays it out (`MobileNetPlan`):
`features` (the stem, every block, the last conv), the global pool and the `classifier`, every piece
under its canonical module name with its widths, strides, padding, biases and activations resolved, so
the builders of the four frameworks only translate it. EfficientNet (zoo/specs/efficientnet.py) plans
the same pieces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from ..arith import conv_out, make_divisible
from ..plan import Conv, Linear
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_choice, check_positive,
                        check_probability, published, register, torchvision_weights)

ACTIVATIONS = ("relu", "relu6", "hardswish", "silu")
GATES = ("sigmoid", "hardsigmoid")
# How convolutions pad (the `padding` knob of MobileNet V1/V2/V3 and EfficientNet). "symmetric": (k-1)//2
# on every side, as PyTorch (torchvision, timm's own models, Gluon) pads. "same": TensorFlow's, computed
# from each input's size: a stride-2 convolution on an even size pads (k-2)//2 at the top/left and the
# rest at the bottom/right (keras.applications, timm's tf_* ports); on odd sizes, and for stride 1,
# the two agree.
PADDINGS = ("symmetric", "same")


@dataclass(frozen=True)
class ConvNormAct:
    """torchvision's Conv2dNormActivation under its module name (`features.0`): `conv` (`.0`, no bias), a
    BatchNorm over its output (`.1`) and the `activation` (`.2`; None: none, as after a projection)."""

    name: str
    conv: Conv
    activation: str | None
    dilation: int = 1
    # Pad as TensorFlow's "same", from each input's size, instead of `conv.padding` a side (PADDINGS): set
    # on the stride-2 windows of padding="same", the only ones where the two differ.
    same: bool = False

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels


@dataclass(frozen=True)
class Norm:
    """A BatchNorm on its own (torchvision's MobileNetV2 keeps its projection's conv and BatchNorm apart)."""

    name: str
    channels: int


@dataclass(frozen=True)
class SqueezeExcitationPlan:
    """torchvision.ops.SqueezeExcitation: global pool, 1x1 conv `fc1` (with bias), `activation`, 1x1 conv
    `fc2`, `gate`, and the input rescaled channel by channel."""

    name: str
    fc1: Conv
    fc2: Conv
    activation: str
    gate: str


@dataclass(frozen=True)
class ActivationPlan:
    """An activation module of its own (V3's classifier.1)."""

    name: str
    kind: str


@dataclass(frozen=True)
class DropoutPlan:
    """Dropout with probability `p` in training (the classifier's)."""

    name: str
    p: float


@dataclass(frozen=True)
class InvertedResidualPlan:
    """One inverted-residual (MBConv) block under its module name (`features.5`, `features.2.1`).

    `layers` run in a Sequential named `body` (`conv` in torchvision's MobileNetV2, `block` in V3 and
    EfficientNet), numbered from 0: the expanding 1x1 ConvNormAct (absent where the width stays, unless
    forced), the depthwise one, SE if any, and the linear 1x1 projection (a ConvNormAct, or V2's bare
    Conv and Norm). `residual`: the input is added to the result. `stochastic_depth`: EfficientNet's
    StochasticDepth module (`stochastic_depth`, no tensors) with its drop probability, applied before
    that sum; None where the block has none.
    """

    name: str
    body: str
    layers: tuple[ConvNormAct | SqueezeExcitationPlan | Conv | Norm, ...]
    residual: bool
    stochastic_depth: float | None = None

    def convs(self) -> tuple[Conv, ...]:
        return tuple(p.conv if isinstance(p, ConvNormAct) else p for p in self.layers if isinstance(p, (ConvNormAct, Conv)))

    @property
    def out_channels(self) -> int:
        return self.convs()[-1].out_channels

    @property
    def stride(self) -> int:
        """How much the block shrinks the map (1 where dilation replaced the table's stride)."""
        return math.prod(conv.stride for conv in self.convs())

    @property
    def se(self) -> bool:
        return any(isinstance(p, SqueezeExcitationPlan) for p in self.layers)


@dataclass(frozen=True)
class Stack:
    """Pieces that run one after the other in a Sequential under `name`, numbered from 0 (a V1 block, an
    EfficientNet stage)."""

    name: str
    layers: tuple[Piece, ...]

    @property
    def out_channels(self) -> int:
        return self.layers[-1].out_channels


Piece = (ConvNormAct | Norm | Conv | SqueezeExcitationPlan | InvertedResidualPlan | Stack | Linear | ActivationPlan
         | DropoutPlan)


@dataclass(frozen=True)
class MobileNetPlan:
    """The whole network, in the order it runs: `features` (the stem `features.0`, the blocks, the last conv),
    a global average pool (`avgpool`) and the `classifier` (dense layers, activations, dropout)."""

    features: tuple[ConvNormAct | InvertedResidualPlan | Stack, ...]
    classifier: tuple[Linear | ActivationPlan | DropoutPlan, ...]
    bn_eps: float
    bn_momentum: float           # PyTorch's convention
    # torchvision's initialisation of the dense layers: "normal" (std 0.01, the MobileNets) or "uniform"
    # (in +-1/sqrt(out_features), EfficientNet).
    linear_init: str = "normal"

    def walk(self) -> Iterator[Piece]:
        """Every piece, each before the pieces it holds, in module order."""
        def pieces(items):
            for piece in items:
                yield piece
                if isinstance(piece, (Stack, InvertedResidualPlan)):
                    yield from pieces(piece.layers)
        return pieces((*self.features, *self.classifier))

    def windows(self) -> list[tuple[int, int, int, int]]:
        """(kernel, stride, padding, dilation) of every convolution on the map, in order (SE's excluded)."""
        return [(p.conv.kernel, p.conv.stride, p.conv.padding, p.dilation) for p in self.walk()
                if isinstance(p, ConvNormAct)]

    def blocks(self) -> tuple[InvertedResidualPlan | Stack, ...]:
        """What `features` holds after the stem, but for a last conv: the blocks (EfficientNet's stages)."""
        return tuple(p for p in self.features[1:] if not isinstance(p, ConvNormAct))


def conv_norm_act(name: str, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                  activation: str | None = None, *, groups: int = 1, dilation: int = 1,
                  padding: str = "symmetric") -> ConvNormAct:
    """A ConvNormAct padded as the family's `padding` knob says (PADDINGS)."""
    conv = Conv(f"{name}.0", in_channels, out_channels, kernel, stride, (kernel - 1) // 2 * dilation, groups)
    return ConvNormAct(name, conv, activation, dilation, same=padding == "same" and stride > 1)


def inverted_residual(name: str, in_channels: int, expanded: int, out_channels: int, kernel: int, stride: int,
                      activation: str, *, padding: str, body: str = "block", dilation: int = 1,
                      se: tuple[int, str, str] | None = None, force_expand: bool = False,
                      flat_projection: bool = False, stochastic_depth: float | None = None) -> InvertedResidualPlan:
    """The block `name`: `se` is (squeezed channels, activation, gate) or None; `force_expand` keeps the 1x1
    expansion where it keeps the width (Gluon's MobileNetV2); `flat_projection` leaves the projection's
    conv and BatchNorm as two entries (torchvision's MobileNetV2)."""
    prefix, layers = f"{name}.{body}", []

    def at(offset: int = 0) -> str:
        return f"{prefix}.{len(layers) + offset}"

    if force_expand or expanded != in_channels:
        layers.append(conv_norm_act(at(), in_channels, expanded, 1, activation=activation))
    # A dilated block keeps the resolution: dilation replaces the stride (MobileNetV3 `dilated`).
    layers.append(conv_norm_act(at(), expanded, expanded, kernel, 1 if dilation > 1 else stride, activation,
                                groups=expanded, dilation=dilation, padding=padding))
    if se is not None:
        squeezed, se_activation, gate = se
        layers.append(SqueezeExcitationPlan(at(), Conv(f"{at()}.fc1", expanded, squeezed, 1, bias=True),
                                            Conv(f"{at()}.fc2", squeezed, expanded, 1, bias=True), se_activation, gate))
    if flat_projection:
        layers += [Conv(at(), expanded, out_channels, 1), Norm(at(1), out_channels)]
    else:
        layers.append(conv_norm_act(at(), expanded, out_channels, 1))
    # torchvision decides the shortcut with the table's stride, also where dilation replaces the stride.
    residual = stride == 1 and in_channels == out_channels
    return InvertedResidualPlan(name, body, tuple(layers), residual, stochastic_depth)


def min_size_for(strides: list[tuple[int, int, int, int]]) -> int:
    """Smallest H=W for which a chain of (kernel, stride, padding, dilation) windows keeps every map non-empty."""
    size = 1
    while True:
        current = size
        for kernel, stride, padding, dilation in strides:
            current = conv_out(current, kernel, stride, padding, dilation)
            if current < 1:
                break
        else:
            return size
        size += 1


def stages_by_stride(strides: list[int], block, offset: int = 1) -> list[Stage]:
    """Blocks `features.<offset>`... grouped into stages, a new one at each downsampling block (the
    papers' tables group them so); `block(indices)` names a stage's block type."""
    groups: list[list[int]] = []
    for index, stride in enumerate(strides):
        if stride > 1 or not groups:
            groups.append([])
        groups[-1].append(index)
    return [Stage(f"stage{i}", f"features.{group[-1] + offset}", len(group), block(group),
                  math.prod(strides[j] for j in group))
            for i, group in enumerate(groups, start=1)]


def check_padding(padding: str) -> None:
    check_choice("padding", padding, PADDINGS)


def check_norm(eps: float, momentum: float) -> None:
    check_positive("bn_eps", eps)
    if not isinstance(momentum, (int, float)) or not 0.0 < momentum <= 1.0:
        raise ValueError(f"bn_momentum (PyTorch's convention, weight of the new statistic) must be in (0, 1], got {momentum!r}")


def check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"block strides must be 1 or 2, got {stride!r}")


def check_kernel(kernel: int) -> None:
    check_positive("kernel size", kernel, integer=True)
    if kernel % 2 == 0:
        raise ValueError(f"kernel sizes must be odd so that padding (k-1)//2 keeps the size, got {kernel}")


# --------------------------------------------------------------------------------------- V1

# Table 1 of the paper: after the 3x3/2 stem, (pointwise output channels, depthwise stride) of each
# of the 13 depthwise-separable blocks.
V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)


@dataclass(frozen=True)
class MobileNetV1Config(FamilyConfig):
    stem_channels: int = 32
    blocks: tuple[tuple[int, int], ...] = V1_BLOCKS
    # The paper's alpha. Widths are rounded with make_divisible(c * alpha, 8), which for the paper's
    # alphas (0.25, 0.5, 0.75, 1.0) equals Keras applications' int(c * alpha).
    width_mult: float = 1.0
    round_nearest: int = 8
    # Keras applications' MobileNet defaults (dropout 1e-3 before the classifier, BatchNorm eps 1e-3 and
    # Keras momentum 0.99); the paper gives neither.
    dropout: float = 0.001
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01
    # "relu" as the paper, timm's mobilenetv1_* and Gluon's mobilenet<alpha>; keras.applications.MobileNet
    # uses "relu6".
    activation: str = "relu"
    # "same" as keras.applications.MobileNet (which pads stride-2 convolutions bottom/right by one: its
    # "same" wherever the map they see has an even size, as at 224x224); see PADDINGS.
    padding: str = "symmetric"

    def validate(self) -> None:
        check_positive("width_mult", self.width_mult)
        check_positive("round_nearest", self.round_nearest, integer=True)
        check_positive("stem_channels", self.stem_channels, integer=True)
        check_choice("activation", self.activation, ("relu", "relu6"))
        check_padding(self.padding)
        if not self.blocks:
            raise ValueError("blocks must list at least one (channels, stride) pair, got none")
        for row in self.blocks:
            if len(row) != 2:
                raise ValueError(f"each V1 block row is (channels, stride), got {row!r}")
            channels, stride = row
            check_positive("block channels", channels, integer=True)
            check_stride(stride)
        check_probability("dropout", self.dropout)
        check_norm(self.bn_eps, self.bn_momentum)

    def width(self, channels: int) -> int:
        return make_divisible(channels * self.width_mult, self.round_nearest)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> MobileNetPlan:
        """The stem `features.0`, then `features.1`... each a depthwise 3x3 `.0` and a pointwise 1x1 `.1`
        ConvNormAct (Table 1 of the paper), and the classifier: dropout, dense."""
        channels = self.width(self.stem_channels)
        features = [conv_norm_act("features.0", in_channels, channels, 3, 2, self.activation, padding=self.padding)]
        for index, (out, stride) in enumerate(self.blocks, start=1):
            name, width = f"features.{index}", self.width(out)
            features.append(Stack(name, (
                conv_norm_act(f"{name}.0", channels, channels, 3, stride, self.activation, groups=channels,
                              padding=self.padding),
                conv_norm_act(f"{name}.1", channels, width, 1, activation=self.activation))))
            channels = width
        return MobileNetPlan(tuple(features), (DropoutPlan("classifier.0", self.dropout),
                                               Linear("classifier.1", channels, num_classes)),
                             self.bn_eps, self.bn_momentum)

    def min_input_size(self) -> int:
        return min_size_for(self.plan().windows())

    def outline(self) -> tuple[Stage, ...]:
        # features.0 is the stem, features.1... the blocks; a stride-2 block opens a stage.
        return (Stage("stem", "features.0", block="3x3/2 conv", stride=2),
                *stages_by_stride([s for _, s in self.blocks], lambda group: "depthwise-separable"),
                Stage("head", "", block="global avg pool, fc"))


# --------------------------------------------------------------------------------------- V2

# Table 2 of the paper: expansion t, output channels c, repeats n, first stride s.
V2_BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@dataclass(frozen=True)
class MobileNetV2Config(FamilyConfig):
    stem_channels: int = 32
    blocks: tuple[tuple[float, int, int, int], ...] = V2_BLOCKS  # t may be fractional (int(round(c * t)))
    last_channel: int = 1280
    width_mult: float = 1.0
    # torchvision, timm and Keras round widths to multiples of 8; Gluon's mobilenetv2_<alpha> takes
    # int(c * alpha), which round_nearest=1 gives for its alphas (1.0, 0.75, 0.5, 0.25).
    round_nearest: int = 8
    dropout: float = 0.2
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    # "same" as keras.applications.MobileNetV2 and timm's tf_mobilenetv2 ports; see PADDINGS.
    padding: str = "symmetric"
    # Gluon's model zoo keeps a 1x1 expansion conv (and its BatchNorm) in the t=1 first block...
    always_expand: bool = False
    # ...and classifies with a 1x1 conv without bias (False); torchvision, timm and Keras have a bias.
    classifier_bias: bool = True

    def validate(self) -> None:
        check_positive("width_mult", self.width_mult)
        check_positive("round_nearest", self.round_nearest, integer=True)
        check_padding(self.padding)
        check_positive("stem_channels", self.stem_channels, integer=True)
        check_positive("last_channel", self.last_channel, integer=True)
        if not self.blocks:
            raise ValueError("blocks must list at least one (t, c, n, s) row, got none")
        for row in self.blocks:
            if len(row) != 4:
                raise ValueError(f"each V2 block row is (expansion t, channels c, repeats n, stride s), got {row!r}")
            t, c, n, s = row
            check_positive("expansion t", t)
            check_positive("channels c", c, integer=True)
            check_positive("repeats n", n, integer=True)
            check_stride(s)
        check_probability("dropout", self.dropout)
        check_norm(self.bn_eps, self.bn_momentum)

    def width(self, channels: float) -> int:
        return make_divisible(channels * self.width_mult, self.round_nearest)

    def head(self) -> int:
        # The last conv only widens: a thinner network keeps 1280 features (paper, section 5.1).
        return make_divisible(self.last_channel * max(1.0, self.width_mult), self.round_nearest)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> MobileNetPlan:
        """torchvision's MobileNetV2: the stem, a block `features.N` (its layers in `conv`) per row repeat of
        Table 2, the 1x1 conv to the head's width, and the classifier: dropout, dense."""
        channels = self.width(self.stem_channels)
        features = [conv_norm_act("features.0", in_channels, channels, 3, 2, "relu6", padding=self.padding)]
        for t, c, n, s in self.blocks:
            out = self.width(c)
            for i in range(n):
                features.append(inverted_residual(
                    f"features.{len(features)}", channels, int(round(channels * t)), out, 3, s if i == 0 else 1,
                    "relu6", padding=self.padding, body="conv", force_expand=self.always_expand, flat_projection=True))
                channels = out
        features.append(conv_norm_act(f"features.{len(features)}", channels, self.head(), 1, activation="relu6"))
        return MobileNetPlan(tuple(features), (DropoutPlan("classifier.0", self.dropout),
                                               Linear("classifier.1", self.head(), num_classes, self.classifier_bias)),
                             self.bn_eps, self.bn_momentum)

    def min_input_size(self) -> int:
        return min_size_for(self.plan().windows())

    def outline(self) -> tuple[Stage, ...]:
        # One stage per row (t, c, n, s) of the paper's Table 2; features.0 is the stem, the last
        # features entry the 1x1 conv to the head's width.
        stages, index = [], 0
        for i, (t, _, n, s) in enumerate(self.blocks, start=1):
            index += n
            stages.append(Stage(f"stage{i}", f"features.{index}", n, f"InvertedResidual t={t:g}", s))
        return (Stage("stem", "features.0", block="3x3/2 conv", stride=2), *stages,
                Stage("head", "", block="1x1 conv, global avg pool, fc"))


# --------------------------------------------------------------------------------------- V3

# Tables 1 and 2 of the paper, as torchvision has them: kernel, expanded channels, output channels,
# SE, activation ("relu" / "hardswish"), stride. Input channels are the previous row's output.
V3_LARGE_BLOCKS = (
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2),
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2),
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
)
V3_SMALL_BLOCKS = (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
)


@dataclass(frozen=True)
class MobileNetV3Config(FamilyConfig):
    blocks: tuple[tuple[int, int, int, bool, str, int], ...] = V3_LARGE_BLOCKS
    stem_channels: int = 16
    # Width of the classifier's hidden dense layer (1280 large, 1024 small), scaled by width_mult.
    last_channel: int = 1280
    # The last conv widens the last block's output this many times (960 = 6 * 160 in the large model).
    head_expansion: int = 6
    # Index of the first block of the last stage (C4), which `reduced_tail` and `dilated` change.
    tail_start: int = 12
    width_mult: float = 1.0
    # Section 6.1.1 of the paper (detection/segmentation backbones): halve the last stage's channels...
    reduced_tail: bool = False
    # ...and replace its stride by dilation 2.
    dilated: bool = False
    se_reduction: int = 4
    dropout: float = 0.2
    # torchvision trains MobileNetV3 with TensorFlow's BatchNorm settings (timm's mobilenetv3_* use 1e-5).
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01
    # "same" as keras.applications.MobileNetV3* and timm's tf_mobilenetv3_* ports; see PADDINGS.
    padding: str = "symmetric"

    def validate(self) -> None:
        check_positive("width_mult", self.width_mult)
        check_padding(self.padding)
        for name in ("stem_channels", "last_channel", "head_expansion", "se_reduction"):
            check_positive(name, getattr(self, name), integer=True)
        if not self.blocks:
            raise ValueError("blocks must list at least one row, got none")
        for row in self.blocks:
            if len(row) != 6:
                raise ValueError(f"each V3 block row is (kernel, expanded, out, se, activation, stride), got {row!r}")
            kernel, expanded, out, _, act, stride = row
            check_kernel(kernel)
            check_positive("expanded channels", expanded, integer=True)
            check_positive("output channels", out, integer=True)
            check_choice("block activation", act, ("relu", "hardswish"))
            check_stride(stride)
        if not 0 <= self.tail_start <= len(self.blocks):
            raise ValueError(f"tail_start must index a block (0..{len(self.blocks)}), got {self.tail_start}")
        check_probability("dropout", self.dropout)
        check_norm(self.bn_eps, self.bn_momentum)

    def width(self, channels: float) -> int:
        return make_divisible(channels * self.width_mult, 8)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> MobileNetPlan:
        """torchvision's MobileNetV3: the hard-swish stem, a block `features.N` (its layers in `block`) per
        table row, the 1x1 conv widening the last block head_expansion times, and the classifier: dense,
        hard-swish, dropout, dense."""
        divider = 2 if self.reduced_tail else 1
        channels = self.width(self.stem_channels)
        features = [conv_norm_act("features.0", in_channels, channels, 3, 2, "hardswish", padding=self.padding)]
        for index, (kernel, expanded, out, se, act, stride) in enumerate(self.blocks):
            tail = index >= self.tail_start
            if tail:
                out //= divider
                # The first tail block takes the full-width input, so only its output is halved.
                if index > self.tail_start:
                    expanded //= divider
            expanded = self.width(expanded)
            squeeze = (make_divisible(expanded // self.se_reduction, 8), "relu", "hardsigmoid") if se else None
            features.append(inverted_residual(
                f"features.{index + 1}", channels, expanded, self.width(out), kernel, stride, act,
                padding=self.padding, dilation=2 if tail and self.dilated else 1, se=squeeze))
            channels = self.width(out)
        last_conv, hidden = self.head_expansion * channels, self.width(self.last_channel // divider)
        features.append(conv_norm_act(f"features.{len(features)}", channels, last_conv, 1, activation="hardswish"))
        return MobileNetPlan(tuple(features), (
            Linear("classifier.0", last_conv, hidden), ActivationPlan("classifier.1", "hardswish"),
            DropoutPlan("classifier.2", self.dropout), Linear("classifier.3", hidden, num_classes),
        ), self.bn_eps, self.bn_momentum)

    def min_input_size(self) -> int:
        return min_size_for(self.plan().windows())

    def outline(self) -> tuple[Stage, ...]:
        blocks = self.plan().blocks()

        def block(group):
            return "InvertedResidual" + (" with SE" if all(blocks[j].se for j in group) else "")

        return (Stage("stem", "features.0", block="3x3/2 conv", stride=2),
                *stages_by_stride([b.stride for b in blocks], block),
                Stage("head", "", block="1x1 conv, global avg pool, fc, fc"))


# What `build` of each framework dispatches on.
MobileNetConfig = MobileNetV1Config | MobileNetV2Config | MobileNetV3Config

TORCHVISION = "torchvision.models ({name}) num_params, https://pytorch.org/vision/stable/models.html"

register(ModelSpec(
    name="mobilenet_v1",
    family="mobilenet",
    config=MobileNetV1Config(),
    input_size=(3, 224, 224),
    params=4_231_976,
    params_total=4_253_864,
    source="keras.applications.MobileNet(alpha=1.0): 4,231,976 trainable, 4,253,864 total "
           "(same layers; its 1x1 conv classifier equals our dense layer)",
    paper="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications (Howard et al., 2017)",
    notes="Not in torchvision; state_dict keys follow its style: features.0 (stem Conv-BN-ReLU), "
          "features.1-13 (each .0 depthwise and .1 pointwise Conv-BN-ReLU), classifier.1 (dense).",
    **published(70.6, source="Howard et al. 2017, Table 8: 1.0 MobileNet-224, 70.6% top-1 (no top-5 given)",
                recipe="the paper's Sec. 4: RMSprop with asynchronous gradient descent, less augmentation "
                       "and little or no weight decay on the depthwise filters"),
))

register(ModelSpec(
    name="mobilenet_v2",
    family="mobilenet",
    config=MobileNetV2Config(),
    input_size=(3, 224, 224),
    params=3_504_872,
    params_total=3_538_984,
    source=TORCHVISION.format(name="MobileNet_V2_Weights") + "; total as keras.applications.MobileNetV2",
    paper="MobileNetV2: Inverted Residuals and Linear Bottlenecks (Sandler et al., 2018)",
    **torchvision_weights("MobileNet_V2_Weights.IMAGENET1K_V1", 71.878, 90.286,
                          recipe=TORCHVISION_RECIPES + "#mobilenetv2"),
))

register(ModelSpec(
    name="mobilenet_v3_large",
    family="mobilenet",
    config=MobileNetV3Config(),
    input_size=(3, 224, 224),
    params=5_483_032,
    params_total=5_507_432,
    source=TORCHVISION.format(name="MobileNet_V3_Large_Weights"),
    paper="Searching for MobileNetV3 (Howard et al., 2019)",
    **torchvision_weights("MobileNet_V3_Large_Weights.IMAGENET1K_V1", 74.042, 91.340,
                          recipe=TORCHVISION_RECIPES + "#mobilenetv3-large--small"),
))

register(ModelSpec(
    name="mobilenet_v3_small",
    family="mobilenet",
    config=MobileNetV3Config(blocks=V3_SMALL_BLOCKS, last_channel=1024, tail_start=8),
    input_size=(3, 224, 224),
    params=2_542_856,
    params_total=2_554_968,
    source=TORCHVISION.format(name="MobileNet_V3_Small_Weights"),
    paper="Searching for MobileNetV3 (Howard et al., 2019)",
    **torchvision_weights("MobileNet_V3_Small_Weights.IMAGENET1K_V1", 67.668, 87.402,
                          recipe=TORCHVISION_RECIPES + "#mobilenetv3-large--small"),
))
