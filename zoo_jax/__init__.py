"""The JAX zoo, in Flax NNX: `zoo.create_model(name, framework="jax")` builds from here. Inputs are NHWC.

This package hands on the names of the backend contract (`zoo.contract`): the functions of `backend`,
the families' builders (`families.FAMILIES`), the model class and its canonical names (`network`),
benchmarking (`bench`) and training (`training`, with its jitted steps in `steps`). Importing it changes
nothing in the process: JAX's 64-bit mode is turned on only when a float64 model is built.
"""
from .backend import (FRAMEWORK, LAYOUT, FLAX_NEEDED, bench_runner, build_model, count_parameters, cross_entropy,
                      export_weights, infer_output_shape, is_training, layer_shapes, load_weights, loss_gradients,
                      predict, release_memory, trainable_names, version)
from .bench import bare_loop, reference_name, reference_variant
from .families import FAMILIES
from .network import Network, canonical_variables, named_modules
from .training import make_trainer

__all__ = ["FAMILIES", "FLAX_NEEDED", "FRAMEWORK", "LAYOUT", "Network", "bare_loop", "bench_runner", "build_model",
           "canonical_variables", "count_parameters", "cross_entropy", "export_weights", "infer_output_shape",
           "is_training", "layer_shapes", "load_weights", "loss_gradients", "make_trainer", "named_modules",
           "predict", "reference_name", "reference_variant", "release_memory", "trainable_names", "version"]
