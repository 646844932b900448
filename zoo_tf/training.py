"""Training parity (`compare train`): TensorFlow's Trainer."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.inputs import check_images, check_labels, check_learning_rate, check_model, check_optimizer, model_classes


class Trainer:
    """The contract's rule (g = grad + wd * w; buf = momentum * buf + g; w = w - lr * buf) written out
    inside the `tf.function` step. Keras' SGD (`m = momentum*m - lr*g`, decoupled `weight_decay`) folds
    the learning rate into the momentum buffer, which equals the rule only while the rate is constant."""

    def __init__(self, model, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        tf.random.set_seed(seed)  # dropout masks
        variables = list(model.trainable_variables)
        buffers = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in variables]
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


def make_trainer(model, momentum: float, weight_decay: float, seed: int) -> Trainer:
    check_model(model, keras.Model, "tf")
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)
