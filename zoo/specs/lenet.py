"""LeNet-5 (LeCun et al., 1998): two convolution + subsampling stages, then three dense layers.

`LeNetConfig.plan` lists the layers as a `features` and a `classifier` Sequential (the pieces of
zoo.plan), which every framework builds.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import conv_out
from ..plan import Activation, AvgPool, Conv, Dropout, Flatten, Layer, Linear, Pool, sequential
from ..registry import (FamilyConfig, ModelSpec, Stage, check_choice, check_positive, check_probability, d2l_figures,
                        published, register)


@dataclass(frozen=True)
class LeNetConfig(FamilyConfig):
    channels: tuple[int, int] = (6, 16)
    hidden: tuple[int, ...] = (120, 84)
    kernel_size: int = 5
    # padding=2 keeps 28x28 digits at full size through the first convolution (d2l's LeNet on MNIST).
    padding: int = 0
    # The dense head is sized for one input size, so the network takes only that size.
    image_size: int = 32
    activation: str = "tanh"
    pooling: str = "avg"
    dropout: float = 0.0

    def validate(self) -> None:
        for value in (*self.channels, *self.hidden, self.kernel_size, self.image_size):
            check_positive("LeNet widths, kernel_size and image_size", value, integer=True)
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        check_choice("activation", self.activation, ("tanh", "sigmoid", "relu"))
        check_choice("pooling", self.pooling, ("avg", "max"))
        check_probability("dropout", self.dropout)
        if self.feature_size() < 1:
            raise ValueError(
                f"image_size {self.image_size} is too small for LeNet with kernel {self.kernel_size} "
                f"and padding {self.padding}: the second stage's feature map would be empty"
            )

    def feature_size(self) -> int:
        """Height (= width) of the last feature map, which the first dense layer flattens."""
        size = conv_out(self.image_size, self.kernel_size, padding=self.padding) // 2
        return conv_out(size, self.kernel_size) // 2

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> tuple[Layer, ...]:
        """The network, layer by layer: `features` (convolution, activation, 2x2 pool, twice), the flatten, and
        `classifier` (dense layer, activation [and dropout] per hidden layer, then the dense layer to the classes)."""
        pool = AvgPool if self.pooling == "avg" else Pool
        c1, c2 = self.channels
        features = (Conv("", in_channels, c1, self.kernel_size, padding=self.padding, bias=True),
                    Activation("", self.activation), pool("", 2, 2),
                    Conv("", c1, c2, self.kernel_size, bias=True), Activation("", self.activation), pool("", 2, 2))
        classifier, width = [], c2 * self.feature_size() ** 2
        for hidden in self.hidden:
            classifier += [Linear("", width, hidden), Activation("", self.activation)]
            if self.dropout:
                classifier.append(Dropout("", self.dropout))
            width = hidden
        return (*sequential("features", features), Flatten(),
                *sequential("classifier", [*classifier, Linear("", width, num_classes)]))

    def fixed_input_size(self) -> int:
        return self.image_size

    def outline(self) -> tuple[Stage, ...]:
        # The paper's layer names: C convolutions, S subsampling, F fully connected.
        k, pool = self.kernel_size, f"2x2 {self.pooling} pool"
        s2, s4 = (layer.name for layer in self.plan() if isinstance(layer, Pool))
        return (
            Stage("C1-S2", s2, block=f"{k}x{k} conv, {pool}", stride=2),
            Stage("C3-S4", s4, block=f"{k}x{k} conv, {pool}", stride=2),
            Stage("head", "", len(self.hidden) + 1, "fc"),
        )


PAPER = "Gradient-Based Learning Applied to Document Recognition (LeCun, Bottou, Bengio, Haffner, 1998)"

register(ModelSpec(
    name="lenet5",
    family="lenet",
    config=LeNetConfig(),
    input_size=(1, 32, 32),
    num_classes=10,
    params=61_706,
    params_total=61_706,
    source="LeCun et al. 1998, LeNet-5 with its C5 layer as a dense 400->120 layer (d2l.ai 7.6)",
    paper=PAPER,
    # A digit recogniser: its figure is the paper's MNIST test error, not an ImageNet accuracy.
    **published(99.05, dataset="MNIST test (10,000 digits)",
                source="LeCun et al. 1998, Sec. III-C: LeNet-5 test error 0.95% without distortions (0.8% with)",
                recipe="the paper's: 20 passes of stochastic diagonal Levenberg-Marquardt over the 60,000 "
                       "training digits padded to 32x32, with an RBF output layer (the zoo's is a dense layer)"),
))

# Who builds which: the 1998 paper `lenet5` (tanh, 32x32); d2l.ai's PyTorch code `lenet_d2l` (sigmoid, 28x28 digits
# padded by 2 in the first convolution), which is lenet5 with activation="sigmoid", image_size=28, padding=2.
register(ModelSpec(
    name="lenet_d2l",
    family="lenet",
    config=LeNetConfig(image_size=28, padding=2, activation="sigmoid"),
    input_size=(1, 28, 28),
    num_classes=10,
    params=61_706,
    params_total=61_706,
    paper=PAPER,
    **d2l_figures("7.6 (LeNet), 1x28x28 Fashion-MNIST, 10 classes", 61_706),
))
