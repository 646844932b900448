"""The zoo's Keras model, and `functional`, which makes a family's graph into the contract's builder."""
from __future__ import annotations

from typing import Callable

import keras

from zoo.inputs import InputSignature

LAYOUT = "NHWC"


class ZooModel(keras.Model):
    """A functional Keras model that checks its input once, at the edge, against the spec's signature."""

    zoo_signature: InputSignature | None = None

    def __call__(self, inputs, *args, **kwargs):
        if self.zoo_signature is not None and hasattr(inputs, "shape"):
            self.zoo_signature.check(tuple(inputs.shape), LAYOUT)
        return super().__call__(inputs, *args, **kwargs)


def functional(network: Callable) -> Callable[..., ZooModel]:
    """The builder of the contract, `build(config, *, num_classes, in_channels)`, for a family whose graph
    `network(inputs, config, num_classes)` maps a `keras.Input` to the logits (Keras' functional API)."""

    def build(config, *, num_classes: int, in_channels: int) -> ZooModel:
        size = config.fixed_input_size()  # None: any size the architecture allows
        # The input takes the dtype policy's type, as the layers do (`build_model` sets it for one build).
        inputs = keras.Input(shape=(size, size, in_channels), dtype=keras.config.dtype_policy().variable_dtype,
                             name="images")
        return ZooModel(inputs, network(inputs, config, num_classes))

    build.__doc__ = f"The Keras model of `{network.__module__}.{network.__name__}`."
    return build
