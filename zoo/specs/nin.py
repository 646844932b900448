"""Network in Network (Lin, Chen, Yan, 2013): mlpconv blocks and a global average pool instead of dense layers.

The configuration is d2l.ai's ImageNet-size NiN (chapter "Network in Network (NiN)"): AlexNet-like first
convolutions, each followed by two 1x1 convolutions, and a last block with one channel per class.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import conv_out, smallest_input
from ..registry import FamilyConfig, ModelSpec, Stage, check_positive, check_probability, published, register


@dataclass(frozen=True)
class NiNConfig(FamilyConfig):
    # (channels, kernel, stride, padding) of the first convolution of each block before the classifier
    # block; each block is followed by a max pool.
    blocks: tuple[tuple[int, int, int, int], ...] = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
    # 1x1 convolutions after each block's first convolution (the "micro network" of the paper).
    mlp_layers: int = 2
    pool_kernel: int = 3
    pool_stride: int = 2
    dropout: float = 0.5
    # The classifier block: num_classes channels, then a global average pool.
    head_kernel: int = 3
    head_padding: int = 1

    def validate(self) -> None:
        if not self.blocks:
            raise ValueError("blocks must hold at least one (channels, kernel, stride, padding), got ()")
        for block in self.blocks:
            if len(block) != 4:
                raise ValueError(f"each block is (channels, kernel, stride, padding), got {block!r}")
            channels, kernel, stride, padding = block
            for value in (channels, kernel, stride):
                check_positive("block channels, kernel and stride", value, integer=True)
            if padding < 0:
                raise ValueError(f"block padding must be >= 0, got {block!r}")
        if isinstance(self.mlp_layers, bool) or not isinstance(self.mlp_layers, int) or self.mlp_layers < 0:
            raise ValueError(f"mlp_layers must be an integer >= 0, got {self.mlp_layers!r}")
        for value in (self.pool_kernel, self.pool_stride, self.head_kernel):
            check_positive("pool_kernel, pool_stride and head_kernel", value, integer=True)
        if self.head_padding < 0:
            raise ValueError(f"head_padding must be >= 0, got {self.head_padding}")
        check_probability("dropout", self.dropout)

    def feature_size(self, size: int) -> int:
        for _, kernel, stride, padding in self.blocks:
            size = conv_out(size, kernel, stride, padding)
            if size < 1:
                return 0
            size = conv_out(size, self.pool_kernel, self.pool_stride)
            if size < 1:
                return 0
        return max(conv_out(size, self.head_kernel, 1, self.head_padding), 0)

    def min_input_size(self) -> int:
        return smallest_input(self.feature_size)

    def outline(self) -> tuple[Stage, ...]:
        # features: (mlpconv block, max pool) per block, then dropout; the classifier block is the head.
        return (
            *(Stage(f"mlpconv{i + 1} + pool", f"features.{2 * i + 1}", 1 + self.mlp_layers,
                    f"{kernel}x{kernel}/1x1 conv" if self.mlp_layers else f"{kernel}x{kernel} conv",
                    stride * self.pool_stride)
              for i, (_, kernel, stride, _) in enumerate(self.blocks)),
            Stage("head", "", 1 + self.mlp_layers, "conv, global avg pool"),
        )


register(ModelSpec(
    name="nin",
    family="nin",
    config=NiNConfig(),
    input_size=(3, 224, 224),
    params=7_439_608,
    params_total=7_439_608,
    source=(
        "d2l.ai, chapter Network in Network (NiN), ImageNet-size net with 3 input channels and 1000 classes; "
        "counted from the architecture (conv weights + biases: 53,568 + 746,240 + 1,180,800 + 5,459,000)"
    ),
    paper="Network In Network (Lin, Chen, Yan, 2013)",
    **published(None, source="no published ImageNet figure for this configuration: the paper reports CIFAR-10/100, "
                "SVHN and MNIST only, and d2l trains this net on Fashion-MNIST"),
))
