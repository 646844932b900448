"""ResNet (He et al., 2015) as torchvision builds it, and the ResNeXt / wide / CIFAR variants it allows.

torchvision's ResNet is "v1.5": a bottleneck block downsamples in its 3x3 convolution, not in the
first 1x1 as in the paper, and projection shortcuts (1x1 conv + BN) are used only where the shape
changes (the paper's option B).

Who builds which (the knobs that make the zoo build each reference, see zoo.convert.resnet):
- torchvision, timm: the defaults.
- keras.applications ResNet50/101/152: stride_in_1x1=True, conv_bias="all", bn_eps=1.001e-5,
  bn_momentum=0.01 (Keras' 0.99).
- Gluon model zoo resnet*_v1: stride_in_1x1=True for the bottleneck and conv_bias="bottleneck_1x1".
- Gluon model zoo resnet*_v2: preactivation=True, input_norm=True (He et al., 2016, "Identity
  Mappings in Deep Residual Networks", as MXNet's original ResNet symbol builds it).
- d2l.ai's PyTorch code (`resnet18_d2l`): conv_bias="all", shortcut_norm=False (its Residual block's
  1x1 shortcut convolution has a bias and no BatchNorm).

Canonical names of the pre-activation network (PyTorch state_dict keys): `input_bn` (the input's
BatchNorm, running statistics only), the stem as usual (`conv1`, `bn1`), in each block `bnK` the
BatchNorm + ReLU *before* `convK` (so `bn1` has the block's input channels) and `downsample.0` the
bare 1x1 projection of the pre-activated input, and `final_bn` (BatchNorm + ReLU before the pool).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import conv_out, smallest_input, stem_out
from ..plan import Conv, Pool
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_choice, check_positive,
                        d2l_figures, register, torchvision_weights)

# Output channels of a block over its `planes` (the stage width).
EXPANSION = {"basic": 1, "bottleneck": 4}
# stem -> ((kernel, stride, padding) of its convolution, (kernel, stride, padding) of its max pool or None).
# "imagenet": 7x7/2 convolution + 3x3/2 max pool (224x224 inputs become 56x56).
# "cifar": one 3x3/1 convolution and no pool, so 32x32 inputs keep 32x32 in the first stage
# (the CIFAR ResNet-18 of kuangliu/pytorch-cifar and of most CIFAR papers).
STEMS = {
    "imagenet": ((7, 2, 3), (3, 2, 1)),
    "cifar": ((3, 1, 1), None),
}
# conv_bias -> which convolutions carry a bias (BatchNorm follows each, so it only adds parameters):
# "none": torchvision, timm; "all": keras.applications' ResNet v1, every convolution (stem, blocks,
# projection shortcuts); "bottleneck_1x1": Gluon's BottleneckV1, the bottleneck's conv1 and conv3 only.
CONV_BIAS = ("none", "all", "bottleneck_1x1")


@dataclass(frozen=True)
class ResNetConfig(FamilyConfig):
    block: str = "bottleneck"
    layers: tuple[int, ...] = (3, 4, 6, 3)
    # `planes` of each stage; a block's output has planes * EXPANSION[block] channels.
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: str = "imagenet"
    stem_width: int = 64
    # ResNeXt: the bottleneck's 3x3 convolution has groups * int(planes * width_per_group / 64) channels.
    groups: int = 1
    width_per_group: int = 64
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    # torchvision's option: start every residual branch's last BN at zero, so each block begins as
    # the identity (Goyal et al., 2017). Off by default, as in torchvision. An initialisation, so the
    # PyTorch builder applies it; Keras and Gluon models start from their own initialisers (or load
    # canonical weights) and ignore it.
    zero_init_residual: bool = False
    # The paper's ResNet v1 (also Caffe's, Keras' ResNet50 and Gluon's resnet50_v1) downsamples in the
    # bottleneck's first 1x1 convolution; torchvision's v1.5, the default, in its 3x3 (same parameters,
    # about 6% more multiply-adds for ResNet-50, and more accurate).
    stride_in_1x1: bool = False
    # Which convolutions carry a bias (CONV_BIAS): "none" (torchvision), "all" (Keras), "bottleneck_1x1" (Gluon v1).
    conv_bias: str = "none"
    # ResNet v2 (He et al., 2016): BatchNorm + ReLU before each convolution of a block, the shortcut's
    # projection a bare 1x1 convolution of the pre-activated input, the sum left as it is, and one
    # BatchNorm + ReLU after the last stage. Gluon's resnet*_v2.
    preactivation: bool = False
    # A BatchNorm without scale and shift on the input image (Gluon's resnet*_v2, MXNet's "bn_data").
    input_norm: bool = False
    # A BatchNorm after a v1 block's projection shortcut (`downsample.1`): torchvision's, the paper's option B.
    # d2l.ai's Residual block projects with a bare 1x1 convolution (shortcut_norm=False).
    shortcut_norm: bool = True

    def validate(self) -> None:
        check_choice("block", self.block, tuple(EXPANSION))
        check_choice("conv_bias", self.conv_bias, CONV_BIAS)
        check_choice("stem", self.stem, tuple(STEMS))
        if not self.layers or len(self.layers) != len(self.widths):
            raise ValueError(
                f"layers and widths need one entry per stage and the same length; "
                f"got layers={self.layers!r}, widths={self.widths!r}"
            )
        for value in (*self.layers, *self.widths):
            check_positive("each entry of layers and widths", value, integer=True)
        for label, value in (("stem_width", self.stem_width), ("groups", self.groups),
                             ("width_per_group", self.width_per_group)):
            check_positive(label, value, integer=True)
        if self.block == "basic" and (self.groups != 1 or self.width_per_group != 64):
            raise ValueError(
                f"the basic block has no grouped bottleneck: it needs groups=1 and width_per_group=64, "
                f"got groups={self.groups}, width_per_group={self.width_per_group}"
            )
        if self.stride_in_1x1 and self.block != "bottleneck":
            raise ValueError("stride_in_1x1 moves the stride within a bottleneck block; the basic block has none")
        if self.conv_bias == "bottleneck_1x1" and self.block != "bottleneck":
            raise ValueError('conv_bias="bottleneck_1x1" puts biases on a bottleneck\'s 1x1 convolutions; '
                             'the basic block has none (use "none" or "all")')
        if self.preactivation and not self.shortcut_norm:
            raise ValueError("shortcut_norm=False takes the BatchNorm off a v1 block's projection shortcut; a "
                             "pre-activation block's projection has none (preactivation=True needs shortcut_norm=True)")
        if self.preactivation and self.zero_init_residual:
            raise ValueError("zero_init_residual zeroes a residual branch's last BatchNorm; a pre-activation "
                             "branch ends in a convolution and has none (preactivation=True needs "
                             "zero_init_residual=False)")
        if self.block == "bottleneck":
            for planes in self.widths:
                if self.bottleneck_width(planes) < 1:
                    raise ValueError(
                        f"stage width {planes} with width_per_group={self.width_per_group} leaves the "
                        f"bottleneck with no channels per group"
                    )
        check_positive("bn_eps", self.bn_eps)
        if not 0.0 <= self.bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum (PyTorch convention) must be in [0, 1], got {self.bn_momentum!r}")

    @property
    def expansion(self) -> int:
        return EXPANSION[self.block]

    def bottleneck_width(self, planes: int) -> int:
        """Channels of a bottleneck block's 3x3 convolution (torchvision's rule, which gives ResNeXt)."""
        return int(planes * (self.width_per_group / 64.0)) * self.groups

    def conv_biases(self) -> tuple[bool, bool, bool]:
        """Whether (the stem and projection shortcuts, a block's 1x1 convolutions, its 3x3 ones) carry a bias."""
        return {"none": (False, False, False), "all": (True, True, True),
                "bottleneck_1x1": (False, True, False)}[self.conv_bias]

    def bottleneck_strides(self, stride: int) -> tuple[int, int]:
        """Strides of a bottleneck block's conv1 (1x1) and conv2 (3x3)."""
        return (stride, 1) if self.stride_in_1x1 else (1, stride)

    def stage_strides(self) -> tuple[int, ...]:
        # The first stage keeps the stem's resolution; every later one halves it.
        return (1,) + (2,) * (len(self.layers) - 1)

    def out_channels(self) -> int:
        return self.widths[-1] * self.expansion

    @property
    def stem_conv(self) -> tuple[int, int, int]:
        return STEMS[self.stem][0]

    @property
    def stem_pool(self) -> tuple[int, int, int] | None:
        return STEMS[self.stem][1]

    def feature_size(self, size: int) -> int:
        """Height (= width) of the last stage's map for a size x size input."""
        size = stem_out(size, self.stem_conv, self.stem_pool)
        for stride in self.stage_strides():
            size = conv_out(size, 3, stride, 1)
        return size

    def min_input_size(self) -> int:
        return smallest_input(self.feature_size)

    def block_plan(self, name: str, in_channels: int, planes: int, stride: int) -> ResidualBlock:
        """The block `name` of a stage of `planes`, taking `in_channels` at `stride`: torchvision's
        BasicBlock or Bottleneck (stride on the 3x3; on the first 1x1 with stride_in_1x1), a projection
        shortcut where the shape changes (the paper's option B)."""
        out = planes * self.expansion
        outer, bias1x1, bias3x3 = self.conv_biases()
        if self.block == "basic":
            convs = (Conv(f"{name}.conv1", in_channels, planes, 3, stride, 1, bias=bias3x3),
                     Conv(f"{name}.conv2", planes, planes, 3, 1, 1, bias=bias3x3))
        else:
            width = self.bottleneck_width(planes)
            stride1, stride2 = self.bottleneck_strides(stride)
            convs = (Conv(f"{name}.conv1", in_channels, width, 1, stride1, bias=bias1x1),
                     Conv(f"{name}.conv2", width, width, 3, stride2, 1, self.groups, bias=bias3x3),
                     Conv(f"{name}.conv3", width, out, 1, bias=bias1x1))
        downsample = None
        if stride != 1 or in_channels != out:
            downsample = Conv(f"{name}.downsample.0", in_channels, out, 1, stride, bias=outer)
        return ResidualBlock(name, self.block, convs, downsample, self.preactivation,
                             downsample_norm=downsample is not None and self.shortcut_norm and not self.preactivation)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> ResNetPlan:
        """The network this configuration describes, block by block (what every framework builds)."""
        kernel, stride, padding = self.stem_conv
        stem = Conv("conv1", in_channels, self.stem_width, kernel, stride, padding, bias=self.conv_biases()[0])
        pool = Pool("maxpool", *self.stem_pool) if self.stem_pool else None
        stages, channels = [], self.stem_width
        for index, (planes, blocks, stride) in enumerate(zip(self.widths, self.layers, self.stage_strides()), start=1):
            stage = []
            for number in range(blocks):
                stage.append(self.block_plan(f"layer{index}.{number}", channels, planes, stride if number == 0 else 1))
                channels = stage[-1].out_channels
            stages.append(tuple(stage))
        return ResNetPlan(
            input_norm=in_channels if self.input_norm else None, stem=stem, pool=pool, stages=tuple(stages),
            final_norm=channels if self.preactivation else None, num_classes=num_classes,
            bn_eps=self.bn_eps, bn_momentum=self.bn_momentum, zero_init_residual=self.zero_init_residual)

    def outline(self) -> tuple[Stage, ...]:
        plan = self.plan()
        conv, pool = plan.stem, plan.pool
        stem = f"{conv.kernel}x{conv.kernel}/{conv.stride} conv" + (
            f", {pool.kernel}x{pool.kernel}/{pool.stride} max pool" if pool else "")
        if plan.input_norm:
            stem = f"input BN, {stem}"
        block = ("PreAct" if self.preactivation else "") + {"basic": "BasicBlock", "bottleneck": "Bottleneck"}[self.block]
        return (
            # The CIFAR stem's `maxpool` is an Identity: the stage still ends there.
            Stage("stem", "maxpool", block=stem, stride=conv.stride * (pool.stride if pool else 1)),
            *(Stage(name, name, len(blocks), block, max(c.stride for c in blocks[0].convs))
              for name, blocks in zip(plan.stage_names, plan.stages)),
            Stage("head", "", block=("BN, ReLU, " if plan.final_norm else "") + "global avg pool, fc"),
        )


@dataclass(frozen=True)
class ResidualBlock:
    """One residual block of the plan, under its canonical module path (`layer2.0`).

    `convs` are conv1, conv2 (and conv3 in a bottleneck). In a v1 block each `convK` is followed by
    `bnK` over its output, with ReLUs between, the projection `downsample` is `downsample.0` (the conv)
    and `downsample.1` (its BN; none where `downsample_norm` is False, d2l's), and the sum goes through a
    ReLU. In a v2 (pre-activation) block `bnK` and a ReLU come before `convK`, over its input, the
    projection is the bare conv of the pre-activated input, and the sum is passed on as it is. `se`: the
    squeezed channels of the squeeze-and-excitation module (`se.fc1`, `se.fc2`) on the residual branch,
    before the addition; None without one.
    """

    name: str
    kind: str                  # "basic" or "bottleneck": torchvision's BasicBlock or Bottleneck
    convs: tuple[Conv, ...]
    downsample: Conv | None
    preactivation: bool = False
    se: int | None = None
    downsample_norm: bool = False  # whether a BatchNorm `downsample.1` follows the projection

    @property
    def in_channels(self) -> int:
        return self.convs[0].in_channels

    @property
    def out_channels(self) -> int:
        return self.convs[-1].out_channels

    @property
    def norms(self) -> tuple[int, ...]:
        """Channels of bn1, bn2, ...: each conv's output in v1, its input in v2."""
        return tuple(c.in_channels if self.preactivation else c.out_channels for c in self.convs)


@dataclass(frozen=True)
class ResNetPlan:
    """The whole network, in the order it runs: `input_bn`, the stem (`conv1`, `bn1`, ReLU, `maxpool`),
    the stages `layer1` ... (their blocks), v2's `final_bn` + ReLU, the global pool and `fc`."""

    input_norm: int | None     # channels of the image's BatchNorm without scale and shift (Gluon v2), or None
    stem: Conv
    pool: Pool | None
    stages: tuple[tuple[ResidualBlock, ...], ...]
    final_norm: int | None     # v2: channels of the BN + ReLU after the last stage, or None
    num_classes: int
    bn_eps: float
    bn_momentum: float         # PyTorch's convention
    zero_init_residual: bool

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(f"layer{index}" for index in range(1, len(self.stages) + 1))

    @property
    def features(self) -> int:
        """Channels into the classifier."""
        return self.stages[-1][-1].out_channels

    def blocks(self) -> tuple[ResidualBlock, ...]:
        return tuple(block for stage in self.stages for block in stage)

    def norms(self) -> tuple[int, ...]:
        """Channels of every BatchNorm, in module order (the input's included)."""
        found = [self.input_norm] if self.input_norm else []
        found.append(self.stem.out_channels)
        for block in self.blocks():
            found += block.norms
            if block.downsample_norm:
                found.append(block.downsample.out_channels)
        return tuple(found + ([self.final_norm] if self.final_norm else []))


# BasicBlock: 2 3x3 convs; Bottleneck: 1x1, 3x3, 1x1 (x4).
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def resnet_config(depth: int, **knobs) -> ResNetConfig:
    """The torchvision configuration of ResNet-`depth` (18, 34, 50, 101, 152), with `knobs` changed."""
    if depth not in DEPTHS:
        raise ValueError(f"ResNet depth must be one of {', '.join(map(str, DEPTHS))}; got {depth!r}")
    block, layers = DEPTHS[depth]
    return ResNetConfig(block=block, layers=layers, **knobs)


def bn_state(config: ResNetConfig, num_classes: int = 1000, in_channels: int = 3) -> int:
    """BatchNorm running statistics (mean and variance) of a config: params_total - params."""
    return 2 * sum(config.plan(num_classes, in_channels).norms())


PAPER = "Deep Residual Learning for Image Recognition (He, Zhang, Ren, Sun, 2015)"
SOURCE = "torchvision.models.{name} (torchvision docs: num_params {params:,})"

# Trainable parameters of torchvision's models, 1000 classes.
TORCHVISION_PARAMS = {
    18: 11_689_512,
    34: 21_797_672,
    50: 25_557_032,
    101: 44_549_160,
    152: 60_192_808,
}

# ImageNet accuracy of torchvision's IMAGENET1K_V1 weights (90 epochs, SGD, step schedule).
TORCHVISION_ACCURACY = {18: (69.758, 89.078), 34: (73.314, 91.420), 50: (76.130, 92.862),
                        101: (77.374, 93.546), 152: (78.312, 94.046)}

for _depth, _params in TORCHVISION_PARAMS.items():
    _config = resnet_config(_depth)
    register(ModelSpec(
        name=f"resnet{_depth}",
        family="resnet",
        config=_config,
        input_size=(3, 224, 224),
        params=_params,
        params_total=_params + bn_state(_config),
        source=SOURCE.format(name=f"resnet{_depth}", params=_params),
        paper=PAPER,
        **torchvision_weights(f"ResNet{_depth}_Weights.IMAGENET1K_V1", *TORCHVISION_ACCURACY[_depth],
                              recipe=TORCHVISION_RECIPES + "#resnet"),
    ))

_RESNET18_D2L = resnet_config(18, conv_bias="all", shortcut_norm=False)
register(ModelSpec(
    name="resnet18_d2l",
    family="resnet",
    config=_RESNET18_D2L,
    input_size=(1, 96, 96),
    num_classes=10,
    params=11_178_378,
    params_total=11_178_378 + bn_state(_RESNET18_D2L, 10, 1),
    paper=PAPER,
    notes="every convolution with a bias, the 1x1 projection shortcuts without BatchNorm, as d2l writes them",
    **d2l_figures("8.6 (ResNet), ResNet18() on 1x96x96 Fashion-MNIST, 10 classes", 11_178_378),
))
