"""The JAX backend, in Flax NNX: the contract's functions (`zoo.contract`). Inputs are NHWC.

Module trees mirror the PyTorch ones (`features.0`, `layer1.0.conv1`: see `zoo_jax.layers`), so the
canonical weight names follow from the module paths alone; kernels stay in Flax's layouts and are
converted on export and import.

Double precision (`dtype="float64"`) needs JAX's 64-bit mode, which is process-wide: `build_model`
turns it on when a float64 model is asked for, and not before, so that importing the zoo changes
nothing in a user's process. Every array the zoo makes names its dtype, so float32 models stay
float32 either way.
"""
from __future__ import annotations

import gc
from typing import Mapping

import flax
import jax

from zoo.errors import FrameworkUnavailableError

# Flax 0.12 keeps submodules in nnx.List and reads Variables with [...]; older Flax cannot build the zoo's
# modules (and 0.11 would treat a Sequential's children as static data).
FLAX_NEEDED = "0.12"
if tuple(map(int, flax.__version__.split(".")[:2])) < tuple(map(int, FLAX_NEEDED.split("."))):
    raise FrameworkUnavailableError(f"zoo_jax needs Flax {FLAX_NEEDED} or newer, found flax {flax.__version__}: "
                                    f"pip install 'flax>={FLAX_NEEDED}' (a pure-Python wheel)")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from zoo.contract import family_builder  # noqa: E402
from zoo.inputs import (InputSignature, check_images, check_input_shape, check_labels, check_model,  # noqa: E402
                        model_classes)
from zoo.registry import FamilyConfig, ModelSpec  # noqa: E402
from zoo.weights import check_mapping  # noqa: E402

from .families import FAMILIES  # noqa: E402
from .layers import Layer, on_device, recording  # noqa: E402
from .network import LAYOUT, Network, canonical_variables, named_modules  # noqa: E402, F401

FRAMEWORK = "jax"


def version() -> str:
    return f"{jax.__version__} (flax {flax.__version__})"


def build_model(spec: ModelSpec, config: FamilyConfig, *, num_classes: int, in_channels: int,
                signature: InputSignature, dtype: str = "float32") -> Network:
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    model = family_builder(FAMILIES, FRAMEWORK, spec.family)(config, num_classes=num_classes, in_channels=in_channels)
    if dtype != "float32":
        for _, node in nnx.iter_graph(model):
            if isinstance(node, (nnx.Param, nnx.BatchStat)):
                node.set_value(on_device(node[...], dtype))
    model.zoo_name = spec.name
    model.zoo_signature = signature
    return model


def count_parameters(model: nnx.Module) -> tuple[int, int]:
    """(trainable parameters, all state including BatchNorm running statistics; RNG state left out)."""
    trainable = sum(int(np.prod(v[...].shape)) for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param)))
    stats = sum(int(np.prod(v[...].shape)) for _, v in nnx.to_flat_state(nnx.state(model, nnx.BatchStat)))
    return trainable, trainable + stats


def trainable_names(model: nnx.Module) -> set[str]:
    return {name for name, (variable, *_) in canonical_variables(model).items() if isinstance(variable, nnx.Param)}


def export_weights(model: nnx.Module) -> dict[str, np.ndarray]:
    """The canonical mapping (PyTorch names and layouts)."""
    check_model(model, nnx.Module, FRAMEWORK)
    return {name: np.array(to_torch(np.asarray(variable[...])))
            for name, (variable, _, to_torch, _) in canonical_variables(model).items()}


def load_weights(model: nnx.Module, mapping: Mapping[str, np.ndarray]) -> None:
    """Load a canonical mapping whole or not at all: one error names every missing, unexpected,
    mis-shaped and mis-typed tensor, and leaves the model as it was."""
    check_model(model, nnx.Module, FRAMEWORK)
    variables = canonical_variables(model)
    expected = {name: to_torch(np.empty(variable[...].shape, np.float32)).shape
                for name, (variable, _, to_torch, _) in variables.items()}
    arrays = check_mapping(expected, mapping, getattr(model, "zoo_name", "model"))
    # Every tensor is converted to Flax's layout before the first one is written, so nothing can fail halfway.
    values = {name: on_device(from_torch(arrays[name]), variable[...].dtype)
              for name, (variable, _, _, from_torch) in variables.items()}
    for name, (variable, *_) in variables.items():
        variable.set_value(values[name])


# ---------------------------------------------------------------- running the model

