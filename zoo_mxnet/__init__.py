"""The MXNet Gluon zoo: `zoo.create_model(name, framework="mxnet")` builds from here. Inputs are NCHW.

This package hands on the names of the backend contract (`zoo.contract`): the functions of `backend`,
the families' builders (`families.FAMILIES`), benchmarking (`bench`), layer tables (`summary`) and
training (`training`). `_compat` comes first: it puts back the NumPy names MXNet reads at import.
"""
from . import _compat  # noqa: F401  (must run before mxnet is imported)
from .backend import (FRAMEWORK, LAYOUT, bench_runner, build_model, canonical_parameters, count_parameters,
                      export_weights, infer_output_shape, load_weights, loss_gradients, predict, release_memory,
                      version)
from .bench import bare_loop, reference_name, reference_variant
from .families import FAMILIES
from .summary import layer_shapes, trainable_names
from .training import forward_backward, make_trainer

__all__ = ["FAMILIES", "FRAMEWORK", "LAYOUT", "bare_loop", "bench_runner", "build_model", "canonical_parameters",
           "count_parameters", "export_weights", "forward_backward", "infer_output_shape", "layer_shapes",
           "load_weights", "loss_gradients", "make_trainer", "predict", "reference_name", "reference_variant",
           "release_memory", "trainable_names", "version"]
