"""The JAX zoo, in Flax NNX: `zoo.create_model(name, framework="jax")` builds from here. Inputs are NHWC.

Module trees mirror the PyTorch ones (`features.0`, `layer1.0.conv1`: see `zoo_jax.layers`), so the
canonical weight names follow from the module paths alone; kernels stay in Flax's layouts and are
converted on export and import.

Double precision (`dtype="float64"`) needs JAX's 64-bit mode, which is process-wide and must be set
before arrays are made: importing this package turns it on. Every array the zoo makes names its
dtype, so float32 models stay float32.
"""
from __future__ import annotations

import importlib
from typing import Iterator, Mapping

import flax
import jax

from zoo.errors import FrameworkUnavailableError

# Flax 0.12 keeps submodules in nnx.List and reads Variables with [...]; older Flax cannot build the zoo's
# modules (and 0.11 would treat a Sequential's children as static data).
FLAX_NEEDED = "0.12"
if tuple(map(int, flax.__version__.split(".")[:2])) < tuple(map(int, FLAX_NEEDED.split("."))):
    raise FrameworkUnavailableError(f"zoo_jax needs Flax {FLAX_NEEDED} or newer, found flax {flax.__version__}: "
                                    f"pip install 'flax>={FLAX_NEEDED}' (a pure-Python wheel)")

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from zoo.inputs import (InputSignature, check_images, check_input_shape, check_labels, check_model,  # noqa: E402
                        check_optimizer, model_classes)
from zoo.registry import FamilyConfig, ModelSpec  # noqa: E402
from zoo.weights import check_mapping  # noqa: E402

from .layers import Layer, on_device, recording  # noqa: E402

FRAMEWORK = "jax"
LAYOUT = "NHWC"
SEED = 0


class Network(nnx.Module):
    """A zoo model: checks its input once, at the edge, then runs the family's `forward`."""

    zoo_name: str = "model"
    zoo_signature: InputSignature | None = None

    def __call__(self, x):
        if self.zoo_signature is not None:
            self.zoo_signature.check(tuple(x.shape), LAYOUT)
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError


def version() -> str:
    return f"{jax.__version__} (flax {flax.__version__})"


def build_model(spec: ModelSpec, config: FamilyConfig, *, num_classes: int, in_channels: int,
                signature: InputSignature, dtype: str = "float32") -> Network:
    family = importlib.import_module(f"{__name__}.{spec.family}")
    model = family.build(config, num_classes=num_classes, in_channels=in_channels,
                         rngs=nnx.Rngs(params=SEED, dropout=SEED + 1))
    if dtype != "float32":
        for _, node in nnx.iter_graph(model):
            if isinstance(node, (nnx.Param, nnx.BatchStat)):
                node.set_value(on_device(node[...], dtype))
    model.zoo_name = spec.name
    model.zoo_signature = signature
    return model


# ---------------------------------------------------------------- module paths and canonical names

def named_modules(module: nnx.Module, prefix: str = "", path: tuple = ()) -> Iterator[tuple[str, tuple, nnx.Module]]:
    """(PyTorch module path, Flax graph path, module) for `module` and every module below it, in the
    order they were defined (which is torch's). A `Sequential` (an `nnx.List`) numbers its children as
    torch does, and Flax's path to them is the index. Private attributes (`_dropout`) stand for what
    torch calls as a function, so they name no module."""
    yield prefix, path, module
    for attribute, value in vars(module).items():
        if attribute.startswith("_") or not isinstance(value, nnx.Module):
            continue
        key = int(attribute) if isinstance(module, nnx.List) else attribute
        yield from named_modules(value, _join(prefix, attribute), (*path, key))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def canonical_variables(model: nnx.Module) -> dict[str, tuple]:
    """canonical name -> (variable, Flax graph path of the variable, to_torch, from_torch)."""
    found = {}
    for name, path, module in named_modules(model):
        if isinstance(module, Layer):
            for local, (variable, to_torch, from_torch) in module.canonical().items():
                attribute = next(k for k, v in vars(module).items() if v is variable)
                found[_join(name, local)] = (variable, (*path, attribute), to_torch, from_torch)
    return found


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


def make_trainer(model: nnx.Module, momentum: float, weight_decay: float, seed: int):
    from .training import Trainer

    check_model(model, nnx.Module, FRAMEWORK)
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)


def bench_runner(device: str, options: dict):
    from .bench import Runner

    return Runner(device, options)


def bare_loop(name: str, batch: int, threads: int | None):
    from .bench import bare_loop

    return bare_loop(name, batch, threads)


def reference_name(model: str) -> str | None:
    from .bench import reference_name

    return reference_name(model)


def reference_variant(model: str) -> str | None:
    from .bench import reference_variant

    return reference_variant(model)


def release_memory() -> None:
    import gc

    jax.clear_caches()
    gc.collect()


__all__ = [
    "FRAMEWORK", "LAYOUT", "Network", "bare_loop", "bench_runner", "build_model", "canonical_variables", "count_parameters",
    "export_weights", "infer_output_shape", "layer_shapes", "load_weights", "loss_gradients", "make_trainer",
    "named_modules", "predict",
    "reference_name", "reference_variant", "release_memory", "trainable_names", "version",
]
