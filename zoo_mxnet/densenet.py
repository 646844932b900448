"""DenseNet in MXNet Gluon, block for block torchvision's module tree
(`features.denseblock1.denselayer1.norm1`, `features.transition1.conv`, `classifier`). The network is
the spec's plan (`DenseNetConfig.plan`): every layer's convolutions, widths, biases and names are decided
there, and only translated into blocks here.

`memory_efficient=True` recomputes each dense layer's concatenation, BN, ReLU (and 1x1 convolution) in
the backward pass instead of keeping them (Pleiss et al., 2017), as torchvision does. MXNet 1.9
recomputes ("mirrors") only in its symbolic graph executor, for nodes carrying the
`__force_mirroring__` attribute, here set per node by an `mx.AttrScope` around those layers' symbols
(no process-wide setting such as MXNET_BACKWARD_DO_MIRROR). Gluon's CachedOp, which runs a hybridized
block under autograd, builds its backward graph without mirroring, and an autograd.Function around an
executor runs its backward later from MXNet's custom-operator thread, after a Trainer's updates of the
same weights were queued (a deadlock). So the zoo's training step (`zoo_mxnet.training.forward_backward`:
the Trainer, `loss_gradients`, the bench) runs a memory-efficient model's loss through its own bound
executor (`DenseNet.mirrored_loss`), which shares the Gluon parameters' arrays and gradients; a plain
`autograd.record()` pass computes the same without recomputing. Outputs and gradients are the same.
Blocks whose channel offsets are not whole 16-channel blocks (DenseNet-BC's k=12) cannot recompute
here (see `_recomputes`).
"""
from __future__ import annotations

import contextlib
from typing import Callable

from . import _compat  # noqa: F401  (must run before mxnet is imported)

import mxnet as mx  # noqa: E402
from mxnet import gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

from zoo.plan import Conv  # noqa: E402
from zoo.specs.densenet import DenseBlockPlan, DenseLayerPlan, DenseNetConfig, DenseNetPlan, TransitionPlan  # noqa: E402

from .layers import global_avg_pool, relu  # noqa: E402

Norm = Callable[[int], nn.BatchNorm]
Activation = Callable[..., object]  # (F, x) -> ReLU(x), of the kind `_activation` chose


def _activation(growth_rate: int) -> Activation:
    """oneDNN's ReLU (see `layers.relu`) where MXNet 1.9 can train with it, else the plain `relu`.

    MXNet's oneDNN concat backward fails (SIGFPE, or "could not construct a sub-memory") on gradients in
    its blocked layout when the concatenated layer outputs are not whole 16-channel blocks. The plain
    `relu` hands those gradients over in NCHW; the outputs are the same either way.
    """
    return relu if growth_rate % 16 == 0 else (lambda F, x: F.relu(x))


def conv2d(conv: Conv) -> nn.Conv2D:
    return nn.Conv2D(conv.out_channels, conv.kernel, strides=conv.stride, padding=conv.padding, groups=conv.groups,
                     use_bias=conv.bias, in_channels=conv.in_channels)


def _mirrored(F):
    """Marks the symbols made within for recomputation in the backward pass of a bound executor
    (MXNet's `force_mirroring` attribute, stored as `__force_mirroring__`); nothing for NDArrays."""
    return mx.AttrScope(force_mirroring="True") if F is mx.sym else contextlib.nullcontext()


def _recomputes(plan: DenseBlockPlan, memory_efficient: bool) -> bool:
    """A memory-efficient block whose concatenations oneDNN can differentiate: every channel offset a
    whole 16-channel block. Otherwise oneDNN's concat backward crashes (SIGFPE) on the gradient, in
    its blocked layout, of a concatenation of maps at unaligned offsets (DenseNet-BC's 12-channel maps
    once they sum to 16n channels). Concatenating such maps as 5-D arrays, which MXNet leaves to its
    own kernel, trains, but its copies cost more memory than recomputation saves (DenseNet-BC-100,
    k=12, batch 64: 3222 MiB against 2796 MiB without), and so does concatenating the flattened
    (N, C*H*W) maps (3615 MiB against 3278 MiB), so those blocks keep their maps instead."""
    return memory_efficient and plan.in_channels % 16 == 0 and plan.growth_rate % 16 == 0


def _concat(F, *maps):
    return F.concat(*maps, dim=1)


