"""Training parity (`compare train`): MXNet's Trainer."""
from __future__ import annotations

import math
import warnings
from typing import Mapping

from . import _compat  # noqa: F401  (must run before mxnet is imported)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import gluon  # noqa: E402

from zoo.errors import WeightMismatchError  # noqa: E402
from zoo.inputs import (check_images, check_labels, check_learning_rate, check_model,  # noqa: E402
                        check_optimizer, check_seed, model_classes)
from zoo.weights import MOMENTUM, check_state  # noqa: E402

LAST_LR = "last_lr"  # the rate of the last step, which Gluon's `mom` is scaled by


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
    the rule while staying one fused operation per tensor.

    Its state is the contract's buffers, buf = -mom / last_lr, in float64 (so that `load_state` gets
    back the float32 `mom` bit for bit), and `last_lr`, the rate as an array of shape (1,) (0 before the
    first step; not 0-d, which `np.ascontiguousarray`, and so a file writer using it, makes (1,)). Dropout
    draws from MXNet's global generators, which `reseed` seeds (`mx.random.seed`)."""

    def __init__(self, model, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        self.momentum, self.weight_decay = momentum, weight_decay
        from .backend import canonical_parameters  # (backend imports this module)

        canonical = {id(param): name for name, param in canonical_parameters(model).items()}
        self.params = [p for p in model.collect_params().values() if p.grad_req != "null"]
        self.names = [MOMENTUM + canonical.get(id(p), p.name) for p in self.params]
        self.moms = [mx.nd.zeros(p.shape, ctx=p.list_ctx()[0], dtype=p.dtype) for p in self.params]
        self.last_lr: float | None = None
        self.reseed(seed)
        with warnings.catch_warnings():
            # The backend's input check is a forward pre-hook on this (top-level) block, where Gluon
            # still runs it; the warning is about hooks on children of a hybridized block.
            warnings.filterwarnings("ignore", message="(?s).*hybridized while still having forward hook")
            model.hybridize(static_alloc=True)

    def reseed(self, seed: int) -> None:
        # Every device's generator; a hybridized graph's Dropout draws from its device's.
        mx.random.seed(check_seed(seed))

    def state(self) -> dict[str, np.ndarray]:
        rate = self.last_lr or 0.0
        found = {name: (-mom.asnumpy().astype(np.float64) / rate if rate else np.zeros(mom.shape))
                 for name, mom in zip(self.names, self.moms)}
        found[LAST_LR] = np.array([rate], np.float64)
        return found

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        expected = {name: tuple(mom.shape) for name, mom in zip(self.names, self.moms)}
        expected[LAST_LR] = (1,)
        arrays = check_state(expected, state, getattr(self.model, "zoo_name", "model"))
        rate = float(arrays[LAST_LR][0])
        if not (math.isfinite(rate) and rate >= 0):
            raise WeightMismatchError(f"optimizer state's {LAST_LR} must be a finite rate >= 0 (0: no step yet), "
                                      f"got {rate!r}; nothing was loaded")
        if rate == 0 and any(np.any(arrays[name]) for name in self.names):
            raise WeightMismatchError(f"optimizer state with momentum buffers needs the {LAST_LR} they were "
                                      f"made at (mom = -last_lr * buf), got 0; nothing was loaded")
        # mom = -last_lr * buf in float64, rounded once to the buffer's type: the `mom` that `state`
        # read, exactly. Every buffer is made before the first is set, so nothing is half-applied.
        moms = [mx.nd.array(-rate * np.asarray(arrays[name], np.float64), ctx=mom.context, dtype=mom.dtype)
                for name, mom in zip(self.names, self.moms)]
        for mom, value in zip(self.moms, moms):
            value.copyto(mom)
        self.last_lr = rate or None

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
