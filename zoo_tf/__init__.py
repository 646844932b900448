"""The TensorFlow/Keras zoo: `zoo.create_model(name, framework="tf")` builds from here. Inputs are NHWC.

This package hands on the names of the backend contract (`zoo.contract`): the functions of `backend`,
the families' builders (`families.FAMILIES`), the model class (`model`), benchmarking (`bench`), layer
tables (`summary`) and training (`training`).
"""
from .backend import (FRAMEWORK, LAYOUT, bench_runner, build_model, count_parameters, export_weights,
                      infer_output_shape, load_weights, loss_gradients, predict, release_memory, version)
from .bench import bare_loop, reference_name, reference_variant
from .families import FAMILIES
from .model import ZooModel
from .summary import layer_shapes, trainable_names
from .training import make_trainer

__all__ = ["FAMILIES", "FRAMEWORK", "LAYOUT", "ZooModel", "bare_loop", "bench_runner", "build_model",
           "count_parameters", "export_weights", "infer_output_shape", "layer_shapes", "load_weights",
           "loss_gradients", "make_trainer", "predict", "reference_name", "reference_variant", "release_memory",
           "trainable_names", "version"]
