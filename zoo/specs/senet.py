"""SE-ResNet (Hu et al., Squeeze-and-Excitation Networks): torchvision's ResNet with an SE module in
every residual block.

The SE module sits on the residual branch after its last BatchNorm, before the addition with the
shortcut: global average pool, fc1 (C -> C // reduction, with bias), ReLU, fc2 (back to C, with bias),
sigmoid, and the branch is scaled channel-wise by the result. The fcs are 1x1 convolutions, as in
torchvision's own `ops.SqueezeExcitation` and Cadene's `pretrainedmodels` SE-ResNets, so the
squeezed vector stays an N x C x 1 x 1 map that broadcasts against the branch with no reshapes.

Everything else is the ResNet family's: an `SEResNetConfig` is a `ResNetConfig` plus `se_reduction`,
and every framework builds it through its ResNet builder.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import ModelSpec, check_positive, register
from .resnet import DEPTHS, TORCHVISION_PARAMS, ResNetConfig, bn_state


@dataclass(frozen=True)
class SEResNetConfig(ResNetConfig):
    se_reduction: int = 16

    def validate(self) -> None:
        super().validate()
        check_positive("se_reduction", self.se_reduction, integer=True)
        narrowest = min(self.widths) * self.expansion
        if narrowest // self.se_reduction < 1:
            raise ValueError(
                f"se_reduction {self.se_reduction} squeezes a {narrowest}-channel block to no channels; "
                f"it must be at most {narrowest}"
            )

    def se_channels(self, planes: int) -> tuple[int, int]:
        """(channels the SE module scales, channels of its squeezed vector) in a stage of `planes`."""
        channels = planes * self.expansion
        return channels, channels // self.se_reduction


def se_params(config: SEResNetConfig) -> int:
    """Parameters the SE modules add to the ResNet: per block 2 * C * C/r weights and C/r + C biases."""
    total = 0
    for planes, blocks in zip(config.widths, config.layers):
        channels, squeezed = config.se_channels(planes)
        total += blocks * (2 * channels * squeezed + squeezed + channels)
    return total


PAPER = "Squeeze-and-Excitation Networks (Hu, Shen, Albanie, Sun, Wu, 2017)"
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
    ))
