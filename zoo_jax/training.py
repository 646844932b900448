"""The training step of `compare train` in JAX: one jitted, donated SGD step (see `zoo_jax.steps`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.inputs import check_labels, check_learning_rate, check_model, check_optimizer, model_classes

from .backend import FRAMEWORK, inputs
from .layers import on_device
from .steps import compiler_options, inference, train_step, write_back


class Trainer:
    def __init__(self, model: nnx.Module, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        # Dropout masks from `seed`: the RNG streams are state of the model, carried through the steps.
        nnx.reseed(model, dropout=seed)
        step, self.params, self.rest, self.buffers = train_step(model, momentum, weight_decay)
        self.step_fn = jax.jit(step, donate_argnums=(0, 1, 2), compiler_options=compiler_options())
        self.graph_dtype = jax.tree.leaves(self.params)[0].dtype
        forward, _, _ = inference(model)
        self.forward = jax.jit(forward)

    def prepare(self, x: np.ndarray):
        return inputs(self.model, np.asarray(x, np.float32))

    def labels(self, y: np.ndarray):
        return on_device(check_labels(y, None, model_classes(self.model)), np.int32)

    def step(self, x, y, lr: float) -> float:
        lr = check_learning_rate(lr)
        self.params, self.rest, self.buffers, loss = self.step_fn(
            self.params, self.rest, self.buffers, x, y, jnp.asarray(lr, self.graph_dtype))
        # The step donated the model's arrays: the module takes the new ones, so it is always current.
        write_back(self.model, self.params, self.rest)
        return float(loss)

    def logits(self, x) -> np.ndarray:
        return np.asarray(self.forward(self.params, self.rest, x))


def make_trainer(model: nnx.Module, momentum: float, weight_decay: float, seed: int) -> Trainer:
    check_model(model, nnx.Module, FRAMEWORK)
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)