def model_dtype(model: nnx.Module):
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    return leaves[0].dtype if leaves else jnp.float32


def inputs(model: nnx.Module, images: np.ndarray) -> jnp.ndarray:
    """An NCHW numpy batch as an NHWC array of the model's dtype, checked whole here, at the edge
    (`zoo.inputs.check_images`), rather than inside a jitted trace."""
    check_model(model, nnx.Module, FRAMEWORK)
    images = check_images(images, getattr(model, "zoo_signature", None))
    return on_device(np.transpose(images, (0, 2, 3, 1)), model_dtype(model))


def is_training(model: nnx.Module) -> bool:
    for module in nnx.iter_graph(model):
        node = module[1]
        if hasattr(node, "use_running_average"):
            return not node.use_running_average
        if hasattr(node, "deterministic"):
            return not node.deterministic
    return False


class _mode:
    """Run the model in train or eval mode within, restoring its mode after."""

    def __init__(self, model: nnx.Module, train: bool) -> None:
        self.model, self.train = model, train

    def __enter__(self):
        self.was = is_training(self.model)
        self.model.train() if self.train else self.model.eval()
        return self.model

    def __exit__(self, *exc) -> None:
        self.model.train() if self.was else self.model.eval()


@nnx.jit
def _forward(model: nnx.Module, x: jnp.ndarray) -> jnp.ndarray:
    return model(x)


def predict(model: nnx.Module, images: np.ndarray) -> np.ndarray:
    """Logits for an NCHW batch of finite real numbers (transposed to NHWC here), in inference mode.

    Jitted: one compilation of the whole model costs less than compiling its operations one by one
    eagerly (DenseNet-121 at 32x32 on a CPU: 4 s against 15 s), and models of the same structure and
    input shape share it. `zoo_jax.steps.inference` gives the pure function for one's own loops.
    """
    x = inputs(model, images)
    with _mode(model, train=False):
        return np.asarray(_forward(model, x))


def infer_output_shape(model: nnx.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape for an NCHW input shape, traced abstractly (no arithmetic is done)."""
    check_model(model, nnx.Module, FRAMEWORK)
    n, c, h, w = check_input_shape(input_shape, getattr(model, "zoo_signature", None))
    with _mode(model, train=False):
        out = jax.eval_shape(lambda x: model(x), jax.ShapeDtypeStruct((n, h, w, c), model_dtype(model)))
    return tuple(out.shape)


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Mean cross-entropy of integer labels, computed in at least float32."""
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


@nnx.jit
def _loss_and_gradients(model: nnx.Module, x: jnp.ndarray, y: jnp.ndarray):
    return nnx.value_and_grad(lambda net: cross_entropy(net(x), y))(model)


def loss_gradients(model: nnx.Module, images: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Cross-entropy of one training-mode forward pass and its gradient for every trainable canonical
    tensor, in PyTorch layout. BatchNorm statistics are updated as in a training step."""
    x = inputs(model, images)
    y = on_device(check_labels(labels, x.shape[0], model_classes(model)), np.int32)
    with _mode(model, train=True):
        loss, grads = _loss_and_gradients(model, x, y)
    flat = dict(nnx.to_flat_state(grads))
    out = {}
    for name, (variable, path, to_torch, _) in canonical_variables(model).items():
        if isinstance(variable, nnx.Param):
            grad = flat.get(path)
            out[name] = None if grad is None else np.array(to_torch(np.asarray(grad[...])))
    return float(loss), out


def layer_shapes(model: nnx.Module, input_shape: tuple[int, ...]) -> tuple[dict[str, tuple], dict[str, str]]:
    """Output shape (C, H, W for maps) and class name of every leaf module, by PyTorch module path."""
    n, c, h, w = input_shape
    leaves = [(name, module) for name, _, module in named_modules(model) if isinstance(module, Layer) and name]
    with _mode(model, train=False), recording() as recorded:
        out = jax.eval_shape(lambda x: model(x), jax.ShapeDtypeStruct((n, h, w, c), model_dtype(model)))
    shapes, kinds = {}, {}
    for name, module in leaves:
        kinds[name] = type(module).__name__
        if id(module) in recorded:
            shape = recorded[id(module)][1:]
            shapes[name] = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
    shapes[""] = tuple(out.shape[1:])
    return shapes, kinds


def bench_runner(device: str, options: dict):
    from .bench import Runner

    return Runner(device, options)


def release_memory() -> None:
    jax.clear_caches()
    gc.collect()
