"""GoogLeNet in MXNet Gluon: the spec's plan (`GoogLeNetConfig.plan`), translated here module by module.

With `aux_logits` the block returns (logits, aux_logits2, aux_logits1) in training and in inference
alike: a hybridized graph has one output structure. PyTorch returns only the logits in eval mode.
"""
from __future__ import annotations

from mxnet.gluon import nn

from zoo.specs.googlenet import AuxHead, BasicConv, GoogLeNetConfig, GoogLeNetPlan, InceptionModule

from .alexnet import SequentialNet, blocks, layer
from .layers import relu


class BasicConv2d(nn.HybridBlock):
    def __init__(self, plan: BasicConv, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = layer(plan.conv)
            self.bn = layer(plan.bn)

    def hybrid_forward(self, F, x):
        return relu(F, self.bn(self.conv(x)))


class Inception(nn.HybridBlock):
    def __init__(self, plan: InceptionModule, **kwargs) -> None:
        super().__init__(**kwargs)
        self._branches = []
        with self.name_scope():
            for name, block in blocks(plan.parts, depth=1, make=make):
                setattr(self, name, block)
                self._branches.append(name)

    def hybrid_forward(self, F, x):
        return F.concat(*(getattr(self, branch)(x) for branch in self._branches), dim=1)


class InceptionAux(nn.HybridBlock):
    def __init__(self, plan: AuxHead, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.pool = layer(plan.pool)
            self.conv = BasicConv2d(plan.conv)
            self.fc1 = layer(plan.fc1)
            self.fc2 = layer(plan.fc2)
            self.dropout = layer(plan.dropout)

    def hybrid_forward(self, F, x):
        x = self.conv(self.pool(x))
        return self.fc2(self.dropout(relu(F, self.fc1(x))))


def make(piece) -> nn.HybridBlock:
    return {BasicConv: BasicConv2d, InceptionModule: Inception, AuxHead: InceptionAux}.get(type(piece), layer)(piece)


class GoogLeNet(SequentialNet):
    def __init__(self, plan: GoogLeNetPlan, **kwargs) -> None:
        super().__init__(plan, make, **kwargs)
        self._transform = plan.transform
        # The auxiliary heads read the output of their module beside the main path.
        self._aux_after = {aux.after: aux.name for aux in plan.aux}
        self._steps = [name for name in self._steps if name not in self._aux_after.values()]

    def hybrid_forward(self, F, x):
        if self._transform is not None:
            x = F.concat(*[F.slice_axis(x, axis=1, begin=c, end=c + 1) * s + o
                           for c, (s, o) in enumerate(zip(*self._transform))], dim=1)
        aux = []
        for name in self._steps:
            block = getattr(self, name)
            if block is not None:
                x = block(x)
            if name in self._aux_after:
                aux.append(getattr(self, self._aux_after[name])(x))
        if aux:
            return (x, *reversed(aux))
        return x


def build(config: GoogLeNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return GoogLeNet(config.plan(num_classes, in_channels))
