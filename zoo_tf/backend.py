"""The TensorFlow/Keras backend: the contract's functions (`zoo.contract`). Inputs are NHWC.

Every layer that holds weights is named after the PyTorch module it mirrors (`features.0`,
`layer1.0.conv1`), so the canonical weight names follow from the layer names alone.
"""
from __future__ import annotations

import gc
import os
from typing import Mapping

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.contract import family_builder  # noqa: E402
from zoo.inputs import (InputSignature, check_images, check_input_shape, check_labels, check_model,  # noqa: E402
                        model_classes)
from zoo.registry import FamilyConfig, ModelSpec  # noqa: E402
from zoo.weights import check_mapping  # noqa: E402

from .families import FAMILIES  # noqa: E402
from .model import LAYOUT, ZooModel  # noqa: E402, F401
from .weights import canonical_variables  # noqa: E402

FRAMEWORK = "tf"


def version() -> str:
    return tf.__version__


def build_model(spec: ModelSpec, config: FamilyConfig, *, num_classes: int, in_channels: int,
                signature: InputSignature, dtype: str = "float32") -> keras.Model:
    build = family_builder(FAMILIES, FRAMEWORK, spec.family)
    # Keras takes layers' dtype from the global policy when they are made; set it for this build only.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        model = build(config, num_classes=num_classes, in_channels=in_channels)
    finally:
        keras.config.set_dtype_policy(previous)
    model.name = spec.name
    model.zoo_signature = signature
    return model


def _inputs(model: keras.Model, images: np.ndarray) -> tf.Tensor:
    """An NCHW numpy batch, checked whole at the edge (`zoo.inputs.check_images`), as an NHWC tensor of
    the model's input dtype."""
    check_model(model, keras.Model, FRAMEWORK)
    images = check_images(images, getattr(model, "zoo_signature", None))
    return tf.constant(np.transpose(images, (0, 2, 3, 1)), dtype=model.inputs[0].dtype)


def count_parameters(model: keras.Model) -> tuple[int, int]:
    """(trainable parameters, all weights including BatchNorm moving statistics)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = sum(int(np.prod(w.shape)) for w in model.weights)
    return trainable, total


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """The canonical mapping (PyTorch names and layouts) of a zoo Keras model."""
    check_model(model, keras.Model, FRAMEWORK)
    return {name: to_torch(variable.numpy()) for name, (variable, to_torch, _) in canonical_variables(model).items()}


def load_weights(model: keras.Model, mapping: Mapping[str, np.ndarray]) -> None:
    """Load a canonical mapping whole or not at all: one error names every missing, unexpected,
    mis-shaped and mis-typed tensor, and leaves the model as it was."""
    check_model(model, keras.Model, FRAMEWORK)
    variables = canonical_variables(model)
    expected = {name: to_torch(np.zeros(v.shape, np.float32)).shape for name, (v, to_torch, _) in variables.items()}
    arrays = check_mapping(expected, mapping, model.name)
    # Every tensor is converted to Keras' layout before the first one is written, so nothing can fail halfway.
    values = {name: from_torch(np.asarray(arrays[name], dtype=variable.dtype))
              for name, (variable, _, from_torch) in variables.items()}
    for name, (variable, _, _) in variables.items():
        variable.assign(values[name])


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Logits for an NCHW batch of finite real numbers (transposed to NHWC here), in inference mode."""
    return np.asarray(model(_inputs(model, images), training=False))


def infer_output_shape(model: keras.Model, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape for an NCHW input shape, traced symbolically (no arithmetic is done)."""
    check_model(model, keras.Model, FRAMEWORK)
    n, c, h, w = check_input_shape(input_shape, getattr(model, "zoo_signature", None))
    return tuple(model.compute_output_spec(keras.KerasTensor((n, h, w, c))).shape)

def loss_gradients(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Cross-entropy of one training-mode forward pass and its gradient for every trainable canonical
    tensor, in PyTorch layout."""
    nhwc = _inputs(model, images)
    labels = check_labels(labels, int(nhwc.shape[0]), model_classes(model))
    trainable = {name: entry for name, entry in canonical_variables(model).items() if entry[0].trainable}
    with tf.GradientTape() as tape:
        logits = model(nhwc, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            tf.constant(labels), logits, from_logits=True))
    grads = tape.gradient(loss, [variable for variable, _, _ in trainable.values()])
    return float(loss), {
        name: (None if grad is None else to_torch(np.asarray(tf.convert_to_tensor(grad))))
        for (name, (_, to_torch, _)), grad in zip(trainable.items(), grads)
    }


def release_memory() -> None:
    """Drop Keras' graph state, which otherwise grows with every model built in this process."""
    keras.backend.clear_session()
    gc.collect()


def bench_runner(device: str, options: dict):
    from .bench import Runner

    return Runner(device, options)