def _concat_5d(F, *maps):
    """The channel concatenation done by MXNet's own kernel, which leaves no oneDNN layout behind:
    a map that sums to whole 16-channel blocks at the end of a block otherwise gets its gradient in
    oneDNN's blocked layout from the BatchNorm that follows, which oneDNN's concat backward cannot
    split at offsets of 12 channels ("could not construct a sub-memory": DenseNet-BC-40, k=12)."""
    joined = F.concat(*[F.expand_dims(m, axis=4) for m in maps], dim=1)
    return F.squeeze(joined, axis=4)


class NamedSequential(nn.HybridBlock):
    """PyTorch's nn.Sequential(OrderedDict(...)): children run in order and keep their names."""

    def add(self, name: str, block: nn.HybridBlock) -> None:
        self.register_child(block, name)

    def hybrid_forward(self, F, x):
        for block in self._children.values():
            x = block(x)
        return x


class DenseLayer(nn.HybridBlock):
    """Takes the block's feature maps so far: one running concatenation, or (memory_efficient) the
    list of them, concatenated here under the mirroring attribute."""

    def __init__(self, plan: DenseLayerPlan, norm: Norm, activation: Activation, recompute: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.bottleneck = plan.bottleneck
        self.drop_rate = plan.drop_rate
        self.memory_efficient = recompute
        self.relu = activation
        with self.name_scope():
            for k, conv in enumerate(plan.convs, start=1):
                setattr(self, f"norm{k}", norm(conv.in_channels))
                setattr(self, f"conv{k}", conv2d(conv))

    def hybrid_forward(self, F, *features):
        # conv1 is marked too, so that its backward reads the recomputed ReLU output rather than a kept
        # one; MXNet's backward node depends on the forward node it differentiates, so the 1x1
        # convolution is recomputed as well (its output is kept: norm2, unmarked, reads it).
        with _mirrored(F) if self.memory_efficient else contextlib.nullcontext():
            x = features[0] if len(features) == 1 else F.concat(*features, dim=1)
            out = self.conv1(self.relu(F, self.norm1(x)))
        if self.bottleneck:
            out = self.conv2(self.relu(F, self.norm2(out)))
        if self.drop_rate > 0:
            out = F.Dropout(out, p=self.drop_rate)
        return out


class DenseBlock(nn.HybridBlock):
    def __init__(self, plan: DenseBlockPlan, norm: Norm, activation: Activation, memory_efficient: bool,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.layer_names = tuple(layer.local() for layer in plan.layers)
        self.memory_efficient = _recomputes(plan, memory_efficient)
        self.last_concat = _concat_5d if plan.out_channels % 16 == 0 and plan.growth_rate % 16 else _concat
        with self.name_scope():
            for layer in plan.layers:
                setattr(self, layer.local(), DenseLayer(layer, norm, activation, self.memory_efficient))

    def hybrid_forward(self, F, x):
        layers = [getattr(self, name) for name in self.layer_names]
        if self.memory_efficient:
            # Only the layers' own outputs are kept (linear in depth); each layer's concatenation of
            # them is recomputed in the backward pass.
            features = [x]
            for layer in layers:
                features.append(layer(*features))
            return F.concat(*features, dim=1)
        # Each layer appends its features to the running map: the same tensors as torchvision's
        # concatenation of all earlier maps for every layer, and 3% faster for DenseNet-121 here.
        for layer in layers[:-1]:
            x = F.concat(x, layer(x), dim=1)
        return self.last_concat(F, x, layers[-1](x))


class Transition(nn.HybridBlock):
    def __init__(self, plan: TransitionPlan, norm: Norm, activation: Activation, **kwargs) -> None:
        super().__init__(**kwargs)
        self.relu = activation
        with self.name_scope():
            self.norm = norm(plan.norm)
            self.conv = conv2d(plan.conv)
            self.pool = nn.AvgPool2D(plan.pool.kernel, strides=plan.pool.stride, padding=plan.pool.padding)

    def hybrid_forward(self, F, x):
        return self.pool(self.conv(self.relu(F, self.norm(x))))


class ReLU(nn.HybridBlock):
    def __init__(self, activation: Activation, **kwargs) -> None:
        super().__init__(**kwargs)
        self.relu = activation

    def hybrid_forward(self, F, x):
        return self.relu(F, x)


class DenseNet(nn.HybridBlock):
    def __init__(self, plan: DenseNetPlan, **kwargs) -> None:
        super().__init__(**kwargs)

        def norm(channels: int) -> nn.BatchNorm:
            # Gluon's momentum weighs the old statistic, PyTorch's the new one.
            return nn.BatchNorm(momentum=1.0 - plan.bn_momentum, epsilon=plan.bn_eps, in_channels=channels)

        self.relu = activation = _activation(plan.blocks[0].growth_rate)
        self.memory_efficient = any(_recomputes(block, plan.memory_efficient) for block in plan.blocks)
        self._executors: dict[tuple, MirroredExecutor] = {}
        with self.name_scope():
            self.features = NamedSequential()
            with self.features.name_scope():
                self.features.add("conv0", conv2d(plan.stem))
                if plan.stem_norm:
                    self.features.add("norm0", norm(plan.stem_norm))
                    self.features.add("relu0", ReLU(activation))
                if plan.pool:
                    pool = plan.pool
                    self.features.add("pool0", nn.MaxPool2D(pool.kernel, strides=pool.stride, padding=pool.padding))
                for block, transition in plan.stages():
                    self.features.add(block.local(), DenseBlock(block, norm, activation, plan.memory_efficient))
                    if transition is not None:
                        self.features.add(transition.local(), Transition(transition, norm, activation))
                self.features.add("norm5", norm(plan.final_norm))
            self.classifier = nn.Dense(plan.classifier.out_features, in_units=plan.classifier.in_features)

    def hybrid_forward(self, F, x):
        out = self.relu(F, self.features(x))
        return self.classifier(F.flatten(global_avg_pool(F, out)))

    def mirrored_loss(self, x: mx.nd.NDArray, labels: mx.nd.NDArray) -> mx.nd.NDArray | None:
        """Mean cross-entropy of one training-mode pass and its gradients in the parameters' `grad()`,
        recomputing the marked nodes in the backward pass; None when memory_efficient is off."""
        if not self.memory_efficient:
            return None
        signature = getattr(self, "zoo_signature", None)  # the check Gluon's call runs as a pre-hook
        if signature is not None:
            signature.check(x.shape, "NCHW")
        key = (x.shape, labels.shape, x.dtype, x.context)
        executor = self._executors.get(key)
        if executor is None or not executor.current():
            self._executors[key] = executor = MirroredExecutor(self, x, labels)
        return executor.run(x, labels)


class MirroredExecutor:
    """The model's loss symbol bound for one input shape. Its arguments, auxiliary states and gradients
    are the Gluon parameters' own arrays, so a Trainer's updates in place reach it and its gradients
    land where Gluon's backward would put them."""

    def __init__(self, model: DenseNet, x: mx.nd.NDArray, labels: mx.nd.NDArray) -> None:
        data, label = mx.sym.var("data"), mx.sym.var("label")
        symbol = mx.sym.make_loss(mx.sym.mean(gluon.loss.SoftmaxCrossEntropyLoss()(model(data), label)))
        params = model.collect_params()
        ctx = x.context
        names = [name for name in symbol.list_arguments() if name not in ("data", "label")]
        self.bound = {name: params[name].data(ctx) for name in names + symbol.list_auxiliary_states()}
        self.trained = [name for name in names if params[name].grad_req != "null"]
        args = {name: self.bound[name] for name in names}
        args["data"] = mx.nd.zeros(x.shape, ctx=ctx, dtype=x.dtype)
        args["label"] = mx.nd.zeros(labels.shape, ctx=ctx, dtype=labels.dtype)
        self.params, self.ctx = params, ctx
        self.executor = symbol.bind(
            ctx, args, args_grad={name: params[name].grad(ctx) for name in self.trained},
            grad_req={**{name: params[name].grad_req for name in self.trained}, "data": "null", "label": "null"},
            aux_states={name: self.bound[name] for name in symbol.list_auxiliary_states()})

    def current(self) -> bool:
        """The parameters still hold the arrays bound (`cast`, `reset_ctx`, re-initialisation replace them)."""
        return all(self.params[name].data(self.ctx) is array for name, array in self.bound.items())

    def run(self, x: mx.nd.NDArray, labels: mx.nd.NDArray) -> mx.nd.NDArray:
        loss = self.executor.forward(is_train=True, data=x, label=labels)[0]
        self.executor.backward()
        for name in self.trained:
            # What autograd's backward marks, and gluon.Trainer checks before an update.
            self.params[name].data(self.ctx)._fresh_grad = True
        return loss


def build(config: DenseNetConfig, *, num_classes: int, in_channels: int) -> nn.HybridBlock:
    return DenseNet(config.plan(num_classes, in_channels))
