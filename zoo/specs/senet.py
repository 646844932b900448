"""SE-ResNet (Hu et al., Squeeze-and-Excitation Networks): torchvision's ResNet with an SE module in
every residual block.

The SE module sits on the residual branch after its last BatchNorm, before the addition with the
shortcut: global average pool, fc1 (C -> C // reduction, with bias), ReLU, fc2 (back to C, with bias),
sigmoid, and the branch is scaled channel-wise by the result. The fcs are 1x1 convolutions, as in
torchvision's own `ops.SqueezeExcitation` and Cadene's `pretrainedmodels` SE-ResNets, so the
squeezed vector stays an N x C x 1 x 1 map that broadcasts against the branch with no reshapes.

Everything else is the ResNet family's: an `SEResNetConfig` is a `ResNetConfig` plus `se_reduction`
and `se_divisor`, and every framework builds it through its ResNet builder. Of the ResNet knobs,
`conv_bias`, `stride_in_1x1` and `input_norm` apply as they are; `preactivation` is refused (no
reference builds a pre-activation SE-ResNet of this layout).

Who builds which: the defaults (squeezed channels C // 16) are Cadene's `pretrainedmodels`
SE-ResNets; timm's `seresnet*` round the squeezed channels to a multiple of 8 (`se_divisor=8`), which
changes only the 64-channel stage of seresnet18/34 (8 squeezed channels where C // 16 gives 4).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..registry import ModelSpec, Stage, check_positive, published, register
from .resnet import DEPTHS, TORCHVISION_PARAMS, ResidualBlock, ResNetConfig, bn_state


@dataclass(frozen=True)
class SEResNetConfig(ResNetConfig):
    se_reduction: int = 16
    # 1: C // se_reduction squeezed channels (Cadene's). Otherwise C / se_reduction rounded to the
    # nearest multiple of se_divisor, and at least se_divisor (timm's make_divisible, with 8).
    se_divisor: int = 1

    def validate(self) -> None:
        super().validate()
        check_positive("se_reduction", self.se_reduction, integer=True)
        check_positive("se_divisor", self.se_divisor, integer=True)
        if self.preactivation:
            raise ValueError("preactivation=True is a ResNet v2 knob; the zoo's SE-ResNet is built on v1 blocks "
                             "only (SE-ResNets need preactivation=False)")
        narrowest = min(self.widths) * self.expansion
        if self.se_channels(min(self.widths))[1] < 1:
            raise ValueError(
                f"se_reduction {self.se_reduction} squeezes a {narrowest}-channel block to no channels; "
                f"it must be at most {narrowest}"
            )

    def se_channels(self, planes: int) -> tuple[int, int]:
        """(channels the SE module scales, channels of its squeezed vector) in a stage of `planes`."""
        channels = planes * self.expansion
        return channels, self.squeezed_channels(channels)

    def squeezed_channels(self, channels: int) -> int:
        """Channels of the squeezed vector of an SE module on a `channels`-channel branch."""
        if self.se_divisor == 1:
            return channels // self.se_reduction
        divisor = self.se_divisor
        return max(divisor, int(channels / self.se_reduction + divisor / 2) // divisor * divisor)

    def block_plan(self, name: str, in_channels: int, planes: int, stride: int) -> ResidualBlock:
        block = super().block_plan(name, in_channels, planes, stride)
        return dataclasses.replace(block, se=self.squeezed_channels(block.out_channels))

    def outline(self) -> tuple[Stage, ...]:
        return tuple(dataclasses.replace(s, block=f"SE-{s.block}") if s.name.startswith("layer") else s
                     for s in super().outline())


def se_params(config: SEResNetConfig) -> int:
    """Parameters the SE modules add to the ResNet: per block 2 * C * C/r weights and C/r + C biases."""
    return sum(2 * block.out_channels * block.se + block.se + block.out_channels for block in config.plan().blocks())


PAPER = "Squeeze-and-Excitation Networks (Hu, Shen, Albanie, Sun, Wu, 2017)"
# The SE paper's Table 2 (single 224 crop, its re-implementation column) for 50/101/152, trained as its
# Sec. 6 says: SGD, momentum 0.9, batch 1024, 100 epochs, lr 0.6 divided by 10 every 30 epochs.
SE_RECIPE = "Hu et al. Sec. 6: SGD momentum 0.9, batch 1024, 100 epochs, lr 0.6 / 10 every 30 epochs"
ACCURACY = {
    18: published(71.82, 90.39, source="osmr/imgclsmob (pytorchcv) table: SE-ResNet-18 top-1 error 28.18%, "
                  "top-5 error 9.61% (weights converted from its Gluon training; the paper has no SE-ResNet-18)",
                  recipe="imgclsmob's Gluon ImageNet training"),
    34: published(None, source="no published figure: the SE paper reports SE-ResNet-50/101/152 only, and "
                  "neither torchvision nor imgclsmob has SE-ResNet-34 weights"),
    50: published(76.71, 93.38, source="Hu et al. 2018, Table 2: SE-ResNet-50 top-1 error 23.29%, top-5 6.62%",
                  recipe=SE_RECIPE),
    101: published(77.62, 93.93, source="Hu et al. 2018, Table 2: SE-ResNet-101 top-1 error 22.38%, top-5 6.07%",
                   recipe=SE_RECIPE),
    152: published(78.43, 94.27, source="Hu et al. 2018, Table 2: SE-ResNet-152 top-1 error 21.57%, top-5 5.73%",
                   recipe=SE_RECIPE),
}

# Cadene's pretrainedmodels `se_resnet50` (the SENet authors' Caffe model converted) has 28,088,024.
CADENE_SE_RESNET50 = 28_088_024

for _depth, _resnet_params in TORCHVISION_PARAMS.items():
    block, layers = DEPTHS[_depth]
    _config = SEResNetConfig(block=block, layers=layers)
    _params = _resnet_params + se_params(_config)
    _source = (
        f"computed: torchvision resnet{_depth} ({_resnet_params:,}) + SE modules with reduction 16 "
        f"({se_params(_config):,})"
    )
    if _depth == 50:
        _source += f"; equals Cadene pretrainedmodels se_resnet50 ({CADENE_SE_RESNET50:,})"
    register(ModelSpec(
        name=f"se_resnet{_depth}",
        family="senet",
        config=_config,
        input_size=(3, 224, 224),
        params=_params,
        params_total=_params + bn_state(_config),
        source=_source,
        paper=PAPER,
        notes=("torchvision ResNet v1.5 blocks (stride on the 3x3) with torchvision key names; Cadene's "
               "SE-ResNets stride the first 1x1 and name modules differently, with the same counts"),
        **ACCURACY[_depth],
    ))
