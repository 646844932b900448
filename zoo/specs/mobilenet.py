"""MobileNet V1 (Howard et al. 2017), V2 (Sandler et al. 2018) and V3 (Howard et al. 2019).

V1 stacks depthwise-separable convolutions; V2 inverts the residual (expand 1x1, depthwise, linear
1x1 projection); V3 adds squeeze-and-excitation and hard-swish to that block. Each config turns its
table into a plain list of block plans (`InvertedResidualPlan`), so the builders of the three
frameworks only read channel counts, strides and activations and never compute them. EfficientNet
(zoo/specs/efficientnet.py) plans the same block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..arith import conv_out, make_divisible
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
class InvertedResidualPlan:
    """One inverted-residual (MBConv) block, every number already resolved.

    Layers: expand 1x1 (only if `expanded != in_channels` or `force_expand`), depthwise `kernel`x`kernel`, optional SE
    squeezing `expanded` to `se_channels`, linear 1x1 projection. The shortcut exists when the block
    keeps size and width (`stride == 1 and in_channels == out_channels`), as in torchvision.
    """

    in_channels: int
    expanded: int
    out_channels: int
    kernel: int
    stride: int
    activation: str
    dilation: int = 1
    se_channels: int = 0  # 0: no squeeze-and-excitation
    se_activation: str = "relu"
    se_gate: str = "hardsigmoid"
    # Probability of dropping the residual branch of a sample in training (EfficientNet); 0 keeps it.
    stochastic_depth: float = 0.0
    # Keep the 1x1 expansion conv even where it keeps the width (t=1), as Gluon's MobileNetV2 does.
    force_expand: bool = False

    @property
    def expands(self) -> bool:
        return self.force_expand or self.expanded != self.in_channels

    @property
    def use_residual(self) -> bool:
        # torchvision decides with the table's stride, also where dilation replaces the stride.
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def depthwise_stride(self) -> int:
        # A dilated block keeps the resolution: dilation replaces the stride (MobileNetV3 `dilated`).
        return 1 if self.dilation > 1 else self.stride

    @property
    def padding(self) -> int:
        return (self.kernel - 1) // 2 * self.dilation


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


def plan_windows(stem: tuple[int, int], plans) -> list[tuple[int, int, int, int]]:
    """The spatial windows of a stem conv (kernel, stride) followed by inverted-residual blocks."""
    kernel, stride = stem
    windows = [(kernel, stride, (kernel - 1) // 2, 1)]
    windows += [(p.kernel, p.depthwise_stride, p.padding, p.dilation) for p in plans]
    return windows


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

    def plan(self) -> tuple[int, list[tuple[int, int, int]]]:
        """(stem channels, [(in_channels, out_channels, stride)] of each depthwise-separable block)."""
        stem = self.width(self.stem_channels)
        blocks, channels = [], stem
        for out, stride in self.blocks:
            blocks.append((channels, self.width(out), stride))
            channels = self.width(out)
        return stem, blocks

    def min_input_size(self) -> int:
        return min_size_for([(3, 2, 1, 1)] + [(3, stride, 1, 1) for _, stride in self.blocks])

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

    def stem(self) -> int:
        return self.width(self.stem_channels)

    def head(self) -> int:
        # The last conv only widens: a thinner network keeps 1280 features (paper, section 5.1).
        return make_divisible(self.last_channel * max(1.0, self.width_mult), self.round_nearest)

    def plan(self) -> list[InvertedResidualPlan]:
        plans, channels = [], self.stem()
        for t, c, n, s in self.blocks:
            out = self.width(c)
            for i in range(n):
                plans.append(InvertedResidualPlan(
                    in_channels=channels, expanded=int(round(channels * t)), out_channels=out,
                    kernel=3, stride=s if i == 0 else 1, activation="relu6", force_expand=self.always_expand,
                ))
                channels = out
        return plans

    def min_input_size(self) -> int:
        return min_size_for(plan_windows((3, 2), self.plan()))

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

    def stem(self) -> int:
        return self.width(self.stem_channels)

    def head(self) -> tuple[int, int]:
        """(channels of the last conv, hidden width of the classifier)."""
        last_block = self.plan()[-1].out_channels
        divider = 2 if self.reduced_tail else 1
        return self.head_expansion * last_block, self.width(self.last_channel // divider)

    def plan(self) -> list[InvertedResidualPlan]:
        divider = 2 if self.reduced_tail else 1
        plans, channels = [], self.stem()
        for index, (kernel, expanded, out, se, act, stride) in enumerate(self.blocks):
            tail = index >= self.tail_start
            if tail:
                out //= divider
                # The first tail block takes the full-width input, so only its output is halved.
                if index > self.tail_start:
                    expanded //= divider
            expanded = self.width(expanded)
            plans.append(InvertedResidualPlan(
                in_channels=channels, expanded=expanded, out_channels=self.width(out),
                kernel=kernel, stride=stride, activation=act,
                dilation=2 if tail and self.dilated else 1,
                se_channels=make_divisible(expanded // self.se_reduction, 8) if se else 0,
                se_activation="relu", se_gate="hardsigmoid",
            ))
            channels = self.width(out)
        return plans

    def min_input_size(self) -> int:
        return min_size_for(plan_windows((3, 2), self.plan()))

    def outline(self) -> tuple[Stage, ...]:
        plans = self.plan()

        def block(group):
            return "InvertedResidual" + (" with SE" if all(plans[j].se_channels for j in group) else "")

        return (Stage("stem", "features.0", block="3x3/2 conv", stride=2),
                *stages_by_stride([p.depthwise_stride for p in plans], block),
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
