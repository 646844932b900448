"""Every registered model in every framework: counts, shapes, gradients, weight files, input errors,
and equality with the PyTorch model on the same random weights."""
from __future__ import annotations

import numpy as np
import pytest

import zoo
from conftest import (FRAMEWORKS, FULLY_CHECKED, MODELS, OTHER_FRAMEWORKS, REPRESENTATIVES, framework_params,
                      random_images, small_size)

NUM_CLASSES = 7  # not any model's default, so a head that ignores num_classes shows
# The checks on small images use narrower dense heads where the canonical one holds 100M+ weights
# (VGG): the convolutions, which are what differ between frameworks, stay as they are, and a model
# with its full head is still built, counted and shape-checked by the tests at the default size.
LIGHT_HEADS = {name: {"hidden": (256, 256)} for name in MODELS if zoo.get_spec(name).family == "vgg"}


def small_knobs(name: str) -> dict:
    return {"num_classes": NUM_CLASSES, **LIGHT_HEADS.get(name, {})}


@pytest.fixture(params=framework_params())
def framework(request):
    return request.param


@pytest.fixture(params=FULLY_CHECKED)
def name(request):
    return request.param


@pytest.fixture(params=MODELS)
def any_name(request):
    """Every registered model, for the checks that need only the canonical build."""
    return request.param


def canonical(model_cache, framework, name):
    return model_cache.get(framework, name)


def small(model_cache, framework, name, variant="small"):
    return model_cache.get(framework, name, variant, **small_knobs(name))


def test_parameter_counts_match_spec(model_cache, framework, any_name):
    name = any_name
    spec = zoo.get_spec(name)
    trainable, total = zoo.backend(framework).count_parameters(canonical(model_cache, framework, name))
    assert (trainable, total) == (spec.params, spec.params_total)


def test_output_shape_at_default_size(model_cache, framework, any_name):
    name = any_name
    spec = zoo.get_spec(name)
    shape = zoo.backend(framework).infer_output_shape(canonical(model_cache, framework, name), (2, *spec.input_size))
    assert tuple(shape) == (2, spec.num_classes)


def test_forward_at_small_size(model_cache, framework, name):
    model = small(model_cache, framework, name)
    logits = zoo.backend(framework).predict(model, random_images(name))
    assert logits.shape == (2, NUM_CLASSES)
    assert np.isfinite(logits).all()


# Every model's backward pass in the reference framework; in the others, one model per family (their
# gradients are compared with the reference's in test_gradcheck, and their forward passes of every model
# in test_matches_pytorch_on_random_weights): a backward pass costs seconds per model there, compiled
# (XLA) or eager (TensorFlow's tape).
GRADIENT_CASES = [pytest.param(fw, name, marks=getattr(pytest.mark, fw), id=f"{fw}-{name}")
                  for name in FULLY_CHECKED for fw in FRAMEWORKS
                  if fw == zoo.REFERENCE_FRAMEWORK or name in REPRESENTATIVES]


@pytest.mark.parametrize("framework, name", GRADIENT_CASES)
def test_every_parameter_gets_a_finite_gradient(model_cache, framework, name):
    model = small(model_cache, framework, name)
    loss, grads = zoo.backend(framework).loss_gradients(model, random_images(name, seed=1), np.array([1, 3]))
    assert np.isfinite(loss)
    assert grads
    missing = [k for k, g in grads.items() if g is None]
    assert not missing, f"no gradient for {missing}"
    bad = [k for k, g in grads.items() if not np.isfinite(g).all()]
    assert not bad, f"non-finite gradient for {bad}"


# Every model's weights go through export and load in test_matches_pytorch_on_random_weights; the file
# format and a second instance are checked once per family.
@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
def test_weights_round_trip_through_a_file(model_cache, framework, name, tmp_path):
    backend = zoo.backend(framework)
    source = small(model_cache, framework, name)
    backend.load_weights(source, model_cache.random_weights(name, **small_knobs(name)))
    path = tmp_path / "weights.safetensors"
    zoo.weights.save(path, backend.export_weights(source))
    fresh = small(model_cache, framework, name, variant="fresh")
    backend.load_weights(fresh, zoo.weights.load(path))
    path.unlink()
    exported, reloaded = backend.export_weights(source), backend.export_weights(fresh)
    assert sorted(reloaded) == sorted(exported)
    for key in exported:
        np.testing.assert_array_equal(reloaded[key], exported[key], err_msg=key)
    images = random_images(name, seed=2)
    # Bit-equal weights; MXNet's oneDNN kernels may still round differently from one instance to another.
    np.testing.assert_allclose(backend.predict(fresh, images), backend.predict(source, images), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_matches_pytorch_on_random_weights(model_cache, framework, name):
    weights = model_cache.random_weights(name, **small_knobs(name))
    reference, model = small(model_cache, "torch", name), small(model_cache, framework, name)
    zoo.backend("torch").load_weights(reference, weights)
    zoo.backend(framework).load_weights(model, weights)
    exported = zoo.backend(framework).export_weights(model)  # the canonical weights back, bit for bit
    assert sorted(exported) == sorted(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    images = random_images(name, seed=5)  # the batch of the other checks: a compiled forward serves them all
    expected = zoo.backend("torch").predict(reference, images)
    got = zoo.backend(framework).predict(model, images)
    relative_error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert relative_error <= 1e-4
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_wrong_channel_count_is_a_clear_error(model_cache, framework, name):
    spec = zoo.get_spec(name)
    images = random_images(name)
    wrong = np.concatenate([images, images[:, :1]], axis=1)  # one channel too many
    with pytest.raises(zoo.InputShapeError, match=f"expected {spec.in_channels} input channels"):
        zoo.backend(framework).predict(small(model_cache, framework, name), wrong)


def test_too_small_image_is_a_clear_error(model_cache, framework, name):
    signature = zoo.get_spec(name).signature()
    size = signature.fixed_size - 1 if signature.fixed_size else signature.min_size - 1
    if size < 1:
        size = 0
    images = random_images(name, size=max(size, 1))[:, :, :size, :size]
    with pytest.raises(zoo.InputShapeError):
        zoo.backend(framework).predict(small(model_cache, framework, name), images)


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
def test_tf_eager_function_and_xla_agree(model_cache, name):
    import tensorflow as tf

    model = small(model_cache, "tf", name)
    images = tf.constant(np.transpose(random_images(name, seed=6), (0, 2, 3, 1)))
    eager = model(images, training=False).numpy()
    graph = tf.function(lambda x: model(x, training=False))(images).numpy()
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)(images).numpy()
    np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xla, eager, rtol=1e-4, atol=1e-4)


