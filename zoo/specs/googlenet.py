"""GoogLeNet / Inception v1 (Szegedy et al., 2014) in torchvision's form.

torchvision's version adds BatchNorm to every convolution (BasicConv2d: conv without bias, BatchNorm with
eps 0.001, ReLU), pools with ceil_mode=True as Caffe did, and uses a 3x3 convolution where the paper's
"5x5" branch has a 5x5 one (pytorch/vision#906); its key names and its 6,624,904 parameters are kept.
`GoogLeNetConfig.plan` lists the network under those names (`inception4a.branch2.1`: BasicConv2d, inception
modules and auxiliary heads below, with the pieces of zoo.plan), which every framework builds.

Who builds which: torchvision `googlenet` (the defaults); d2l.ai's PyTorch code `googlenet_d2l`, the paper's
layers without BatchNorm (batch_norm=False, conv_bias=True, branch3_kernel=5, max pools 3x3/2 padded by 1
without ceil_mode, no dropout).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

from ..arith import conv_out, smallest_input
from ..plan import (Activation, AdaptivePool, BatchNorm, CeilPool, Conv, Dropout, Flatten, GlobalPool, Identity,
                    Layer, Linear, Pool, running_statistics)
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_choice, check_positive,
                        check_probability, d2l_figures, register, torchvision_weights)

# Inception modules per stage (3a-3b, 4a-4e, 5a-5b) from the paper's Table 1:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
INCEPTION = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
)

# conv1's (kernel, stride, padding) and whether maxpool1/maxpool2 reduce the stem's output. "cifar" keeps
# 32x32 images at full size through the stem, so the inception stages see 32, 16 and 8 pixels.
STEMS = {
    "imagenet": {"kernel": 7, "stride": 2, "padding": 3, "pools": True},
    "cifar": {"kernel": 3, "stride": 1, "padding": 1, "pools": False},
}

# ImageNet statistics of torchvision's preprocessing, undone by `transform_input`.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BasicConv:
    """torchvision's BasicConv2d `name`: the convolution `conv` (no bias), its BatchNorm `bn`, a ReLU. Without
    BatchNorm (batch_norm=False) `bn` is an Identity, so that the module tree keeps torchvision's shape."""

    name: str
    conv: Conv
    bn: BatchNorm | Identity

    @property
    def parts(self) -> tuple[Layer, ...]:
        return self.conv, self.bn


@dataclass(frozen=True)
class InceptionModule:
    """An inception module: its `branches` (`branch1` a BasicConv2d, `branch2` ... Sequentials of them, and of
    the max pool in `branch4`) see the same input, and their outputs are concatenated."""

    name: str
    branches: tuple[tuple[BasicConv | Pool, ...], ...]

    @property
    def out_channels(self) -> int:
        return sum(branch[-1].conv.out_channels for branch in self.branches)

    @property
    def parts(self) -> tuple[BasicConv | Pool, ...]:
        return tuple(chain.from_iterable(self.branches))


@dataclass(frozen=True)
class AuxHead:
    """torchvision's InceptionAux `name`, a classifier on the output of the module `after`, run in training
    only: `pool`, `conv`, flatten, `fc1`, ReLU, `dropout`, `fc2`. torchvision pools, flattens and applies the
    ReLU as functions, so that only the other four are modules."""

    name: str
    after: str
    pool: AdaptivePool
    conv: BasicConv
    fc1: Linear
    dropout: Dropout
    fc2: Linear

    @property
    def parts(self) -> tuple[Layer | BasicConv, ...]:
        return self.pool, self.conv, self.fc1, self.dropout, self.fc2

    def sequence(self) -> tuple[Layer | BasicConv, ...]:
        """The layers in the order they run."""
        return (self.pool, self.conv, Flatten(f"{self.name}.flatten"), self.fc1, Activation(f"{self.name}.relu"),
                self.dropout, self.fc2)


@dataclass(frozen=True)
class GoogLeNetPlan:
    """The whole network: `transform`, the (scale, offset) per channel of torchvision's transform_input (or
    None); `layers` in the order they run (conv1 ... inception5b, the max pools between); the auxiliary heads
    `aux`; the `head` (avgpool, flatten, dropout, fc). Iterating gives all of them in torchvision's module order."""

    transform: tuple[tuple[float, ...], tuple[float, ...]] | None
    layers: tuple[BasicConv | InceptionModule | Pool | Identity, ...]
    aux: tuple[AuxHead, ...]
    head: tuple[Layer, ...]

    def __iter__(self):
        return iter((*self.layers, *self.aux, *self.head))


