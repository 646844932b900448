"""EfficientNet B0-B7 (Tan & Le, 2019): MobileNetV3's inverted residual with SiLU and SE, scaled in
width, depth and resolution by one compound coefficient.

`EfficientNetConfig.network_plan` is the whole network in the pieces of zoo/specs/mobilenet.py
(`MobileNetPlan`), so the four frameworks build EfficientNet with the code that builds MobileNetV2/V3.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import round_filters, round_repeats
from ..plan import Linear
from ..registry import (TORCHVISION_RECIPES, FamilyConfig, ModelSpec, Stage, check_positive, check_probability,
                        register, torchvision_weights)
from .mobilenet import (DropoutPlan, InvertedResidualPlan, MobileNetPlan, Stack, check_kernel, check_norm,
                        check_padding, check_stride, conv_norm_act, inverted_residual, min_size_for)

# Table 1 of the paper (B0): expansion, kernel, first stride, input channels, output channels, repeats.
B0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


@dataclass(frozen=True)
class EfficientNetConfig(FamilyConfig):
    stages: tuple[tuple[float, int, int, int, int, int], ...] = B0_STAGES
    width_mult: float = 1.0
    depth_mult: float = 1.0
    # The last conv widens the last stage's output this many times (1280 = 4 * 320 in B0).
    head_expansion: int = 4
    # SE squeezes to a quarter of the block's *input* channels (not of the expanded ones, as in V3).
    se_reduction: int = 4
    dropout: float = 0.2
    # Largest drop probability of a residual branch; block i of n gets p * i / n (torchvision).
    stochastic_depth_prob: float = 0.2
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    # "symmetric" as torchvision and timm's efficientnet_*; "same" (TensorFlow's, from each input's size)
    # as keras.applications.EfficientNet* and timm's tf_efficientnet_* ports (see zoo/specs/mobilenet.py).
    padding: str = "symmetric"

    def validate(self) -> None:
        check_positive("width_mult", self.width_mult)
        check_padding(self.padding)
        check_positive("depth_mult", self.depth_mult)
        check_positive("head_expansion", self.head_expansion, integer=True)
        check_positive("se_reduction", self.se_reduction, integer=True)
        if not self.stages:
            raise ValueError("stages must list at least one row, got none")
        for row in self.stages:
            if len(row) != 6:
                raise ValueError(f"each stage row is (expansion, kernel, stride, in, out, repeats), got {row!r}")
            expansion, kernel, stride, cin, cout, repeats = row
            check_positive("expansion", expansion)
            check_kernel(kernel)
            check_stride(stride)
            for value in (cin, cout, repeats):
                check_positive("stage channels and repeats", value, integer=True)
        check_probability("dropout", self.dropout)
        check_probability("stochastic_depth_prob", self.stochastic_depth_prob)
        check_norm(self.bn_eps, self.bn_momentum)

    def network_plan(self, num_classes: int = 1000, in_channels: int = 3) -> MobileNetPlan:
        """torchvision's EfficientNet: the SiLU stem, one Sequential `features.<stage>` per row of Table 1
        holding its blocks `features.<stage>.<block>`, the 1x1 conv widening the last stage head_expansion
        times, and the classifier: dropout, dense (initialised uniformly)."""
        repeats = [round_repeats(row[5], self.depth_mult) for row in self.stages]
        total, index = sum(repeats), 0
        stem = round_filters(self.stages[0][3], self.width_mult)
        features = [conv_norm_act("features.0", in_channels, stem, 3, 2, "silu", padding=self.padding)]
        for number, ((expansion, kernel, stride, cin, out, _), n) in enumerate(zip(self.stages, repeats), start=1):
            channels, out, blocks = round_filters(cin, self.width_mult), round_filters(out, self.width_mult), []
            for i in range(n):
                blocks.append(inverted_residual(
                    f"features.{number}.{i}", channels, round_filters(channels, expansion), out, kernel,
                    stride if i == 0 else 1, "silu", padding=self.padding,
                    # SE squeezes the block's input width, not the expanded one (as V3 does)
                    se=(max(1, channels // self.se_reduction), "silu", "sigmoid"),
                    stochastic_depth=self.stochastic_depth_prob * index / total))
                channels, index = out, index + 1
            features.append(Stack(f"features.{number}", tuple(blocks)))
        head = self.head_expansion * channels
        features.append(conv_norm_act(f"features.{len(features)}", channels, head, 1, activation="silu"))
        return MobileNetPlan(tuple(features), (DropoutPlan("classifier.0", self.dropout),
                                               Linear("classifier.1", head, num_classes)),
                             self.bn_eps, self.bn_momentum, linear_init="uniform")

    def plan(self) -> list[list[InvertedResidualPlan]]:
        """The blocks, stage by stage (torchvision nests each stage in its own Sequential); the whole network
        is `network_plan`."""
        return [list(stage.layers) for stage in self.network_plan().blocks()]

    def min_input_size(self) -> int:
        return min_size_for(self.network_plan().windows())

    def outline(self) -> tuple[Stage, ...]:
        # The paper's Table 1 rows: features.0 the stem, features.1... one Sequential per row, then
        # the 1x1 conv to the head's width.
        return (
            Stage("stem", "features.0", block="3x3/2 conv", stride=2),
            *(Stage(f"stage{i}", f"features.{i}", len(blocks), f"MBConv{row[0]:g} {row[1]}x{row[1]}", row[2])
              for i, (row, blocks) in enumerate(zip(self.stages, self.plan()), start=1)),
            Stage("head", "", block="1x1 conv, global avg pool, fc"),
        )


PAPER = "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks (Tan & Le, 2019)"

# name: (width, depth, dropout, paper resolution, trainable params, total params)
# Widths, depths and dropouts are torchvision's efficientnet_bN builders; resolutions Table 2 of the paper.
VARIANTS = {
    "efficientnet_b0": (1.0, 1.0, 0.2, 224, 5_288_548, 5_330_564),
    "efficientnet_b1": (1.0, 1.1, 0.2, 240, 7_794_184, 7_856_232),
    "efficientnet_b2": (1.1, 1.2, 0.3, 260, 9_109_994, 9_177_562),
    "efficientnet_b3": (1.2, 1.4, 0.3, 300, 12_233_232, 12_320_528),
    "efficientnet_b4": (1.4, 1.8, 0.4, 380, 19_341_616, 19_466_816),
    "efficientnet_b5": (1.6, 2.2, 0.4, 456, 30_389_784, 30_562_520),
    "efficientnet_b6": (1.8, 2.6, 0.5, 528, 43_040_704, 43_265_136),
    "efficientnet_b7": (2.0, 3.1, 0.5, 600, 66_347_960, 66_658_680),
}
# B5-B7 in torchvision carry weights ported from TensorFlow and so TensorFlow's BatchNorm settings.
TF_NORM = {"efficientnet_b5", "efficientnet_b6", "efficientnet_b7"}
# ImageNet (acc@1, acc@5) of torchvision's IMAGENET1K_V1 weights, ported from the paper's TensorFlow
# checkpoints and evaluated at each model's own resolution.
ACCURACY = {
    "efficientnet_b0": (77.692, 93.532), "efficientnet_b1": (78.642, 94.186),
    "efficientnet_b2": (80.608, 95.310), "efficientnet_b3": (82.008, 96.054),
    "efficientnet_b4": (83.384, 96.594), "efficientnet_b5": (83.444, 96.628),
    "efficientnet_b6": (84.008, 96.916), "efficientnet_b7": (84.122, 96.908),
}

for _name, (_width, _depth, _dropout, _size, _params, _total) in VARIANTS.items():
    _norm = {"bn_eps": 1e-3, "bn_momentum": 0.01} if _name in TF_NORM else {}
    register(ModelSpec(
        name=_name,
        family="efficientnet",
        config=EfficientNetConfig(width_mult=_width, depth_mult=_depth, dropout=_dropout, **_norm),
        input_size=(3, _size, _size),
        params=_params,
        params_total=_total,
        source=f"torchvision.models EfficientNet_{_name[-2:].upper()}_Weights num_params, "
               "https://pytorch.org/vision/stable/models.html"
               + ("; keras.applications.EfficientNetB0 has the same 5,288,548 trainable parameters "
                  "(its 5,330,571 total adds 7 values of its input Normalization layer)" if _name == "efficientnet_b0" else ""),
        paper=PAPER,
        **torchvision_weights(f"EfficientNet_{_name[-2:].upper()}_Weights.IMAGENET1K_V1", *ACCURACY[_name],
                              recipe=TORCHVISION_RECIPES + "#efficientnet-v1"),
    ))
