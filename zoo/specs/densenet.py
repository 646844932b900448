"""DenseNet (Huang et al., Densely Connected Convolutional Networks) as torchvision builds it, and the
textbook and CIFAR variants its knobs allow.

Each dense layer sees the concatenation of every earlier feature map of its block and adds
`growth_rate` channels: BN-ReLU-Conv1x1 (bn_size * growth_rate channels, the "B" of DenseNet-BC)
then BN-ReLU-Conv3x3. Transitions between blocks are BN-ReLU-Conv1x1 (compression, the "C") and a
2x2 average pool.

`DenseNetConfig.plan` gives the network as every framework builds it, under torchvision's module names:
the stem (`features.conv0`, with the ImageNet stem `features.norm0` + `features.pool0`), each dense
block's layers (`features.denseblock1.denselayer1`: norm1, conv1, ...), the transitions
(`features.transition1`), `features.norm5` and the `classifier`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..arith import conv_out, smallest_input, stem_out
from ..plan import Conv, Linear, Pool
from ..registry import (FamilyConfig, ModelSpec, Stage, check_choice, check_positive, check_probability, d2l_figures,
                        published, register, torchvision_weights)

# stem -> ((kernel, stride, padding) of conv0, (kernel, stride, padding) of its max pool0 or None).
# "imagenet": 7x7/2 conv0 + norm0 + relu0 + 3x3/2 max pool0 (torchvision, and d2l's stem);
# "cifar": a single 3x3/1 conv0 (Huang et al.'s CIFAR/SVHN networks), no norm0/relu0/pool0.
STEMS = {
    "imagenet": ((7, 2, 3), (3, 2, 1)),
    "cifar": ((3, 1, 1), None),
}
# A transition halves the resolution with a 2x2/2 average pool.
TRANSITION_POOL = 2


@dataclass(frozen=True)
class DenseNetConfig(FamilyConfig):
    growth_rate: int = 32
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    num_init_features: int = 64
    # Width of the 1x1 bottleneck in units of growth_rate; 0 or None: no bottleneck (a dense layer is
    # BN-ReLU-Conv3x3 alone, then named norm1/relu1/conv1).
    bn_size: int | None = 4
    # Fraction of channels a transition keeps (theta in the paper; floor(theta * C) channels).
    compression: float = 0.5
    drop_rate: float = 0.0
    stem: str = "imagenet"
    # torchvision's convolutions have no bias (a BatchNorm follows or precedes each); d2l's have one.
    conv_bias: bool = False
    # torchvision, timm and Gluon: 1e-5 and 0.1 (PyTorch's convention, the weight of the new statistic);
    # keras.applications: 1.001e-5 and Keras' 0.99, PyTorch's 0.01 (zoo.convert.densenet reads them).
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    # Recompute the concat + BN + ReLU + 1x1 conv of each dense layer in the backward pass instead of
    # storing it (Pleiss et al., 2017). Same outputs and gradients. PyTorch: torch.utils.checkpoint, as
    # torchvision; TensorFlow: tf.recompute_grad; JAX: jax.checkpoint; MXNet: mirroring in a bound
    # executor, where channel offsets are whole 16-channel blocks (see zoo_mxnet.densenet).
    # As with any recomputation, a training step updates norm1's running statistics twice.
    memory_efficient: bool = False

    def validate(self) -> None:
        check_positive("growth_rate", self.growth_rate, integer=True)
        check_positive("num_init_features", self.num_init_features, integer=True)
        if not self.block_config:
            raise ValueError("block_config needs at least one dense block, got ()")
        for layers in self.block_config:
            check_positive("each entry of block_config", layers, integer=True)
        if self.bn_size not in (0, None):
            check_positive("bn_size (0 or None for no bottleneck)", self.bn_size, integer=True)
        if not isinstance(self.compression, (int, float)) or not 0.0 < self.compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {self.compression!r}")
        check_probability("drop_rate", self.drop_rate)
        check_choice("stem", self.stem, tuple(STEMS))
        check_positive("bn_eps", self.bn_eps)
        if not 0.0 <= self.bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum (PyTorch convention) must be in [0, 1], got {self.bn_momentum!r}")
        for index, (_, _, out) in enumerate(self.stages()[:-1]):
            if out < 1:
                raise ValueError(
                    f"compression {self.compression} leaves transition {index + 1} with no channels"
                )

    @property
    def bottleneck(self) -> bool:
        return bool(self.bn_size)

    def transition_channels(self, channels: int) -> int:
        return int(math.floor(channels * self.compression))

    def stages(self) -> list[tuple[int, int, int]]:
        """(channels into the block, channels out of the block, channels out of its transition) per
        block; the last block has no transition, its third entry repeats the second."""
        stages = []
        channels = self.num_init_features
        for index, layers in enumerate(self.block_config):
            out = channels + layers * self.growth_rate
            last = index == len(self.block_config) - 1
            stages.append((channels, out, out if last else self.transition_channels(out)))
            channels = stages[-1][2]
        return stages

    def out_channels(self) -> int:
        return self.stages()[-1][2]

    @property
    def stem_conv(self) -> tuple[int, int, int]:
        return STEMS[self.stem][0]

    @property
    def stem_pool(self) -> tuple[int, int, int] | None:
        return STEMS[self.stem][1]

    def feature_size(self, size: int) -> int:
        """Height (= width) of the last block's map for a size x size input."""
        size = stem_out(size, self.stem_conv, self.stem_pool)
        for _ in self.block_config[:-1]:
            size = conv_out(size, TRANSITION_POOL, TRANSITION_POOL)
        return size

    def min_input_size(self) -> int:
        return smallest_input(self.feature_size)

    def layer_plan(self, name: str, in_channels: int) -> DenseLayerPlan:
        """The dense layer `name` over `in_channels` concatenated channels: a 1x1 bottleneck of
        bn_size * growth_rate channels then the 3x3 convolution (DenseNet-B), or the 3x3 alone."""
        growth, bias = self.growth_rate, self.conv_bias
        if self.bottleneck:
            width = self.bn_size * growth
            convs = (Conv(f"{name}.conv1", in_channels, width, 1, bias=bias),
                     Conv(f"{name}.conv2", width, growth, 3, padding=1, bias=bias))
        else:
            # Without a bottleneck the layer is BN-ReLU-Conv3x3 (DenseNet without "B"; d2l's conv_block).
            convs = (Conv(f"{name}.conv1", in_channels, growth, 3, padding=1, bias=bias),)
        return DenseLayerPlan(name, convs, float(self.drop_rate))

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> DenseNetPlan:
        """The network this configuration describes, layer by layer (what every framework builds)."""
        kernel, stride, padding = self.stem_conv
        stem = Conv("features.conv0", in_channels, self.num_init_features, kernel, stride, padding,
                    bias=self.conv_bias)
        blocks, transitions = [], []
        stages = self.stages()
        for index, ((block_in, block_out, trans_out), layers) in enumerate(zip(stages, self.block_config), start=1):
            name = f"features.denseblock{index}"
            blocks.append(DenseBlockPlan(name, tuple(
                self.layer_plan(f"{name}.denselayer{i}", block_in + (i - 1) * self.growth_rate)
                for i in range(1, layers + 1))))
            if index < len(stages):
                name = f"features.transition{index}"
                transitions.append(TransitionPlan(name, Conv(f"{name}.conv", block_out, trans_out, 1, bias=self.conv_bias),
                                                  Pool(f"{name}.pool", TRANSITION_POOL, TRANSITION_POOL)))
        return DenseNetPlan(
            # Huang et al.'s CIFAR stem stops at conv0: the first dense layer's BN-ReLU follows directly.
            stem=stem, stem_norm=self.num_init_features if self.stem_pool else None,
            pool=Pool("features.pool0", *self.stem_pool) if self.stem_pool else None,
            blocks=tuple(blocks), transitions=tuple(transitions),
            classifier=Linear("classifier", self.out_channels(), num_classes),
            bn_eps=self.bn_eps, bn_momentum=self.bn_momentum, memory_efficient=self.memory_efficient)

    def outline(self) -> tuple[Stage, ...]:
        conv, pool = self.stem_conv, self.stem_pool
        stem = f"{conv[0]}x{conv[0]}/{conv[1]} conv" + (f", {pool[0]}x{pool[0]}/{pool[1]} max pool" if pool else "")
        layer = "DenseLayer: 1x1, 3x3 conv" if self.bottleneck else "DenseLayer: 3x3 conv"
        stages = [Stage("stem", "features.pool0" if pool else "features.conv0", block=stem,
                        stride=conv[1] * (pool[1] if pool else 1))]
        for i, layers in enumerate(self.block_config, start=1):
            stages.append(Stage(f"denseblock{i}", f"features.denseblock{i}", layers, layer))
            if i < len(self.block_config):
                stages.append(Stage(f"transition{i}", f"features.transition{i}",
                                    block="1x1 conv, 2x2 avg pool", stride=TRANSITION_POOL))
        return (*stages, Stage("head", "", block="BN, global avg pool, fc"))


