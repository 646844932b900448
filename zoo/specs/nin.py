"""Network in Network (Lin, Chen, Yan, 2013): mlpconv blocks and a global average pool instead of dense layers.

The configuration is d2l.ai's ImageNet-size NiN (chapter "Network in Network (NiN)"): AlexNet-like first
convolutions, each followed by two 1x1 convolutions, and a last block with one channel per class.
`NiNConfig.plan` lists its layers under their module names (`features.2.0`: the first convolution of the
second mlpconv block), which every framework builds.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arith import conv_out, smallest_input
from ..plan import Activation, Conv, Dropout, Flatten, GlobalPool, Layer, Pool, sequential
from ..registry import FamilyConfig, ModelSpec, Stage, check_positive, check_probability, d2l_figures, published, register


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

    def block(self, in_channels: int, channels: int, kernel: int, stride: int, padding: int) -> tuple[Layer, ...]:
        """The paper's mlpconv: a convolution and `mlp_layers` 1x1 convolutions, each with a ReLU (unnamed:
        `plan` names it as the Sequential it is)."""
        layers = [Conv("", in_channels, channels, kernel, stride, padding, bias=True), Activation("")]
        for _ in range(self.mlp_layers):
            layers += [Conv("", channels, channels, 1, bias=True), Activation("")]
        return tuple(layers)

    def plan(self, num_classes: int = 1000, in_channels: int = 3) -> tuple[Layer, ...]:
        """The network, layer by layer: `features` (an mlpconv block and a max pool per entry of `blocks`, then
        dropout) and `classifier` (an mlpconv block with one channel per class, a global average pool, flatten);
        no dense layer."""
        features, channels = [], in_channels
        for out_channels, kernel, stride, padding in self.blocks:
            features += [self.block(channels, out_channels, kernel, stride, padding),
                         Pool("", self.pool_kernel, self.pool_stride)]
            channels = out_channels
        head = self.block(channels, num_classes, self.head_kernel, 1, self.head_padding)
        return (*sequential("features", [*features, Dropout("", self.dropout)]),
                *sequential("classifier", [head, GlobalPool(""), Flatten("")]))

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
        pools = [layer.name for layer in self.plan() if isinstance(layer, Pool)]
        return (
            *(Stage(f"mlpconv{i + 1} + pool", pool, 1 + self.mlp_layers,
                    f"{kernel}x{kernel}/1x1 conv" if self.mlp_layers else f"{kernel}x{kernel} conv",
                    stride * self.pool_stride)
              for i, (pool, (_, kernel, stride, _)) in enumerate(zip(pools, self.blocks))),
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

# Who builds which: d2l.ai's PyTorch code builds both, `nin` for ImageNet (3 channels, 1000 classes) and `nin_d2l`
# as the book trains it (the same layers on 1-channel Fashion-MNIST, 10 classes).
register(ModelSpec(
    name="nin_d2l",
    family="nin",
    config=NiNConfig(),
    input_size=(1, 224, 224),
    num_classes=10,
    params=1_992_166,
    params_total=1_992_166,
    paper="Network In Network (Lin, Chen, Yan, 2013)",
    **d2l_figures("8.3 (NiN), 1x224x224 Fashion-MNIST, 10 classes", 1_992_166),
))
