"""Training parity (`compare train`): TensorFlow's Trainer."""
from __future__ import annotations

from typing import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from zoo.inputs import (check_images, check_labels, check_learning_rate, check_model, check_optimizer, check_seed,
                        model_classes)
from zoo.weights import MOMENTUM, check_state

from .weights import canonical_variables


class Trainer:
    """The contract's rule (g = grad + wd * w; buf = momentum * buf + g; w = w - lr * buf) written out
    inside the `tf.function` step. Keras' SGD (`m = momentum*m - lr*g`, decoupled `weight_decay`) folds
    the learning rate into the momentum buffer, which equals the rule only while the rate is constant.

    Its state is the buffers, under the canonical names in the canonical layout. Dropout draws from each
    Dropout layer's own `keras.random.SeedGenerator` (a state variable `[seed, counter]` that every
    training call reads and advances, inside the step's graph too), not from `tf.random.set_seed`:
    `reseed` sets every generator's state."""

    def __init__(self, model, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        variables = list(model.trainable_variables)
        self.buffers = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
        self.names = _state_names(model, variables)
        self.generators = seed_generators(model)
        buffers = self.buffers
        shape = (None, *model.input_shape[1:])
        spec = [tf.TensorSpec(shape, tf.float32), tf.TensorSpec((None,), tf.int64), tf.TensorSpec((), tf.float32)]

        @tf.function(input_signature=spec)
        def step(x, y, lr):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    y, model(x, training=True), from_logits=True))
            grads = tape.gradient(loss, variables)
            for variable, grad, buffer in zip(variables, grads, buffers):
                buffer.assign(momentum * buffer + (grad + weight_decay * variable))
                variable.assign_sub(lr * buffer)
            return loss

        self.step_fn = step
        self.infer = tf.function(lambda x: model(x, training=False), input_signature=spec[:1])
        # Trace now, so that graph building is not timed as training.
        step.get_concrete_function()
        self.infer.get_concrete_function()
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        seed = check_seed(seed)
        # Each generator its own stream, drawn from `seed` and its place in the model. stateless_dropout
        # reads both words modulo 2**31 - 1 (Keras' cast to int32), so they are drawn below that.
        states = [np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(2).astype(np.int64) % (2 ** 31 - 1)
                  for index in range(len(self.generators))]
        for generator, state in zip(self.generators, states):
            generator.state.assign(state.astype(generator.state.dtype))

    def state(self) -> dict[str, np.ndarray]:
        return {name: to_torch(buffer.numpy()).copy() for (name, to_torch, _), buffer in zip(self.names, self.buffers)}

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        expected = {name: to_torch(np.zeros(buffer.shape, np.float32)).shape
                    for (name, to_torch, _), buffer in zip(self.names, self.buffers)}
        arrays = check_state(expected, state, self.model.name)
        # Every buffer is converted to Keras' layout before the first is written, so nothing is half-applied.
        values = [np.asarray(from_torch(arrays[name]), buffer.dtype.as_numpy_dtype)
                  for (name, _, from_torch), buffer in zip(self.names, self.buffers)]
        for buffer, value in zip(self.buffers, values):
            buffer.assign(value)

    def prepare(self, x: np.ndarray):
        x = check_images(x, getattr(self.model, "zoo_signature", None))
        return np.ascontiguousarray(np.transpose(np.asarray(x, np.float32), (0, 2, 3, 1)))

    def labels(self, y: np.ndarray):
        return check_labels(y, None, model_classes(self.model))

    def step(self, x, y, lr: float) -> float:
        lr = check_learning_rate(lr)
        return float(self.step_fn(tf.constant(x), tf.constant(y), tf.constant(lr, tf.float32)))

    def logits(self, x) -> np.ndarray:
        return self.infer(tf.constant(x)).numpy()


def _state_names(model: keras.Model, variables: list) -> list[tuple[str, Callable, Callable]]:
    """(state name, Keras layout -> canonical, canonical -> Keras layout) of each trainable variable:
    its canonical name, or its Keras path where the canonical format has none."""
    canonical = {id(variable): (name, to_torch, from_torch)
                 for name, (variable, to_torch, from_torch) in canonical_variables(model).items()}
    return [(MOMENTUM + canonical[id(v)][0], *canonical[id(v)][1:]) if id(v) in canonical
            else (MOMENTUM + v.path, _same, _same) for v in variables]


def _same(array: np.ndarray) -> np.ndarray:
    return array


def seed_generators(model: keras.Model) -> list:
    """Every `keras.random.SeedGenerator` of the model's layers (Dropout's), in the model's layer order."""
    found, seen = [], set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator) not in seen:
                seen.add(id(generator))
                found.append(generator)
    return found


def make_trainer(model, momentum: float, weight_decay: float, seed: int) -> Trainer:
    check_model(model, keras.Model, "tf")
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)
