"""AlexNet (Krizhevsky, Sutskever, Hinton, 2012) and torchvision's one-tower form of it.

torchvision's `alexnet` follows Krizhevsky's "One weird trick" (2014) one-GPU variant: 64-192-384-256-256
channels, no response normalisation, and an adaptive average pool before the dense head so that any input
from 63x63 up works. The 2012 network (96-256-384-384-256 channels split over two GPUs, local response
normalisation after the first two convolutions, 227x227 input) is the same family with other knobs:
`alexnet_original` below.

The network is a plan (`AlexNetConfig.plan`): its layers in the order they run, each under its torchvision
module name (`features.3`, `avgpool`, `classifier.6`). Its pieces (zoo.plan) are those of every classic sequential
network of the zoo: LeNet, VGG, NiN and GoogLeNet write their plans with them too, and each framework
translates them in one place (its `alexnet` module).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import conv_out, smallest_input
from ..plan import (Activation, AdaptivePool, Conv, Dropout, Flatten, Layer, Linear, LocalResponseNorm, Pool,
                    sequential)
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_positive, check_probability,
                        d2l_figures, published, register, torchvision_weights)


# --- AlexNet ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlexNetConfig(FamilyConfig):
    # One entry per convolution: output channels, kernel, stride, padding, groups, max pool after it.
    channels: tuple[int, ...] = (64, 192, 384, 256, 256)
    kernel_sizes: tuple[int, ...] = (11, 5, 3, 3, 3)
    strides: tuple[int, ...] = (4, 1, 1, 1, 1)
    paddings: tuple[int, ...] = (2, 2, 1, 1, 1)
    # The 2012 paper splits conv2, conv4 and conv5 over two GPUs: groups=2 reproduces its connectivity.
    groups: tuple[int, ...] = (1, 1, 1, 1, 1)
    pool_after: tuple[bool, ...] = (True, True, False, False, True)
    # Overlapping pooling (Sec. 3.4 of the paper): 3x3 windows, stride 2.
    pool_kernel: int = 3
    pool_stride: int = 2
    # Local response normalisation after the ReLU of the first two convolutions (Sec. 3.3), with the
    # paper's constants. `lrn_alpha` is the paper's alpha, which multiplies the plain sum of squares;
    # PyTorch and MXNet divide their alpha by the window size, so their builders pass alpha * size.
    lrn: bool = False
    lrn_size: int = 5
    lrn_alpha: float = 1e-4
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    # Adaptive average pool to pool_size x pool_size before the dense head.
    pool_size: int = 6
    hidden: tuple[int, ...] = (4096, 4096)
    dropout: float = 0.5
    # Where each hidden layer's dropout sits: False, torchvision's Dropout, Linear, ReLU (the dropout sees the
    # layer's input); True, Linear, ReLU, Dropout (it sees the layer's output), as Caffe's bvlc_alexnet, Gluon's
    # model zoo and d2l.ai write it. The same in inference; in training the flattened features are never
    # dropped, and the last hidden layer's output is.
    dropout_after: bool = False

    def validate(self) -> None:
        n = len(self.channels)
        if n < 1:
            raise ValueError("channels must name at least one convolution, got ()")
        for name in ("kernel_sizes", "strides", "paddings", "groups", "pool_after"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{name} must have one entry per convolution ({n}, as channels {self.channels}), "
                    f"got {getattr(self, name)}"
                )
        for value in (*self.channels, *self.kernel_sizes, *self.strides, *self.groups, *self.hidden,
                      self.pool_kernel, self.pool_stride, self.pool_size, self.lrn_size):
            check_positive("AlexNet channels, kernels, strides, groups, widths and pool sizes", value, integer=True)
        if any(p < 0 for p in self.paddings):
            raise ValueError(f"paddings must be >= 0, got {self.paddings}")
        for i, (cin, cout, g) in enumerate(zip((None, *self.channels), self.channels, self.groups)):
            if cout % g or (cin is not None and cin % g):
                raise ValueError(
                    f"convolution {i} with groups={g} needs input and output channels divisible by {g}, "
                    f"got {cin if cin is not None else 'the image channels'} -> {cout}"
                )
        if self.lrn_size % 2 == 0:
            raise ValueError(f"lrn_size must be odd (a window centred on each channel), got {self.lrn_size}")
        for name in ("lrn_alpha", "lrn_beta", "lrn_k"):
            check_positive(name, getattr(self, name))
        check_probability("dropout", self.dropout)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> tuple[Layer, ...]:
        """The network, layer by layer under torchvision's names (what every framework builds): `features`
        (each convolution with its ReLU, the paper's LRN after the first two, a max pool where `pool_after`
        says), `avgpool`, the flatten, and `classifier` (dropout, dense layer and ReLU per hidden layer, or dense
        layer, ReLU and dropout with `dropout_after`, then the dense layer to the classes)."""
        features, channels = [], in_channels
        for i, pooled in enumerate(self.pool_after):
            features += [Conv("", channels, self.channels[i], self.kernel_sizes[i], self.strides[i], self.paddings[i],
                              self.groups[i], bias=True), Activation("")]
            if self.lrn and i < 2:
                features.append(LocalResponseNorm("", self.lrn_size, self.lrn_alpha, self.lrn_beta, self.lrn_k))
            if pooled:
                features.append(Pool("", self.pool_kernel, self.pool_stride))
            channels = self.channels[i]
        classifier, width = [], channels * self.pool_size ** 2
        for hidden in self.hidden:
            dense = [Linear("", width, hidden), Activation("")]
            classifier += [*dense, Dropout("", self.dropout)] if self.dropout_after else [Dropout("", self.dropout), *dense]
            width = hidden
        return (*sequential("features", features), AdaptivePool("avgpool", self.pool_size), Flatten(),
                *sequential("classifier", [*classifier, Linear("", width, num_classes)]))

    def feature_size(self, size: int) -> int:
        for i, pooled in enumerate(self.pool_after):
            size = conv_out(size, self.kernel_sizes[i], self.strides[i], self.paddings[i])
            if size < 1:
                return 0
            if pooled:
                size = conv_out(size, self.pool_kernel, self.pool_stride)
            if size < 1:
                return 0
        return size

    def min_input_size(self) -> int:
        return smallest_input(self.feature_size)

    def outline(self) -> tuple[Stage, ...]:
        """One stage per max pool: the convolutions before it and the pool."""
        stages, convs, stride, first = [], [], 1, 1
        features = [layer for layer in self.plan() if layer.name.startswith("features.")]
        for layer in features:
            if isinstance(layer, Conv):
                convs.append(layer)
                stride *= layer.stride
            elif isinstance(layer, Pool):
                last = first + len(convs) - 1
                name = f"conv{first}" if first == last else f"conv{first}-{last}"
                kernels = "/".join(f"{conv.kernel}x{conv.kernel}" for conv in convs)
                stages.append(Stage(f"{name} + pool", layer.name, len(convs), f"{kernels} conv", stride * layer.stride))
                convs, stride, first = [], 1, last + 1
        if convs:
            stages.append(Stage(f"conv{first}-{first + len(convs) - 1}", features[-1].name, len(convs), "conv", stride))
        return (*stages, Stage("head", "", len(self.hidden) + 1, "fc"))


PAPER = "ImageNet Classification with Deep Convolutional Neural Networks (Krizhevsky, Sutskever, Hinton, 2012)"

register(ModelSpec(
    name="alexnet",
    family="alexnet",
    config=AlexNetConfig(),
    input_size=(3, 224, 224),
    params=61_100_840,
    params_total=61_100_840,
    source="torchvision.models.alexnet (AlexNet_Weights.IMAGENET1K_V1: num_params 61,100,840)",
    paper=PAPER + "; one-tower form from One weird trick for parallelizing CNNs (Krizhevsky, 2014)",
    **torchvision_weights("AlexNet_Weights.IMAGENET1K_V1", 56.522, 79.066,
                          recipe=TORCHVISION_RECIPES + "#alexnet-and-vgg"),
))

register(ModelSpec(
    name="alexnet_original",
    family="alexnet",
    config=AlexNetConfig(
        channels=(96, 256, 384, 384, 256),
        paddings=(0, 2, 1, 1, 1),
        groups=(1, 2, 1, 2, 2),
        lrn=True,
    ),
    input_size=(3, 227, 227),
    params=60_965_224,
    params_total=60_965_224,
    source=(
        "Krizhevsky et al. 2012, Fig. 2 and Sec. 3 (two-GPU connectivity as groups=2 on conv2/4/5, LRN "
        "k=2 n=5 alpha=1e-4 beta=0.75, 227x227 so that conv1 gives 55x55); counted from the architecture, "
        "the figure of BVLC Caffe's bvlc_alexnet; without the grouping it is 62,378,344"
    ),
    paper=PAPER,
    notes="The pool to 6x6 is an identity at 227x227; it lets other sizes through.",
    **published(59.3, 81.8, dataset="ILSVRC-2012 val",
                source="Krizhevsky et al. 2012, Table 2: 1 CNN, top-1 error 40.7%, top-5 error 18.2% "
                       "(averaged over ten 224x224 crops)",
                recipe="the paper's Sec. 5: SGD, batch 128, momentum 0.9, weight decay 5e-4, about 90 epochs, "
                       "lr 0.01 divided by 10 on plateaus; random crops, flips and PCA colour noise"),
))

# Who builds which: torchvision `alexnet` (the defaults); the 2012 paper `alexnet_original`; d2l.ai's PyTorch code
# `alexnet_d2l` (the 2012 widths in one tower, conv1 padded by 1, no LRN, dropout after the hidden ReLUs).
_ALEXNET_D2L = AlexNetConfig(channels=(96, 256, 384, 384, 256), paddings=(1, 2, 1, 1, 1), pool_size=5,
                             dropout_after=True)
register(ModelSpec(
    name="alexnet_d2l",
    family="alexnet",
    config=_ALEXNET_D2L,
    input_size=(1, 224, 224),
    num_classes=10,
    params=46_764_746,
    params_total=46_764_746,
    paper=PAPER,
    notes=("d2l flattens the 256x5x5 map of a 224x224 image with no pool before the dense head; the zoo's pool to "
           "5x5 is an identity there and lets other sizes through"),
    **d2l_figures("8.1 (AlexNet), 1x224x224 Fashion-MNIST, 10 classes", 46_764_746),
))
