"""VGG (Simonyan and Zisserman, 2014): stacks of 3x3 convolutions between 2x2 max pools.

The layer tables are the paper's configurations A, B, D and E (Table 1) as torchvision writes them:
an int is a 3x3 convolution with that many channels, "M" a 2x2 max pool with stride 2. `VGGConfig.plan` spells
them out as torchvision's layers (`features.N`, `avgpool`, `classifier.N`), which every framework builds.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..plan import (Activation, AdaptivePool, BatchNorm, Conv, Dropout, Flatten, Layer, Linear, Pool,
                    running_statistics, sequential)
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_positive, check_probability,
                        d2l_figures, register, torchvision_weights)

M = "M"
CONFIGS = {
    "A": (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M),
    "B": (64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M),
    "D": (64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M),
    "E": (64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M),
}


@dataclass(frozen=True)
class VGGConfig(FamilyConfig):
    layers: tuple = CONFIGS["D"]
    # torchvision's `_bn` models put BatchNorm between each convolution and its ReLU.
    batch_norm: bool = False
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    # Adaptive average pool to pool_size x pool_size before the dense head (7x7 at 224x224: an identity).
    # keras.applications' and Gluon's heads flatten the map of the size they were built for: pool_size is
    # its side (7 for 224x224, 2 for 64x64), so the pool stays an identity for them.
    pool_size: int = 7
    # Each hidden layer is Linear, ReLU, Dropout; a last Linear gives the classes. timm's mlp_ratio
    # narrows the first (hidden=(4096 * mlp_ratio, 4096)).
    hidden: tuple[int, ...] = (4096, 4096)
    # torchvision and Gluon: 0.5; keras.applications has no dropout and timm's default drop_rate is 0.
    dropout: float = 0.5

    def validate(self) -> None:
        if not any(isinstance(v, int) for v in self.layers):
            raise ValueError(f"layers must hold at least one convolution width, got {self.layers!r}")
        for value in self.layers:
            if value != M:
                check_positive(f"every entry of layers (a width or {M!r})", value, integer=True)
        for value in (*self.hidden, self.pool_size):
            check_positive("hidden widths and pool_size", value, integer=True)
        check_positive("bn_eps", self.bn_eps)
        check_probability("bn_momentum", self.bn_momentum)
        check_probability("dropout", self.dropout)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> tuple[Layer, ...]:
        """The network, layer by layer under torchvision's names: `features` (each convolution, 3x3 with
        padding 1, [its BatchNorm,] its ReLU; the max pools), `avgpool`, the flatten, and `classifier` (dense
        layer, ReLU and dropout per hidden layer, then the dense layer to the classes)."""
        features, channels = [], in_channels
        for value in self.layers:
            if value == M:
                features.append(Pool("", 2, 2))
                continue
            features.append(Conv("", channels, value, 3, padding=1, bias=True))
            if self.batch_norm:
                features.append(BatchNorm("", value, self.bn_eps, self.bn_momentum))
            features.append(Activation(""))
            channels = value
        classifier, width = [], channels * self.pool_size ** 2
        for hidden in self.hidden:
            classifier += [Linear("", width, hidden), Activation(""), Dropout("", self.dropout)]
            width = hidden
        return (*sequential("features", features), AdaptivePool("avgpool", self.pool_size), Flatten(),
                *sequential("classifier", [*classifier, Linear("", width, num_classes)]))

    def min_input_size(self) -> int:
        # Convolutions keep the size (3x3, padding 1); each 2x2 pool with stride 2 halves it, rounding down.
        return 2 ** sum(1 for v in self.layers if v == M)

    def outline(self) -> tuple[Stage, ...]:
        """One stage per max pool, as the paper's Table 1 groups the convolutions."""
        stages, convs = [], 0
        features = [layer for layer in self.plan() if layer.name.startswith("features.")]
        for layer in features:
            if isinstance(layer, Pool):
                stages.append(Stage(f"block{len(stages) + 1} + pool", layer.name, convs, "3x3 conv", 2))
                convs = 0
            elif isinstance(layer, Conv):
                convs += 1
        if convs:
            stages.append(Stage(f"block{len(stages) + 1}", features[-1].name, convs, "3x3 conv"))
        return (*stages, Stage("head", "", len(self.hidden) + 1, "fc"))


PAPER = "Very Deep Convolutional Networks for Large-Scale Image Recognition (Simonyan, Zisserman, 2014)"
SOURCE = "torchvision.models.{name} (VGG{depth}{bn}_Weights.IMAGENET1K_V1: num_params {params:,})"
# ImageNet (acc@1, acc@5) of those weights.
ACCURACY = {
    "vgg11": (69.020, 88.628), "vgg11_bn": (70.370, 89.810), "vgg13": (69.928, 89.246),
    "vgg13_bn": (71.586, 90.374), "vgg16": (71.592, 90.382), "vgg16_bn": (73.360, 91.516),
    "vgg19": (72.376, 90.876), "vgg19_bn": (74.218, 91.842),
}

for _config, _depth, _params, _params_bn in (
    ("A", 11, 132_863_336, 132_868_840),
    ("B", 13, 133_047_848, 133_053_736),
    ("D", 16, 138_357_544, 138_365_992),
    ("E", 19, 143_667_240, 143_678_248),
):
    for _bn, _count in ((False, _params), (True, _params_bn)):
        _name = f"vgg{_depth}{'_bn' if _bn else ''}"
        _vgg = VGGConfig(layers=CONFIGS[_config], batch_norm=_bn)
        register(ModelSpec(
            name=_name,
            family="vgg",
            config=_vgg,
            input_size=(3, 224, 224),
            params=_count,
            params_total=_count + running_statistics(_vgg.plan()),
            source=SOURCE.format(name=_name, depth=_depth, bn="_BN" if _bn else "", params=_count),
            paper=PAPER,
            notes=f"configuration {_config} of the paper's Table 1",
            **torchvision_weights(f"VGG{_depth}{'_BN' if _bn else ''}_Weights.IMAGENET1K_V1", *ACCURACY[_name],
                                  recipe=TORCHVISION_RECIPES + "#alexnet-and-vgg"),
        ))

# Who builds which: torchvision `vgg11` ... `vgg19_bn` (the paper's tables); d2l.ai's PyTorch code `vgg11_d2l`
# (configuration A with every width divided by 4, its arch ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))).
_VGG11_D2L = VGGConfig(layers=(16, M, 32, M, 64, 64, M, 128, 128, M, 128, 128, M))
register(ModelSpec(
    name="vgg11_d2l",
    family="vgg",
    config=_VGG11_D2L,
    input_size=(1, 224, 224),
    num_classes=10,
    params=43_093_322,
    params_total=43_093_322,
    paper=PAPER,
    notes=("configuration A of the paper's Table 1 at a quarter of its widths; d2l flattens the 128x7x7 map of a "
           "224x224 image with no pool before the dense head: the zoo's pool to 7x7 is an identity there"),
    **d2l_figures("8.2 (VGG), VGG(arch=((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))) on 1x224x224 "
                  "Fashion-MNIST, 10 classes", 43_093_322),
))
