"""Pure, jittable steps of a zoo model, as JAX's experts write them: the module is split once into a
static graph and arrays (`nnx.split`), and the jitted function merges them back inside the trace, so
each call is one compiled executable with no Python graph walking around it.

The training step is SGD with momentum and PyTorch-style (coupled) weight decay on every parameter:

    g = grad + weight_decay * w;   buf = momentum * buf + g;   w = w - lr * buf

Its arrays (parameters, BatchNorm statistics and RNG counters, momentum buffers) are donated, so
XLA updates them in place. Compile it with `compiler_options(device)`, so that recomputation
(`jax.checkpoint`, DenseNet's memory_efficient) survives XLA:CPU.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .backend import cross_entropy
from .layers import on_device


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def compiler_options(device=None) -> dict[str, str] | None:
    """XLA options of a training step on `device` (default: JAX's default device).

    XLA:CPU expands jax.checkpoint's optimisation barriers early (its `cse_barrier_expander` pass, before
    common-subexpression elimination), so the recomputation in the backward pass is merged back into the
    forward pass it repeats and nothing is saved: DenseNet-BC-100's step compiled to the same program,
    2108 MiB of temporaries, with and without memory_efficient. Keeping the barriers keeps the
    recomputation (1135 MiB); programs without barriers are unchanged. XLA:GPU keeps them by itself.
    """
    platform = device.platform if device is not None else jax.default_backend()
    return {"xla_disable_hlo_passes": "cse_barrier_expander"} if platform == "cpu" else None


def inference(model: nnx.Module, compute_dtype=None) -> tuple[Callable, nnx.State, nnx.State]:
    """(forward(params, rest, x) -> logits, params, rest) of `model` in eval mode; `compute_dtype`
    (e.g. bfloat16) casts weights and inputs inside the step, as mixed precision does. The arrays are
    split as by `train_step`, so a training loop's own can be passed."""
    was_training = _training(model)
    model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    if was_training:
        model.train()

    def forward(params, rest, x):
        if compute_dtype is not None:
            params, rest, x = _cast_floats(params, compute_dtype), _cast_floats(rest, compute_dtype), \
                x.astype(compute_dtype)
        return nnx.merge(graphdef, params, rest)(x)

    return forward, params, rest


def train_step(model: nnx.Module, momentum: float, weight_decay: float, compute_dtype=None):
    """(step(params, rest, buffers, x, y, lr) -> (params, rest, buffers, loss), params, rest, buffers).

    `rest` is every non-parameter array: BatchNorm statistics, dropout RNG state. With `compute_dtype`,
    the forward and backward run in it, while parameters, statistics and the update stay float32.
    """
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    buffers = jax.tree.map(lambda w: on_device(np.zeros(w.shape), w.dtype), params)

    def loss_fn(params, rest, x, y):
        if compute_dtype is not None:
            params, x = _cast_floats(params, compute_dtype), x.astype(compute_dtype)
        # Flax 0.12 writes a Variable only from the trace that made it (BatchNorm's statistics; the
        # memory-efficient DenseNet's nnx.update after jax.checkpoint), and `rest`'s were made by jit,
        # outside value_and_grad: copies, made here and costing no computation, belong to this trace.
        net = nnx.merge(graphdef, params, rest, copy=True)
        loss = cross_entropy(net(x), y)
        new_rest = nnx.state(net, nnx.Not(nnx.Param))
        return loss, new_rest

    def step(params, rest, buffers, x, y, lr):
        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, x, y)
        grads = _cast_floats(grads, jnp.float32) if compute_dtype is not None else grads
        if compute_dtype is not None:  # statistics back to their own dtype
            new_rest = jax.tree.map(lambda new, old: new.astype(old.dtype), new_rest, rest)
        buffers = jax.tree.map(lambda b, g, w: momentum * b + (g + weight_decay * w), buffers, grads, params)
        params = jax.tree.map(lambda w, b: w - lr * b, params, buffers)
        return params, new_rest, buffers, loss

    return step, params, rest, buffers


def write_back(model: nnx.Module, *states) -> None:
    """Put arrays a pure step returned back into the module."""
    nnx.update(model, *states)


def _training(model: nnx.Module) -> bool:
    from . import is_training

    return is_training(model)