@dataclass(frozen=True)
class GoogLeNetConfig(FamilyConfig):
    stem: str = "imagenet"
    stem_channels: tuple[int, int, int] = (64, 64, 192)  # conv1, conv2 (1x1), conv3 (3x3)
    inception: tuple = INCEPTION
    # Max pools between the stages: (kernel, stride) of maxpool3 and maxpool4, ceil_mode as torchvision.
    stage_pools: tuple[tuple[int, int], ...] = ((3, 2), (2, 2))
    # How the max pools between stages (maxpool1 ... maxpool4) round: torchvision's (Caffe's) ceil_mode=True and
    # no padding, or d2l's floor with padding 1 (ceil_mode=False, pool_padding=1). The inception modules' 3x3/1
    # pools, padded by 1, follow ceil_mode too (with stride 1 it changes nothing).
    ceil_mode: bool = True
    pool_padding: int = 0
    # BatchNorm after every convolution (torchvision's BasicConv2d); the paper and d2l have none, and a bias on
    # every convolution (conv_bias=True).
    batch_norm: bool = True
    conv_bias: bool = False
    # Kernel of each inception module's third branch: torchvision's 3x3 (pytorch/vision#906), the paper's and
    # d2l's 5x5 (padded by 2, as every branch keeps the map's size).
    branch3_kernel: int = 3
    dropout: float = 0.2
    # Auxiliary classifiers after inception4a and inception4d, used in training only.
    aux_logits: bool = False
    aux_pool: int = 4
    aux_channels: int = 128
    aux_hidden: int = 1024
    dropout_aux: float = 0.7
    # torchvision's re-normalisation of ImageNet-normalised RGB to the [-1, 1] scale of the ported weights.
    transform_input: bool = False
    bn_eps: float = 1e-3
    bn_momentum: float = 0.1

    def validate(self) -> None:
        check_choice("stem", self.stem, tuple(STEMS))
        if len(self.stem_channels) != 3:
            raise ValueError(f"stem_channels must be (conv1, conv2, conv3) widths, got {self.stem_channels!r}")
        for value in (*self.stem_channels, self.aux_pool, self.aux_channels, self.aux_hidden):
            check_positive("stem_channels and aux widths", value, integer=True)
        if len(self.inception) != 3 or not all(self.inception):
            raise ValueError(
                f"inception must hold three non-empty stages (3, 4, 5) of modules, got {len(self.inception)} stages"
            )
        for stage in self.inception:
            for module in (stage if isinstance(stage, tuple) else (stage,)):
                if not isinstance(module, tuple) or len(module) != 6:
                    raise ValueError(
                        "each inception module is (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), "
                        f"got {module!r}"
                    )
                for value in module:
                    check_positive("inception widths", value, integer=True)
        if self.aux_logits and len(self.inception[1]) < 4:
            raise ValueError(
                f"aux_logits needs at least 4 modules in stage 4 (aux2 follows inception4d), got {len(self.inception[1])}"
            )
        if len(self.stage_pools) != 2:
            raise ValueError(f"stage_pools must be ((kernel, stride) of maxpool3, of maxpool4), got {self.stage_pools!r}")
        for pool in self.stage_pools:
            if len(pool) != 2:
                raise ValueError(f"each of stage_pools is (kernel, stride), got {pool!r}")
            kernel, stride = pool
            check_positive("stage_pools kernel and stride", kernel, integer=True)
            check_positive("stage_pools kernel and stride", stride, integer=True)
            if kernel < stride:
                # ceil_mode windows then could start past the input (PyTorch drops those, MXNet does not).
                raise ValueError(f"stage_pools kernels must be >= their strides, got {self.stage_pools!r}")
        if self.pool_padding < 0:
            raise ValueError(f"pool_padding must be >= 0, got {self.pool_padding}")
        if self.pool_padding and self.ceil_mode:
            # Padded ceil-mode windows are not built alike (MXNet's "full" pooling convention has no padding).
            raise ValueError(f"pool_padding={self.pool_padding} pads floor-mode pools (d2l's); it needs ceil_mode=False")
        for name, kernel, _, _ in self.pools():
            if 2 * self.pool_padding > kernel:
                raise ValueError(f"pool_padding must be at most half of every pool's kernel (PyTorch's rule), got "
                                 f"{self.pool_padding} for {name}'s {kernel}x{kernel}")
        check_positive("branch3_kernel", self.branch3_kernel, integer=True)
        if self.branch3_kernel % 2 == 0:
            raise ValueError(f"branch3_kernel must be odd (padded to keep the map's size), got {self.branch3_kernel}")
        for name in ("dropout", "dropout_aux", "bn_momentum"):
            check_probability(name, getattr(self, name))
        check_positive("bn_eps", self.bn_eps)

    def input_transform(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (scale, offset) of `transform_input`: x * std / 0.5 + (mean - 0.5) / 0.5."""
        return (tuple(std / 0.5 for std in IMAGENET_STD), tuple((mean - 0.5) / 0.5 for mean in IMAGENET_MEAN))

    def module_names(self) -> list[list[str]]:
        """inception3a, inception3b, inception4a, ... per stage."""
        return [[f"inception{3 + s}{chr(ord('a') + i)}" for i in range(len(stage))]
                for s, stage in enumerate(self.inception)]

    def pools(self) -> list[tuple[str, int, int, int]]:
        """(name, kernel, stride, padding) of the max pools between stages, in order."""
        found = [("maxpool1", 3, 2), ("maxpool2", 3, 2)] if STEMS[self.stem]["pools"] else []
        found += [(f"maxpool{3 + i}", k, s) for i, (k, s) in enumerate(self.stage_pools)]
        return [(*pool, self.pool_padding) for pool in found]

    def pool(self, name: str, kernel: int, stride: int, padding: int = 0) -> Pool:
        """A max pool, rounding up (CeilPool) or down as `ceil_mode` says."""
        return (CeilPool if self.ceil_mode else Pool)(name, kernel, stride, padding)

    def basic_conv(self, name: str, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
                   padding: int = 0) -> BasicConv:
        norm = (BatchNorm(f"{name}.bn", out_channels, self.bn_eps, self.bn_momentum) if self.batch_norm
                else Identity(f"{name}.bn"))
        return BasicConv(name, Conv(f"{name}.conv", in_channels, out_channels, kernel, stride, padding,
                                    bias=self.conv_bias), norm)

    def inception_module(self, name: str, in_channels: int, widths: tuple[int, ...]) -> InceptionModule:
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = widths
        conv = self.basic_conv
        return InceptionModule(name, (
            (conv(f"{name}.branch1", in_channels, ch1x1, 1),),
            (conv(f"{name}.branch2.0", in_channels, ch3x3red, 1), conv(f"{name}.branch2.1", ch3x3red, ch3x3, 3, 1, 1)),
            # The paper's 5x5 convolution is a 3x3 one in torchvision (pytorch/vision#906); kept by default so
            # that torchvision's checkpoints load and the parameter count is torchvision's.
            (conv(f"{name}.branch3.0", in_channels, ch5x5red, 1),
             conv(f"{name}.branch3.1", ch5x5red, ch5x5, self.branch3_kernel, 1, self.branch3_kernel // 2)),
            (self.pool(f"{name}.branch4.0", 3, 1, 1), conv(f"{name}.branch4.1", in_channels, pool_proj, 1)),
        ))

    def aux_head(self, name: str, after: InceptionModule, num_classes: int) -> AuxHead:
        return AuxHead(name, after.name, AdaptivePool(f"{name}.pool", self.aux_pool),
                       self.basic_conv(f"{name}.conv", after.out_channels, self.aux_channels, 1),
                       Linear(f"{name}.fc1", self.aux_channels * self.aux_pool ** 2, self.aux_hidden),
                       Dropout(f"{name}.dropout", self.dropout_aux), Linear(f"{name}.fc2", self.aux_hidden, num_classes))

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> GoogLeNetPlan:
        """The network, module by module under torchvision's names (what every framework builds). The CIFAR
        stem's missing pools are Identity layers, as torchvision's tree would have them."""
        if self.transform_input and in_channels != 3:
            raise ValueError(f"transform_input re-normalises RGB images and needs in_channels=3, got {in_channels}")
        stem, pools = STEMS[self.stem], {name: pool for name, *pool in self.pools()}

        def pool(name: str) -> Pool | Identity:
            return self.pool(name, *pools[name]) if name in pools else Identity(name)

        c1, c2, c3 = self.stem_channels
        layers = [self.basic_conv("conv1", in_channels, c1, stem["kernel"], stem["stride"], stem["padding"]),
                  pool("maxpool1"), self.basic_conv("conv2", c1, c2, 1), self.basic_conv("conv3", c2, c3, 3, 1, 1),
                  pool("maxpool2")]
        channels, modules = c3, []
        for s, (names, stage) in enumerate(zip(self.module_names(), self.inception)):
            for name, widths in zip(names, stage):
                modules.append(self.inception_module(name, channels, widths))
                channels = modules[-1].out_channels
                layers.append(modules[-1])
            if s < 2:
                layers.append(pool(f"maxpool{3 + s}"))
        stage4 = modules[len(self.inception[0]):]
        # After inception4a and inception4d (the paper's Fig. 3).
        aux = (self.aux_head("aux1", stage4[0], num_classes), self.aux_head("aux2", stage4[3], num_classes)
               ) if self.aux_logits else ()
        head = (GlobalPool("avgpool"), Flatten(), Dropout("dropout", self.dropout), Linear("fc", channels, num_classes))
        return GoogLeNetPlan(self.input_transform() if self.transform_input else None, tuple(layers), aux, head)

    def feature_size(self, size: int) -> int:
        stem = STEMS[self.stem]
        size = conv_out(size, stem["kernel"], stem["stride"], stem["padding"])
        for _, kernel, stride, padding in self.pools():
            if size < 1:
                return 0
            size = conv_out(size, kernel, stride, padding, ceil_mode=self.ceil_mode)
        return max(size, 0)

    def min_input_size(self) -> int:
        return smallest_input(self.feature_size)

    def outline(self) -> tuple[Stage, ...]:
        # Each stage opens with the max pool that halves the map before it, so it reports the
        # resolution its inception modules run at.
        stem = STEMS[self.stem]
        k, s = stem["kernel"], stem["stride"]
        label = f"{k}x{k}/{s} conv, 1x1 + 3x3 conv" + (", 2 max pools" if stem["pools"] else "")
        names = self.module_names()
        return (
            Stage("stem", "maxpool2", block=label, stride=s * (4 if stem["pools"] else 1)),
            *(Stage(f"inception{3 + i}", modules[-1], len(modules), "Inception",
                    1 if i == 0 else self.stage_pools[i - 1][1])
              for i, modules in enumerate(names)),
            Stage("head", "", block="global avg pool, fc"),
        )


register(ModelSpec(
    name="googlenet",
    family="googlenet",
    config=GoogLeNetConfig(),
    input_size=(3, 224, 224),
    params=6_624_904,
    params_total=6_624_904 + running_statistics(GoogLeNetConfig().plan()),
    source="torchvision.models.googlenet (GoogLeNet_Weights.IMAGENET1K_V1: num_params 6,624,904, aux_logits off)",
    paper="Going Deeper with Convolutions (Szegedy et al., 2014)",
    notes="aux_logits=True adds the two auxiliary classifiers (13,004,888 parameters)",
    # Weights ported from the paper's; torchvision evaluates them with transform_input=True.
    **torchvision_weights("GoogLeNet_Weights.IMAGENET1K_V1", 69.778, 89.530,
                          recipe=TORCHVISION_RECIPES + "#googlenet"),
))

_GOOGLENET_D2L = GoogLeNetConfig(stage_pools=((3, 2), (3, 2)), ceil_mode=False, pool_padding=1, batch_norm=False,
                                 conv_bias=True, branch3_kernel=5, dropout=0.0)
register(ModelSpec(
    name="googlenet_d2l",
    family="googlenet",
    config=_GOOGLENET_D2L,
    input_size=(1, 96, 96),
    num_classes=10,
    params=5_977_530,
    params_total=5_977_530,
    paper="Going Deeper with Convolutions (Szegedy et al., 2014)",
    notes="no BatchNorm, no auxiliary classifiers, no dropout and no LRN, as d2l writes it",
    **d2l_figures("8.4 (GoogLeNet), GoogleNet() on 1x96x96 Fashion-MNIST, 10 classes", 5_977_530),
))
