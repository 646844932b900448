"""The training step of `compare train` in JAX: one jitted, donated SGD step (see `zoo_jax.steps`)."""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.inputs import check_labels, check_learning_rate, check_model, check_optimizer, check_seed, model_classes
from zoo.weights import MOMENTUM, check_state

from .backend import FRAMEWORK, inputs
from .layers import on_device
from .network import canonical_variables
from .steps import compiler_options, inference, train_step, write_back


class Trainer:
    """The jitted, donated step of `zoo_jax.steps`, its arrays (parameters, the rest of the model's state,
    momentum buffers) held here between steps and written back into the module after each.

    Its state is the buffers, under the canonical names in the canonical layout. Dropout draws from the
    model's `dropout` RNG stream (key and counter, part of `rest`), which `reseed` resets."""

    def __init__(self, model: nnx.Module, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        step, self.params, self.rest, self.buffers = train_step(model, momentum, weight_decay)
        self.step_fn = jax.jit(step, donate_argnums=(0, 1, 2), compiler_options=compiler_options())
        self.graph_dtype = jax.tree.leaves(self.params)[0].dtype
        forward, _, _ = inference(model)
        self.forward = jax.jit(forward)
        canonical = {path: (name, to_torch, from_torch)
                     for name, (_, path, to_torch, from_torch) in canonical_variables(model).items()}
        # Flax graph path of each buffer (its parameter's) -> (state name, to canonical, from canonical).
        self.names = {path: (MOMENTUM + canonical[path][0], *canonical[path][1:]) if path in canonical
                      else (MOMENTUM + ".".join(map(str, path)), _same, _same)
                      for path, _ in nnx.to_flat_state(self.buffers)}
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        # The RNG streams are state of the model, carried through the steps in `rest`: reset the module's
        # `dropout` stream (its key from `seed`, its counter to 0), then take the module's new `rest`.
        nnx.reseed(self.model, dropout=check_seed(seed))
        _, _, self.rest = nnx.split(self.model, nnx.Param, ...)

    def state(self) -> dict[str, np.ndarray]:
        return {self.names[path][0]: np.array(self.names[path][1](np.asarray(buffer[...])))
                for path, buffer in nnx.to_flat_state(self.buffers)}

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        flat = list(nnx.to_flat_state(self.buffers))
        expected = {self.names[path][0]: self.names[path][1](np.empty(buffer[...].shape, np.float32)).shape
                    for path, buffer in flat}
        arrays = check_state(expected, state, getattr(self.model, "zoo_name", "model"))
        # Every buffer is converted to Flax's layout before any is replaced, so nothing is half-applied.
        self.buffers = nnx.from_flat_state([
            (path, buffer.replace(value=on_device(self.names[path][2](arrays[self.names[path][0]]), buffer[...].dtype)))
            for path, buffer in flat])

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


def _same(array: np.ndarray) -> np.ndarray:
    return array


def make_trainer(model: nnx.Module, momentum: float, weight_decay: float, seed: int) -> Trainer:
    check_model(model, nnx.Module, FRAMEWORK)
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)
