"""GoogLeNet / Inception v1 (Szegedy et al., 2014) in torchvision's form.

torchvision's version adds BatchNorm to every convolution (BasicConv2d: conv without bias, BatchNorm with
eps 0.001, ReLU), pools with ceil_mode=True as Caffe did, and uses a 3x3 convolution where the paper's
"5x5" branch has a 5x5 one (pytorch/vision#906); its key names and its 6,624,904 parameters are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import conv_out, smallest_input
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_choice, check_positive,
                        check_probability, register, torchvision_weights)

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
class GoogLeNetConfig(FamilyConfig):
    stem: str = "imagenet"
    stem_channels: tuple[int, int, int] = (64, 64, 192)  # conv1, conv2 (1x1), conv3 (3x3)
    inception: tuple = INCEPTION
    # Max pools between the stages: (kernel, stride) of maxpool3 and maxpool4, ceil_mode as torchvision.
    stage_pools: tuple[tuple[int, int], ...] = ((3, 2), (2, 2))
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

    def pools(self) -> list[tuple[str, int, int]]:
        """(name, kernel, stride) of the ceil-mode max pools, in order."""
        found = [("maxpool1", 3, 2), ("maxpool2", 3, 2)] if STEMS[self.stem]["pools"] else []
        return found + [(f"maxpool{3 + i}", k, s) for i, (k, s) in enumerate(self.stage_pools)]

    def feature_size(self, size: int) -> int:
        stem = STEMS[self.stem]
        size = conv_out(size, stem["kernel"], stem["stride"], stem["padding"])
        for _, kernel, stride in self.pools():
            if size < 1:
                return 0
            size = conv_out(size, kernel, stride, ceil_mode=True)
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
    params_total=6_639_464,  # + BatchNorm running mean and var of 7,280 channels
    source="torchvision.models.googlenet (GoogLeNet_Weights.IMAGENET1K_V1: num_params 6,624,904, aux_logits off)",
    paper="Going Deeper with Convolutions (Szegedy et al., 2014)",
    notes="aux_logits=True adds the two auxiliary classifiers (13,004,888 parameters)",
    # Weights ported from the paper's; torchvision evaluates them with transform_input=True.
    **torchvision_weights("GoogLeNet_Weights.IMAGENET1K_V1", 69.778, 89.530,
                          recipe=TORCHVISION_RECIPES + "#googlenet"),
))
