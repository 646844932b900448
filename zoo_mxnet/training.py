"""Training parity (`compare train`): MXNet's Trainer."""
from __future__ import annotations

import warnings

from . import _compat  # noqa: F401  (must run before mxnet is imported)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import gluon  # noqa: E402

from zoo.inputs import (check_images, check_labels, check_learning_rate, check_model,  # noqa: E402
                        check_optimizer, model_classes)


def forward_backward(model, x, y) -> mx.nd.NDArray:
    """Mean cross-entropy of one training-mode pass, its gradients left in the parameters' `grad()`.

    A model that recomputes in its backward pass (DenseNet's memory_efficient) runs its own bound
    executor (`mirrored_loss`): MXNet 1.9 recomputes only there, not in Gluon's autograd."""
    mirrored = getattr(model, "mirrored_loss", None)
    loss = mirrored(x, y) if mirrored is not None else None
    if loss is None:
        with mx.autograd.record(train_mode=True):
            loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(model(x), y).mean()
        loss.backward()
    return loss


class Trainer:
    """The contract's rule (g = grad + wd * w; buf = momentum * buf + g; w = w - lr * buf) with Gluon's
    fused update. Gluon's 'sgd' (`mom = momentum*mom - lr*(g + wd*w)`) keeps `mom = -lr * buf`, the rate
    folded in, which equals the rule only while the rate is constant. Rescaling `mom` by
    lr_t / lr_(t-1) before each step keeps that identity under any schedule, so the update equals
    the rule while staying one fused operation per tensor."""

    def __init__(self, model, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        self.momentum, self.weight_decay = momentum, weight_decay
        mx.random.seed(seed)  # dropout masks
        self.params = [p for p in model.collect_params().values() if p.grad_req != "null"]
        self.moms = [mx.nd.zeros(p.shape) for p in self.params]
        self.last_lr: float | None = None
        with warnings.catch_warnings():
            # The backend's input check is a forward pre-hook on this (top-level) block, where Gluon
            # still runs it; the warning is about hooks on children of a hybridized block.
            warnings.filterwarnings("ignore", message="(?s).*hybridized while still having forward hook")
            model.hybridize(static_alloc=True)

    def prepare(self, x: np.ndarray):
        x = check_images(x, getattr(self.model, "zoo_signature", None))
        return np.ascontiguousarray(x, dtype=np.float32)

    def labels(self, y: np.ndarray):
        return check_labels(y, None, model_classes(self.model)).astype(np.float32)

    def step(self, x, y, lr: float) -> float:
        lr = check_learning_rate(lr)
        x, y = mx.nd.array(x), mx.nd.array(y)
        loss = forward_backward(self.model, x, y)
        if not lr > 0:
            # mom = -lr * buf cannot carry the buffer through a zero rate (no schedule here gives one).
            raise ValueError(f"the MXNet update needs a positive learning rate, got {lr!r}")
        if self.last_lr is not None and lr != self.last_lr:
            for mom in self.moms:
                mom *= lr / self.last_lr
        self.last_lr = lr
        for param, mom in zip(self.params, self.moms):
            weight = param.data()
            mx.nd.sgd_mom_update(weight, param.grad(), mom, lr=lr, momentum=self.momentum, wd=self.weight_decay,
                                 out=weight)
        return float(loss.asscalar())

    def logits(self, x) -> np.ndarray:
        return self.model(mx.nd.array(x)).asnumpy()


def make_trainer(model, momentum: float, weight_decay: float, seed: int) -> Trainer:
    check_model(model, gluon.Block, "mxnet")
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)