@dataclass(frozen=True)
class _Named:
    name: str

    def local(self) -> str:
        """The module's own name within its parent (`denselayer5` of `features.denseblock2.denselayer5`)."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class DenseLayerPlan(_Named):
    """One dense layer under its canonical path (`features.denseblock2.denselayer5`). It sees the
    concatenation of its block's maps so far; each `convK` follows `normK` + `reluK` over the conv's
    input (conv1 the 1x1 bottleneck and conv2 the 3x3, or conv1 the 3x3 alone), and dropout at
    `drop_rate` ends it (torch's F.dropout: no module). memory_efficient recomputes the concatenation,
    norm1, relu1 and conv1."""

    convs: tuple[Conv, ...]
    drop_rate: float

    @property
    def in_channels(self) -> int:
        return self.convs[0].in_channels

    @property
    def growth_rate(self) -> int:
        """Channels the layer adds to its block's map."""
        return self.convs[-1].out_channels

    @property
    def bottleneck(self) -> bool:
        return len(self.convs) == 2

    @property
    def norms(self) -> tuple[int, ...]:
        """Channels of norm1, norm2, ...: each conv's input (BN-ReLU-conv)."""
        return tuple(conv.in_channels for conv in self.convs)


@dataclass(frozen=True)
class DenseBlockPlan(_Named):
    """A dense block (`features.denseblock1`): its layers `denselayer1` ..., whose outputs are
    concatenated, after the block's input, into the block's output."""

    layers: tuple[DenseLayerPlan, ...]

    @property
    def in_channels(self) -> int:
        return self.layers[0].in_channels

    @property
    def growth_rate(self) -> int:
        return self.layers[0].growth_rate

    @property
    def out_channels(self) -> int:
        return self.in_channels + len(self.layers) * self.growth_rate


@dataclass(frozen=True)
class TransitionPlan(_Named):
    """A transition between blocks (`features.transition1`): `norm` + `relu` over the conv's input,
    the 1x1 `conv` (compression), then the 2x2 average `pool`."""

    conv: Conv
    pool: Pool

    @property
    def norm(self) -> int:
        return self.conv.in_channels


@dataclass(frozen=True)
class DenseNetPlan:
    """The whole network, in the order it runs: the stem (`features.conv0`, with the ImageNet stem
    `features.norm0` + `relu0` + the max `pool0`), each dense block followed by its transition (none
    after the last), `features.norm5`, a ReLU, the global average pool and the `classifier`."""

    stem: Conv
    stem_norm: int | None      # channels of features.norm0, or None (the CIFAR stem has no norm0/relu0/pool0)
    pool: Pool | None          # features.pool0, a max pool
    blocks: tuple[DenseBlockPlan, ...]
    transitions: tuple[TransitionPlan, ...]  # one after each block but the last
    classifier: Linear
    bn_eps: float
    bn_momentum: float         # PyTorch's convention
    memory_efficient: bool

    @property
    def final_norm(self) -> int:
        """Channels of features.norm5 (torchvision's name whatever the number of blocks)."""
        return self.blocks[-1].out_channels

    def stages(self) -> tuple[tuple[DenseBlockPlan, TransitionPlan | None], ...]:
        """Each block with the transition after it (None after the last)."""
        return tuple(zip(self.blocks, (*self.transitions, None)))

    def norms(self) -> tuple[int, ...]:
        """Channels of every BatchNorm, in module order."""
        found = [self.stem_norm] if self.stem_norm else []
        for block, transition in self.stages():
            found += [channels for layer in block.layers for channels in layer.norms]
            if transition is not None:
                found.append(transition.norm)
        return (*found, self.final_norm)


def bn_state(config: DenseNetConfig, num_classes: int = 1000, in_channels: int = 3) -> int:
    """BatchNorm running statistics (mean and variance) of a config: params_total - params."""
    return 2 * sum(config.plan(num_classes, in_channels).norms())


PAPER = "Densely Connected Convolutional Networks (Huang, Liu, van der Maaten, Weinberger, 2016)"

# name: (growth_rate, block_config, num_init_features, torchvision's trainable parameters)
TORCHVISION = {
    "densenet121": (32, (6, 12, 24, 16), 64, 7_978_856),
    "densenet161": (48, (6, 12, 36, 24), 96, 28_681_000),
    "densenet169": (32, (6, 12, 32, 32), 64, 14_149_480),
    "densenet201": (32, (6, 12, 48, 32), 64, 20_013_928),
}
# ImageNet (acc@1, acc@5) of torchvision's IMAGENET1K_V1 weights (ported from the paper's Torch models).
TORCHVISION_ACCURACY = {
    "densenet121": (74.434, 91.972), "densenet161": (77.138, 93.560),
    "densenet169": (75.600, 92.806), "densenet201": (76.896, 93.370),
}
IMAGENET_RECIPE = "the paper's Sec. 4.2: SGD, batch 256, 90 epochs, lr 0.1 divided by 10 at epochs 30 and 60"

for _name, (_growth, _blocks, _init, _params) in TORCHVISION.items():
    _config = DenseNetConfig(growth_rate=_growth, block_config=_blocks, num_init_features=_init)
    register(ModelSpec(
        name=_name,
        family="densenet",
        config=_config,
        input_size=(3, 224, 224),
        params=_params,
        params_total=_params + bn_state(_config),
        source=f"torchvision.models.{_name} (torchvision docs: num_params {_params:,})",
        paper=PAPER,
        **torchvision_weights(f"DenseNet{_name[8:]}_Weights.IMAGENET1K_V1", *TORCHVISION_ACCURACY[_name],
                              recipe="https://github.com/pytorch/vision/pull/116"),
    ))


def d2l_densenet(**knobs) -> DenseNetConfig:
    """d2l.ai's DenseNet (section 8.7): 4 blocks of 4 BN-ReLU-Conv3x3 layers, growth 32, no bottleneck,
    the 7x7/2 + max pool stem, transitions halving the channels, and biases on every convolution."""
    defaults = dict(growth_rate=32, block_config=(4, 4, 4, 4), num_init_features=64, bn_size=0,
                    compression=0.5, stem="imagenet", conv_bias=True)
    return DenseNetConfig(**{**defaults, **knobs})


def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, **knobs) -> DenseNetConfig:
    """Huang et al.'s CIFAR DenseNet-BC: 3 blocks of (depth - 4) / 6 bottleneck layers, a 3x3 stem of
    2 * growth_rate channels, compression 0.5 (L=100, k=12: "0.8M" parameters in the paper's Table 2)."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"DenseNet-BC depth must be 6n + 4 with n >= 1, got {depth!r}")
    layers = (depth - 4) // 6
    defaults = dict(growth_rate=growth_rate, block_config=(layers,) * 3, num_init_features=2 * growth_rate,
                    bn_size=4, compression=0.5, stem="cifar")
    return DenseNetConfig(**{**defaults, **knobs})


# DenseNet-264 of the paper's ImageNet table (k=32, blocks 6-12-64-48, 64 stem features). timm's
# `densenet264` builds another variant (k=48, 96 stem features: 72,686,632 parameters, as Pleiss et al.'s
# memory-efficient experiments); timm's DenseNet class at the paper's configuration gives this count.
_DENSENET264 = DenseNetConfig(growth_rate=32, block_config=(6, 12, 64, 48), num_init_features=64)
register(ModelSpec(
    name="densenet264",
    family="densenet",
    config=_DENSENET264,
    input_size=(3, 224, 224),
    params=33_337_704,
    params_total=33_337_704 + bn_state(_DENSENET264),
    source="timm.models.densenet.DenseNet(growth_rate=32, block_config=(6, 12, 64, 48)) (timm 1.0.31): 33,337,704",
    paper=PAPER,
    **published(77.85, 93.88, source="Huang et al. 2017, Table 3: DenseNet-264 (k=32), single-crop top-1 error "
                "22.15%, top-5 error 6.12%", recipe=IMAGENET_RECIPE),
))

# Huang et al. Table 2's DenseNet-BC on CIFAR-10: (depth, growth rate) -> (the paper's parameter figure,
# the exact count of the zoo's bias-free build, which rounds to it).
CIFAR_DENSENET_BC = {
    "densenet_bc_100_k12": ((100, 12), "0.8M", 769_162),
    "densenet_bc_250_k24": ((250, 24), "15.3M", 15_324_406),
    "densenet_bc_190_k40": ((190, 40), "25.6M", 25_624_430),
}

# Table 2's C10+ test error (percent) of those networks, trained as its Sec. 4.2 says.
CIFAR_ERROR = {"densenet_bc_100_k12": 4.51, "densenet_bc_250_k24": 3.62, "densenet_bc_190_k40": 3.46}
CIFAR_RECIPE = ("the paper's Sec. 4.2: SGD, batch 64, 300 epochs, lr 0.1 divided by 10 at 50% and 75% of "
                "training, weight decay 1e-4, Nesterov momentum 0.9, translation and mirroring")

for _name, ((_depth, _growth), _paper_figure, _params) in CIFAR_DENSENET_BC.items():
    _config = densenet_bc_cifar(_depth, _growth)
    register(ModelSpec(
        name=_name,
        family="densenet",
        config=_config,
        input_size=(3, 32, 32),
        params=_params,
        params_total=_params + bn_state(_config),
        source=f"Huang et al. Table 2, DenseNet-BC (L={_depth}, k={_growth}): {_paper_figure} parameters",
        paper=PAPER,
        num_classes=10,
        **published(round(100 - CIFAR_ERROR[_name], 2), dataset="CIFAR-10 test, standard augmentation (C10+)",
                    source=f"Huang et al. 2017, Table 2: DenseNet-BC (L={_depth}, k={_growth}), C10+ error "
                           f"{CIFAR_ERROR[_name]}%", recipe=CIFAR_RECIPE),
    ))

# Who builds which: torchvision `densenet121` ... `densenet201`; timm's DenseNet class `densenet264`; Huang et al.'s
# CIFAR networks `densenet_bc_*`; d2l.ai's PyTorch code `densenet_d2l` (`d2l_densenet()`).
_DENSENET_D2L = d2l_densenet()
register(ModelSpec(
    name="densenet_d2l",
    family="densenet",
    config=_DENSENET_D2L,
    input_size=(1, 96, 96),
    num_classes=10,
    params=758_226,
    params_total=758_226 + bn_state(_DENSENET_D2L, 10, 1),
    paper=PAPER,
    **d2l_figures("8.7 (DenseNet), DenseNet() on 1x96x96 Fashion-MNIST, 10 classes", 758_226),
))