@pytest.mark.mxnet
@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
def test_mxnet_hybridized_model_agrees(model_cache, name):
    model = small(model_cache, "mxnet", name)
    import mxnet as mx  # after the backend, which restores numpy.bool for MXNet

    images = mx.nd.array(random_images(name, seed=7))
    imperative = model(images).asnumpy()
    model.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(model(images).asnumpy(), imperative, rtol=1e-5, atol=1e-5)
    with pytest.raises(zoo.InputShapeError):  # the input check outlives hybridization
        model(mx.nd.concat(images, images[:, :1], dim=1))


@pytest.mark.mxnet
@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
@pytest.mark.filterwarnings("ignore:Cannot decide type:UserWarning")  # SymbolBlock.imports takes no dtype
def test_mxnet_exported_model_agrees(model_cache, name, tmp_path):
    model = small(model_cache, "mxnet", name)
    import mxnet as mx

    images = mx.nd.array(random_images(name, seed=7))
    model.hybridize(static_alloc=True, static_shape=True)
    hybrid = model(images).asnumpy()
    prefix = str(tmp_path / name)
    model.export(prefix)
    imported = mx.gluon.SymbolBlock.imports(f"{prefix}-symbol.json", ["data"], f"{prefix}-0000.params")
    np.testing.assert_allclose(imported(images).asnumpy(), hybrid, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
@pytest.mark.parametrize("framework", framework_params())
def test_any_channel_count_and_class_count(model_cache, framework, name):
    spec = zoo.get_spec(name)
    in_channels = 4 if spec.in_channels != 4 else 2
    model = model_cache.get(framework, name, "other-io", num_classes=3, in_channels=in_channels)
    images = np.random.default_rng(8).standard_normal((2, in_channels, small_size(name), small_size(name)))
    assert zoo.backend(framework).predict(model, images.astype(np.float32)).shape == (2, 3)
    trainable, _ = zoo.backend(framework).count_parameters(model)
    reference, _ = zoo.backend("torch").count_parameters(
        model_cache.get("torch", name, "other-io", num_classes=3, in_channels=in_channels))
    assert trainable == reference


@pytest.mark.tf
def test_tf_training_step_updates_batchnorm_statistics_as_pytorch_does(model_cache):
    # PyTorch folds the unbiased batch variance into running_var; zoo_tf.layers.BatchNorm follows it.
    name = "resnet18"
    weights = model_cache.random_weights(name, **small_knobs(name))
    reference, model = small(model_cache, "torch", name), small(model_cache, "tf", name)
    images, labels = random_images(name, batch=4, seed=9), np.arange(4)
    updated = {}
    for framework, built in (("torch", reference), ("tf", model)):
        zoo.backend(framework).load_weights(built, weights)
        zoo.backend(framework).loss_gradients(built, images, labels)
        updated[framework] = zoo.backend(framework).export_weights(built)
    for key in ("bn1.running_var", "layer4.1.bn2.running_var", "layer4.1.bn2.running_mean"):
        assert not np.allclose(updated["torch"][key], weights[key])  # a real update happened
        np.testing.assert_allclose(updated["tf"][key], updated["torch"][key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", sorted(REPRESENTATIVES))
@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_float64_models_match_pytorch_to_double_precision(model_cache, framework, name):
    # In float64 the frameworks' only differences are rounding at ~1e-16: agreement to 1e-10 leaves
    # no room for an approximated operation (a padding, an epsilon, an activation's constant).
    torch_backend = zoo.backend("torch")
    options = {**small_knobs(name), "dtype": "float64"}
    reference = torch_backend.randomize(model_cache.get("torch", name, "float64", **options), seed=10)
    model = model_cache.get(framework, name, "float64", **options)
    zoo.backend(framework).load_weights(model, torch_backend.export_weights(reference))
    images = random_images(name, seed=11).astype(np.float64)
    expected = torch_backend.predict(reference, images)
    got = zoo.backend(framework).predict(model, images)
    assert got.dtype == np.float64
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= 1e-10
