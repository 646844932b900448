"""The PyTorch zoo: `zoo.create_model(name, framework="torch")` builds from here. Inputs are NCHW.

This package hands on the names of the backend contract (`zoo.contract`): the functions of `backend`,
the families' builders (`families.FAMILIES`), benchmarking (`bench`), layer tables and operation counts
(`summary`) and training (`training`).
"""
from .backend import (FRAMEWORK, LAYOUT, bench_runner, build_model, calibrate_batchnorm, count_parameters,
                      export_weights, infer_output_shape, load_weights, loss_gradients, predict, randomize,
                      release_memory, version)
from .bench import bare_loop, reference_name, reference_variant
from .families import FAMILIES
from .summary import count_macs, layer_shapes, stage_profile, trainable_names
from .training import initial_weights, make_trainer

__all__ = ["FAMILIES", "FRAMEWORK", "LAYOUT", "bare_loop", "bench_runner", "build_model", "calibrate_batchnorm",
           "count_macs", "count_parameters", "export_weights", "infer_output_shape", "initial_weights",
           "layer_shapes", "load_weights", "loss_gradients", "make_trainer", "predict", "randomize",
           "reference_name", "reference_variant", "release_memory", "stage_profile", "trainable_names", "version"]
