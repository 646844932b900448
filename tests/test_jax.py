"""What only the JAX zoo has: pure jitted steps beside the module, eager and jitted calls alike,
mixed precision on a CPU, and DenseNet's recomputation visible in the traced backward pass."""
from __future__ import annotations

import numpy as np
import pytest

import zoo

pytestmark = pytest.mark.jax
jax = pytest.importorskip("jax")  # the suite's environment has it: `-m jax` selects these tests
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")
zoo_jax = pytest.importorskip("zoo_jax")
from zoo_jax import steps  # noqa: E402

SMALL_DENSENET = dict(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2, num_classes=5)


def images(batch=2, size=32, channels=3, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, channels, size, size)).astype(np.float32)


def randomized(name, **knobs):
    """A JAX model carrying PyTorch's randomised weights (BatchNorm statistics included)."""
    torch_backend = zoo.backend("torch")
    weights = torch_backend.export_weights(torch_backend.randomize(zoo.create_model(name, "torch", **knobs), seed=4))
    model = zoo.create_model(name, "jax", **knobs)
    zoo_jax.load_weights(model, weights)
    return model


def test_eager_call_jitted_predict_and_pure_inference_agree():
    model = randomized("resnet18", num_classes=6)
    x = images()
    predicted = zoo_jax.predict(model, x)
    model.eval()
    eager = np.asarray(model(jnp.asarray(x.transpose(0, 2, 3, 1))))
    forward, params, rest = steps.inference(model)
    pure = np.asarray(jax.jit(forward)(params, rest, jnp.asarray(x.transpose(0, 2, 3, 1))))
    np.testing.assert_allclose(predicted, eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pure, eager, rtol=1e-5, atol=1e-5)


def test_predict_and_gradients_restore_the_models_mode():
    model = zoo.create_model("densenet121", "jax", **SMALL_DENSENET)
    assert zoo_jax.is_training(model)  # built in training mode, as a torch.nn.Module is
    zoo_jax.predict(model, images(size=8))
    assert zoo_jax.is_training(model)
    model.eval()
    zoo_jax.loss_gradients(model, images(size=8), np.array([0, 1]))
    assert not zoo_jax.is_training(model)


def test_batchnorm_running_statistics_follow_pytorch():
    # One training-mode pass: PyTorch's momentum and unbiased running variance, in Flax's convention.
    torch_backend = zoo.backend("torch")
    reference = torch_backend.randomize(zoo.create_model("resnet18", "torch", num_classes=4), seed=7)
    weights = torch_backend.export_weights(reference)
    model = zoo.create_model("resnet18", "jax", num_classes=4)
    zoo_jax.load_weights(model, weights)
    x, y = images(batch=4, seed=8), np.arange(4)
    torch_backend.loss_gradients(reference, x, y)
    zoo_jax.loss_gradients(model, x, y)
    expected, got = torch_backend.export_weights(reference), zoo_jax.export_weights(model)
    for key in ("bn1.running_mean", "bn1.running_var", "layer4.1.bn2.running_var"):
        assert not np.allclose(expected[key], weights[key])  # a real update happened
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_bfloat16_training_step_keeps_float32_state_and_lowers_the_loss():
    model = zoo.create_model("lenet5", "jax", num_classes=10)
    step, params, rest, buffers = steps.train_step(model, momentum=0.9, weight_decay=5e-4, compute_dtype=jnp.bfloat16)
    step = jax.jit(step, donate_argnums=(0, 1, 2))
    x = jnp.asarray(images(batch=16, channels=1, seed=2).transpose(0, 2, 3, 1))
    y = jnp.asarray(np.arange(16) % 10, jnp.int32)
    losses = []
    for _ in range(8):  # the same batch again and again: the loss must fall
        params, rest, buffers, loss = step(params, rest, buffers, x, y, jnp.asarray(0.05, jnp.float32))
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    assert {leaf.dtype for leaf in jax.tree.leaves(buffers)} == {jnp.dtype(jnp.float32)}


def test_bfloat16_inference_is_close_to_float32():
    model = randomized("mobilenet_v2", num_classes=5, width_mult=0.5)
    x = jnp.asarray(images(seed=3).transpose(0, 2, 3, 1))
    forward, params, rest = steps.inference(model)
    full = np.asarray(jax.jit(forward)(params, rest, x))
    forward, params, rest = steps.inference(model, compute_dtype=jnp.bfloat16)
    half = np.asarray(jax.jit(forward)(params, rest, x), np.float32)
    assert np.linalg.norm(half - full) / np.linalg.norm(full) < 5e-2  # bfloat16 keeps 8 bits of mantissa


def _count(jaxpr, primitive: str) -> int:
    """Equations of `primitive` in a traced function, those of nested jaxprs included."""
    count = 0
    for equation in jaxpr.eqns:
        count += equation.primitive.name == primitive
        for value in equation.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(sub, "eqns"):
                    count += _count(sub, primitive)
    return count


def test_memory_efficient_densenet_recomputes_in_the_backward_pass():
    x = jnp.asarray(images(size=8).transpose(0, 2, 3, 1))
    counts = {}
    for memory_efficient in (False, True):
        model = zoo.create_model("densenet121", "jax", memory_efficient=memory_efficient, **SMALL_DENSENET)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(params, graphdef=graphdef, rest=rest):
            # copy=True: Flax 0.12 writes BatchNorm statistics only into Variables made in this trace
            return zoo_jax.cross_entropy(nnx.merge(graphdef, params, rest, copy=True)(x), jnp.array([0, 1]))

        traced = jax.make_jaxpr(jax.grad(loss))(params).jaxpr
        counts[memory_efficient] = {op: _count(traced, op) for op in ("rsqrt", "max")}  # BatchNorm, ReLU
    # Each dense layer's first BatchNorm and ReLU run once more, in the backward pass, instead of their
    # outputs being kept (its 1x1 convolution's backward needs only its input, which they recompute).
    layers = sum(SMALL_DENSENET["block_config"])
    for op in ("rsqrt", "max"):
        assert counts[True][op] - counts[False][op] == layers, op


def test_an_nchw_batch_given_to_the_module_is_a_clear_error():
    model = zoo.create_model("resnet18", "jax")
    with pytest.raises(zoo.InputShapeError, match="NHWC"):
        model(jnp.zeros((2, 3, 32, 32)))
    with pytest.raises(zoo.InputShapeError, match="NHWC"):
        nnx.jit(lambda m, x: m(x))(model, jnp.zeros((2, 3, 32, 32)))
