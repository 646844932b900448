"""ShuffleNet V1 (Zhang et al., 2017) and V2 (Ma et al., 2018): pointwise group convolutions and
channel shuffle (V1), channel split and shuffle (V2), around 3x3 depthwise convolutions.

Both share the stem (3x3/2 convolution, 3x3/2 max pool), three stages of (4, 8, 4) units whose
first unit halves the resolution, and a global-average-pooled linear classifier. Each config's `plan`
is the network every framework builds, layer by layer under PyTorch's module names (`ShuffleNetPlan`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from ..arith import conv_out
from ..plan import Conv, Linear, Pool
from ..registry import FamilyConfig, ModelSpec, Stage, check_positive, published, register, torchvision_weights
from .mobilenet import check_norm

# ShuffleNet V1, Table 1 of the paper: output channels of stages 2-4 at 1.0x, per number of groups.
# Wider layers for more groups keep the cost near 140 MFLOPs at 224x224.
V1_STAGE_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# Stem widths of Megvii's reference code per width multiplier: it keeps 24 at 1.5x and halves to 12
# (before the groups adjustment of `ShuffleNetV1Config.stem_width`) at 0.5x.
V1_STEM_CHANNELS = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}


class V1Unit(NamedTuple):
    """One ShuffleNet V1 unit: the builders of all three frameworks read these."""

    stage: int          # 2, 3 or 4: the PyTorch attribute is f"stage{stage}"
    index: int          # position inside the stage
    in_channels: int
    out_channels: int   # of the unit, shortcut included
    mid_channels: int   # bottleneck width
    branch_channels: int  # output of the residual branch (out - in when the shortcut is concatenated)
    stride: int
    first_groups: int   # groups of the first 1x1 convolution
    groups: int         # groups of the second 1x1 convolution (and of the channel shuffle)


# Both versions: conv1 (3x3/2) and a 3x3/2 max pool, the module names of the stages after it.
STEM = Stage("stem", "maxpool", block="3x3/2 conv, 3x3/2 max pool", stride=4)
STEM_POOL = Pool("maxpool", 3, 2, 1)


@dataclass(frozen=True)
class Norm:
    """A BatchNorm over `channels`, under its module name (`stage2.0.branch.1`)."""

    name: str
    channels: int


@dataclass(frozen=True)
class ReLU:
    name: str


@dataclass(frozen=True)
class Shuffle:
    """The channel shuffle: channels viewed as (groups, C / groups) and transposed, so that the next
    group convolution sees channels from every group of the previous one."""

    name: str
    groups: int


# One layer of a sequence (`conv1`, `conv5`, a unit's branch): PyTorch's nn.Sequential, whose child
# indices end the names.
Layer = Conv | Norm | ReLU | Shuffle


def _sequence(prefix: str, *layers: Layer) -> tuple[Layer, ...]:
    """`layers` named as nn.Sequential names its children: `prefix.0`, `prefix.1`, ..."""
    return tuple(replace(layer, name=f"{prefix}.{index}") for index, layer in enumerate(layers))


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
             relu: bool = False) -> tuple[Layer, ...]:
    """A bias-free convolution padded to keep the size (at stride 1), its BatchNorm, and a ReLU if `relu`."""
    conv = Conv("", in_channels, out_channels, kernel, stride, kernel // 2, groups)
    return (conv, Norm("", out_channels)) + ((ReLU(""),) if relu else ())


@dataclass(frozen=True)
class V1UnitPlan:
    """A ShuffleNet V1 unit (Figure 2 (b), (c) of the paper) under its module path (`stage2.0`).

    `branch` is `branch.0` ... `branch.7`: 1x1 group conv, BN, ReLU, shuffle, 3x3 depthwise conv, BN
    (no ReLU after the depthwise convolution, Section 3.2), 1x1 group conv, BN. Without a `shortcut`
    the input is added and the sum goes through a ReLU; with one (stride 2) the 3x3/2 average-pooled
    input (count_include_pad, as the reference code's) is concatenated ahead of the branch, which alone
    goes through the ReLU.
    """

    name: str
    branch: tuple[Layer, ...]
    shortcut: Pool | None


@dataclass(frozen=True)
class V2UnitPlan:
    """A ShuffleNet V2 unit (Figure 3 (c), (d) of the V2 paper), torchvision's InvertedResidual under its
    module path (`stage2.0`). With `split` (stride 1) the input's first half passes as it is and
    `branch2` transforms the second (torch's x.chunk(2)); otherwise `branch1` and `branch2` both
    transform the whole input. The two halves are concatenated and shuffled in `shuffle` groups."""

    name: str
    branch1: tuple[Layer, ...]  # empty when split (torchvision keeps an empty nn.Sequential)
    branch2: tuple[Layer, ...]
    split: bool
    shuffle: int = 2


@dataclass(frozen=True)
class ShuffleNetPlan:
    """The whole network, in the order it runs: `conv1` (conv, BN, ReLU), `maxpool`, the stages `stage2`
    ... (their units), V2's `conv5` (1x1 conv, BN, ReLU; empty in V1), the global average pool and `fc`."""

    version: int                # 1 or 2: whose network, and so (in PyTorch and JAX) whose initialisation
    stem: tuple[Layer, ...]
    pool: Pool
    stages: tuple[tuple[V1UnitPlan | V2UnitPlan, ...], ...]
    conv5: tuple[Layer, ...]
    fc: Linear
    bn_eps: float
    bn_momentum: float          # PyTorch's convention

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(f"stage{index}" for index in range(2, len(self.stages) + 2))


def _min_input_size(stages: int) -> int:
    """Smallest input for which the stem, its pool and `stages` stride-2 stages leave a map."""
    size = 1
    while True:
        out = conv_out(conv_out(size, 3, 2, 1), 3, 2, 1)
        for _ in range(stages):
            out = conv_out(out, 3, 2, 1)
        if out >= 1:
            return size
        size += 1


@dataclass(frozen=True)
class ShuffleNetV1Config(FamilyConfig):
    groups: int = 3
    # Output channels of stages 2-4 at 1.0x; None takes Table 1's row for `groups`.
    stage_channels: tuple[int, ...] | None = None
    stage_repeats: tuple[int, ...] = (4, 8, 4)
    # The paper's "ShuffleNet s x": every stage's channels times s.
    width_mult: float = 1.0
    # None takes the reference code's stem for `width_mult` (see `stem_width`).
    stem_channels: int | None = None
    # Bottleneck (first 1x1 and depthwise) width as a fraction of the unit's output channels.
    bottleneck_ratio: float = 0.25
    # The classifier's bias: Megvii's ShuffleNetV1/network.py leaves it out (1,864,728 parameters at
    # 1.0x g=3), osmr/imgclsmob's ShuffleNet keeps it (1,865,728, the figure registered here).
    fc_bias: bool = True
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def validate(self) -> None:
        check_positive("groups", self.groups, integer=True)
        check_positive("width_mult", self.width_mult)
        check_positive("bottleneck_ratio", self.bottleneck_ratio)
        check_norm(self.bn_eps, self.bn_momentum)
        if self.stage_channels is None and self.groups not in V1_STAGE_CHANNELS:
            raise ValueError(
                f"ShuffleNet V1's Table 1 has groups {sorted(V1_STAGE_CHANNELS)}; got groups={self.groups}, "
                f"so give stage_channels explicitly"
            )
        if not self.stage_repeats or len(self.base_channels()) != len(self.stage_repeats):
            raise ValueError(
                f"stage_channels and stage_repeats need one entry per stage; got "
                f"{self.base_channels()} and {self.stage_repeats}"
            )
        for value in (*self.base_channels(), *self.stage_repeats):
            check_positive("stage_channels and stage_repeats entries", value, integer=True)
        if self.stem_channels is not None:
            check_positive("stem_channels", self.stem_channels, integer=True)
        for unit in self.units():
            where = f"stage{unit.stage} unit {unit.index}"
            if unit.mid_channels < 1 or unit.branch_channels < 1:
                raise ValueError(
                    f"{where} would have an empty branch: {unit.in_channels} -> {unit.out_channels} channels, "
                    f"bottleneck {unit.mid_channels} (width_mult={self.width_mult})"
                )
            for label, channels, groups in (
                ("input channels", unit.in_channels, unit.first_groups),
                ("bottleneck channels", unit.mid_channels, unit.groups),
                ("branch output channels", unit.branch_channels, unit.groups),
            ):
                if channels % groups:
                    raise ValueError(
                        f"groups={groups} must divide the {label} of every group convolution; "
                        f"{where} has {channels} (stage channels {self.stage_widths()}, "
                        f"width_mult={self.width_mult})"
                    )

    def base_channels(self) -> tuple[int, ...]:
        if self.stage_channels is not None:
            return tuple(self.stage_channels)
        return V1_STAGE_CHANNELS[self.groups]

    def stage_widths(self) -> tuple[int, ...]:
        return tuple(int(round(c * self.width_mult)) for c in self.base_channels())

    def stem_width(self) -> int:
        """The stem's width: given, or the reference's for `width_mult`, raised until the first
        unit's branch (stage width minus stem width) splits into `groups` (Megvii's 0.5x g=8 uses 16)."""
        if self.stem_channels is not None:
            return self.stem_channels
        stem = V1_STEM_CHANNELS.get(self.width_mult, max(1, int(round(24 * self.width_mult))))
        first = self.stage_widths()[0]
        while stem < first and (first - stem) % self.groups:
            stem += 1
        return stem

    def units(self) -> list[V1Unit]:
        units, channels = [], self.stem_width()
        for stage, (out, repeats) in enumerate(zip(self.stage_widths(), self.stage_repeats), start=2):
            mid = int(out * self.bottleneck_ratio)
            for index in range(repeats):
                stride = 2 if index == 0 else 1
                # The first unit's input is the 24-channel stem: too few to split into groups.
                first_groups = 1 if (stage == 2 and index == 0) else self.groups
                branch = out - channels if stride == 2 else out
                units.append(V1Unit(stage, index, channels, out, mid, branch, stride, first_groups, self.groups))
                channels = out
        return units

    def unit_plan(self, unit: V1Unit) -> V1UnitPlan:
        name, mid = f"stage{unit.stage}.{unit.index}", unit.mid_channels
        # The shuffle is kept for one group too (where it changes nothing), so every variant has the same names.
        branch = _sequence(f"{name}.branch", *_conv_bn(unit.in_channels, mid, 1, groups=unit.first_groups, relu=True),
                           Shuffle("", unit.groups), *_conv_bn(mid, mid, 3, unit.stride, groups=mid),
                           *_conv_bn(mid, unit.branch_channels, 1, groups=unit.groups))
        shortcut = Pool(f"{name}.shortcut", 3, unit.stride, 1) if unit.stride == 2 else None
        return V1UnitPlan(name, branch, shortcut)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> ShuffleNetPlan:
        """The network this configuration describes, unit by unit (what every framework builds)."""
        units = self.units()
        stages = {unit.stage: [] for unit in units}
        for unit in units:
            stages[unit.stage].append(self.unit_plan(unit))
        return ShuffleNetPlan(
            version=1, stem=_sequence("conv1", *_conv_bn(in_channels, self.stem_width(), 3, 2, relu=True)),
            pool=STEM_POOL, stages=tuple(map(tuple, stages.values())), conv5=(),
            fc=Linear("fc", units[-1].out_channels, num_classes, self.fc_bias),
            bn_eps=self.bn_eps, bn_momentum=self.bn_momentum)

    def min_input_size(self) -> int:
        return _min_input_size(len(self.stage_repeats))

    def outline(self) -> tuple[Stage, ...]:
        return (STEM, *(Stage(f"stage{i}", f"stage{i}", n, f"ShuffleNet unit g={self.groups}", 2)
                        for i, n in enumerate(self.stage_repeats, start=2)),
                Stage("head", "", block="global avg pool, fc"))


@dataclass(frozen=True)
class ShuffleNetV2Config(FamilyConfig):
    # torchvision's ShuffleNetV2 arguments: units per stage, and the output channels of the
    # stem, of each stage and of the final 1x1 convolution (conv5).
    stages_repeats: tuple[int, ...] = (4, 8, 4)
    stages_out_channels: tuple[int, ...] = (24, 116, 232, 464, 1024)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def validate(self) -> None:
        check_norm(self.bn_eps, self.bn_momentum)
        if not self.stages_repeats or len(self.stages_out_channels) != len(self.stages_repeats) + 2:
            raise ValueError(
                f"stages_out_channels needs the stem's, each stage's and conv5's width "
                f"({len(self.stages_repeats) + 2} entries for {len(self.stages_repeats)} stages); "
                f"got {self.stages_out_channels}"
            )
        for value in (*self.stages_repeats, *self.stages_out_channels):
            check_positive("stages_repeats and stages_out_channels entries", value, integer=True)
        odd = [c for c in self.stage_widths() if c % 2]
        if odd:
            raise ValueError(
                f"every stage's output channels must be even (a unit splits them in two halves and "
                f"shuffles 2 groups); got stage widths {self.stage_widths()}"
            )

    def stage_widths(self) -> tuple[int, ...]:
        return tuple(self.stages_out_channels[1:-1])

    def unit_plan(self, name: str, in_channels: int, out_channels: int, stride: int) -> V2UnitPlan:
        """torchvision's InvertedResidual: each branch gives half the output channels."""
        half = out_channels // 2
        branch1 = () if stride == 1 else _sequence(
            f"{name}.branch1", *_conv_bn(in_channels, in_channels, 3, stride, groups=in_channels),
            *_conv_bn(in_channels, half, 1, relu=True))
        branch2 = _sequence(
            f"{name}.branch2", *_conv_bn(in_channels if stride > 1 else half, half, 1, relu=True),
            *_conv_bn(half, half, 3, stride, groups=half), *_conv_bn(half, half, 1, relu=True))
        return V2UnitPlan(name, branch1, branch2, split=stride == 1)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> ShuffleNetPlan:
        """The network this configuration describes, unit by unit (what every framework builds)."""
        channels = self.stages_out_channels
        stages, width = [], channels[0]
        for stage, (repeats, out) in enumerate(zip(self.stages_repeats, self.stage_widths()), start=2):
            stages.append(tuple(self.unit_plan(f"stage{stage}.{index}", width if index == 0 else out, out,
                                               2 if index == 0 else 1) for index in range(repeats)))
            width = out
        return ShuffleNetPlan(
            version=2, stem=_sequence("conv1", *_conv_bn(in_channels, channels[0], 3, 2, relu=True)),
            pool=STEM_POOL, stages=tuple(stages), conv5=_sequence("conv5", *_conv_bn(width, channels[-1], 1, relu=True)),
            fc=Linear("fc", channels[-1], num_classes), bn_eps=self.bn_eps, bn_momentum=self.bn_momentum)

    def min_input_size(self) -> int:
        return _min_input_size(len(self.stages_repeats))

    def outline(self) -> tuple[Stage, ...]:
        return (STEM, *(Stage(f"stage{i}", f"stage{i}", n, "ShuffleNetV2 unit", 2)
                        for i, n in enumerate(self.stages_repeats, start=2)),
                Stage("head", "", block="1x1 conv, global avg pool, fc"))


V1_PAPER = ("ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices "
            "(Zhang, Zhou, Lin, Sun, 2017)")
V2_PAPER = "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design (Ma, Zhang, Zheng, Sun, 2018)"
V1_SOURCE = ("osmr/imgclsmob (pytorchcv) ShuffleNet x1.0 table: g1 1,531,936, g2 1,733,848, g3 1,865,728, "
             "g4 1,968,344, g8 2,434,768; units as Megvii's ShuffleNet-Series/ShuffleNetV1 (bottleneck = "
             "out // 4, ungrouped first 1x1 of stage 2), whose classifier alone lacks the bias")
V2_SOURCE = "torchvision.models.shufflenetv2 (weights meta num_params)"

# (groups, trainable, trainable + BatchNorm running statistics) at 1.0x, 1000 classes.
V1_COUNTS = {
    1: (1_531_936, 1_546_624),
    2: (1_733_848, 1_754_248),
    3: (1_865_728, 1_890_208),
    4: (1_968_344, 1_996_088),
    8: (2_434_768, 2_473_936),
}
# Table 2 of the V1 paper: ImageNet top-1 error of ShuffleNet 1x per number of groups (single 224 crop).
V1_ERROR = {1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4}
V1_RECIPE = ("the paper's Sec. 4: 3e5 iterations at batch 1024, lr 0.5 decayed linearly to 0, weight decay 4e-5, "
             "less aggressive scale augmentation")
for _groups, (_params, _total) in V1_COUNTS.items():
    register(ModelSpec(
        name=f"shufflenet_v1_g{_groups}",
        family="shufflenet",
        config=ShuffleNetV1Config(groups=_groups),
        input_size=(3, 224, 224),
        params=_params,
        params_total=_total,
        source=V1_SOURCE,
        paper=V1_PAPER,
        **published(round(100 - V1_ERROR[_groups], 2), recipe=V1_RECIPE,
                    source=f"Zhang et al. 2017, Table 2: ShuffleNet 1x (g = {_groups}), top-1 error {V1_ERROR[_groups]}%"),
    ))

# name -> (stages_out_channels, trainable, trainable + BatchNorm running statistics)
V2_VARIANTS = {
    "x0_5": ((24, 48, 96, 192, 1024), 1_366_792, 1_374_744),
    "x1_0": ((24, 116, 232, 464, 1024), 2_278_604, 2_294_784),
    "x1_5": ((24, 176, 352, 704, 1024), 3_503_624, 3_527_064),
    "x2_0": ((24, 244, 488, 976, 2048), 7_393_996, 7_427_712),
}
# ImageNet (acc@1, acc@5, recipe) of torchvision's IMAGENET1K_V1 weights: the 0.5x and 1.0x weights
# reproduce the paper's training, the 1.5x and 2.0x ones torchvision's newer recipe.
V2_ACCURACY = {
    "x0_5": (60.552, 81.746, "https://github.com/ericsun99/Shufflenet-v2-Pytorch"),
    "x1_0": (69.362, 88.316, "https://github.com/ericsun99/Shufflenet-v2-Pytorch"),
    "x1_5": (72.996, 91.086, "https://github.com/pytorch/vision/pull/5906"),
    "x2_0": (76.230, 93.006, "https://github.com/pytorch/vision/pull/5906"),
}
for _suffix, (_channels, _params, _total) in V2_VARIANTS.items():
    register(ModelSpec(
        name=f"shufflenet_v2_{_suffix}",
        family="shufflenet",
        config=ShuffleNetV2Config(stages_out_channels=_channels),
        input_size=(3, 224, 224),
        params=_params,
        params_total=_total,
        source=V2_SOURCE,
        paper=V2_PAPER,
        **torchvision_weights(f"ShuffleNet_V2_{_suffix.upper()}_Weights.IMAGENET1K_V1", *V2_ACCURACY[_suffix][:2],
                              recipe=V2_ACCURACY[_suffix][2]),
    ))
