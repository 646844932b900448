"""The library's edges: every public entry point checks its arguments and says in one line what was
expected and what came; weights load whole or not at all; non-finite images are refused alike in
every framework. Cheap by design: LeNet-5 and tiny knob variants, errors raised before any compute."""
from __future__ import annotations

import re

import numpy as np
import pytest

import zoo
from conftest import framework_params

LENET_SIZE = (1, 32, 32)
# A ResNet with max pooling in its stem, two narrow one-block stages: built in a moment everywhere.
TINY_RESNET = {"layers": (1, 1), "widths": (8, 16), "num_classes": 3}


@pytest.fixture(params=framework_params())
def framework(request):
    try:
        zoo.backend(request.param)
    except zoo.FrameworkUnavailableError as error:
        pytest.skip(str(error))
    return request.param


@pytest.fixture
def lenet(model_cache, framework):
    return model_cache.get(framework, "lenet5")


def images(batch: int = 2, shape=LENET_SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


# ---------------------------------------------------------------- registry entry points

@pytest.mark.core
@pytest.mark.parametrize("given, error, message", [
    (["lenet5"], TypeError, r"name must be one model name \(a string such as 'resnet50'\), got \['lenet5'\]"),
    (None, TypeError, "name must be one model name .*got None"),
    (5, TypeError, "name must be one model name .*got 5"),
    ("resnet*", zoo.UnknownModelError, r"got the pattern 'resnet\*', which matches 6 models \(resnet18, resnet34, "),
    ("nothing*", zoo.UnknownModelError, r"pattern 'nothing\*', which matches no model"),
])
def test_a_model_name_must_be_one_registered_name(given, error, message):
    for call in (lambda: zoo.get_spec(given), lambda: zoo.create_model(given, "torch")):
        with pytest.raises(error, match=message):
            call()


@pytest.mark.core
@pytest.mark.parametrize("framework_name, error, message", [
    (["torch"], TypeError, r"framework must be a framework name \(one of torch, tf, mxnet, jax\), got \['torch'\]"),
    (None, TypeError, "framework must be a framework name .*got None"),
    ("pytorch", ValueError, "unknown framework 'pytorch'; expected one of torch, tf, mxnet, jax"),
])
def test_a_framework_must_be_a_registered_name(framework_name, error, message):
    with pytest.raises(error, match=message):
        zoo.create_model("lenet5", framework_name)


@pytest.mark.core
@pytest.mark.parametrize("pattern", [None, 3, ["resnet*"]])
def test_list_models_takes_a_string_pattern(pattern):
    with pytest.raises(TypeError, match=re.escape(f"pattern must be a string such as 'resnet*', got {pattern!r}")):
        zoo.list_models(pattern)


@pytest.mark.core
@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": True}, "num_classes must be a positive integer, got True"),
    ({"num_classes": np.bool_(True)}, "num_classes must be a positive integer, got "),
    ({"num_classes": 10.0}, "num_classes must be a positive integer, got 10.0"),
    ({"num_classes": "10"}, "num_classes must be a positive integer, got '10'"),
    ({"num_classes": -3}, "num_classes must be a positive integer, got -3"),
    ({"num_classes": 10**9}, r"num_classes must be a positive integer at most 100,000 \(zoo.registry.MAX_CLASSES\), got 1,000,000,000"),
    ({"in_channels": 2.0}, "in_channels must be a positive integer, got 2.0"),
    ({"in_channels": np.int64(10**6)}, r"in_channels must be a positive integer at most 1,024 .*got 1,000,000"),
    ({"dtype": "int8"}, "dtype must be one of 'float32', 'float64'; got 'int8'"),
])
def test_sizes_are_checked_before_the_framework_is_touched(monkeypatch, kwargs, message):
    def no_backend(framework):
        raise AssertionError("the framework was imported before the arguments were checked")

    monkeypatch.setattr(zoo.registry, "backend", no_backend)
    with pytest.raises(ValueError, match=message):
        zoo.create_model("vgg16", "torch", **kwargs)


@pytest.mark.core
@pytest.mark.parametrize("model, overrides, message", [
    ("mobilenet_v2", {"width_mult": 0}, "width_mult must be a positive number, got 0"),
    ("mobilenet_v2", {"width_mult": -0.5}, "width_mult must be a positive number, got -0.5"),
    ("mobilenet_v2", {"width_mult": "0.5"}, "width_mult must be a finite real number, got '0.5'"),
    ("mobilenet_v2", {"width_mult": True}, "width_mult must be a finite real number, got True"),
    ("mobilenet_v2", {"width_mult": float("inf")}, "width_mult must be a finite real number, got inf"),
    ("mobilenet_v2", {"width_mult": float("nan")}, "width_mult must be a finite real number, got nan"),
    ("densenet121", {"growth_rate": 2.5}, "growth_rate must be an integer, got 2.5"),
    ("densenet121", {"growth_rate": 0}, "growth_rate must be a positive integer, got 0"),
    ("densenet121", {"block_config": 4}, "block_config must be a tuple of integers, got 4"),
    ("densenet121", {"block_config": (4, "4")}, r"block_config must be a tuple of integers, got \(4, '4'\): block_config\[1\] is '4', not an integer"),
    ("densenet121", {"block_config": (4, 0)}, "each entry of block_config must be a positive integer, got 0"),
    ("densenet121", {"block_config": ()}, "block_config needs at least one dense block"),
    ("densenet121", {"bn_size": False}, "bn_size must be an integer or None, got False"),
    ("densenet121", {"memory_efficient": 1}, "memory_efficient must be True or False, got 1"),
    ("densenet121", {"drop_rate": 1.0}, r"drop_rate must be a probability in \[0, 1\), got 1.0"),
    ("lenet5", {"dropout": -0.1}, r"dropout must be a probability in \[0, 1\), got -0.1"),
    ("lenet5", {"dropout": True}, "dropout must be a finite real number, got True"),
    ("lenet5", {"padding": 1.5}, "padding must be an integer, got 1.5"),
    ("lenet5", {"channels": (6, 16, 32)}, r"channels must be a tuple of 2 integers, got \(6, 16, 32\)"),
    ("resnet18", {"stride_in_1x1": "yes"}, "stride_in_1x1 must be True or False"),
    ("resnet18", {"stem": None}, "stem must be a string, got None"),
    ("shufflenet_v2_x1_0", {"bn_momentum": 5.0}, r"bn_momentum .* must be in \(0, 1\], got 5.0"),
    ("googlenet", {"inception": ((1, 2), (3,), (4,))}, "each inception module is"),
    ("googlenet", {"stage_pools": ((3, 2, 1), (2, 2))}, r"each of stage_pools is \(kernel, stride\), got \(3, 2, 1\)"),
    ("mobilenet_v1", {"blocks": ((64, 1, 1),)}, r"each V1 block row is \(channels, stride\)"),
    ("mobilenet_v3_small", {"blocks": ((3, 16, 16, 1, "relu", 2),)},
     r"blocks must be a tuple of \(integer, integer, integer, bool, string, integer\) tuples, .*"
     r"blocks\[0\]\[3\] is 1, not True or False"),
    # Absurd sizes fail by name, not in an allocation.
    ("mobilenet_v2", {"width_mult": 1000}, r"width_mult must be at most 8.0 \(zoo.registry.MAX_MULTIPLIER\), got 1000"),
    ("efficientnet_b0", {"depth_mult": 9.0}, "depth_mult must be at most 8.0"),
    ("densenet121", {"growth_rate": 10**6}, r"growth_rate must be at most 16,384 \(zoo.registry.MAX_KNOB_INTEGER\), got 1,000,000"),
    ("vgg11", {"hidden": (4096, 10**5)}, r"hidden must hold integers of at most 16,384 .*got hidden\[1\] = 100,000"),
    ("mobilenet_v1", {"blocks": ((64, 1), (10**9, 2))}, r"got blocks\[1\]\[0\] = 1,000,000,000"),
])
def test_family_knobs_are_checked_by_the_spec(model, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.get_spec(model).configure(**overrides)


@pytest.mark.core
def test_numpy_scalars_and_lists_are_plain_knobs():
    config = zoo.get_spec("densenet121").configure(
        growth_rate=np.int64(12), block_config=[np.int32(2), 2], compression=np.float32(0.5), conv_bias=np.bool_(True))
    assert config.block_config == (2, 2) and type(config.block_config[0]) is int
    assert type(config.growth_rate) is int and type(config.compression) is float and config.conv_bias is True
    hash(config)  # frozen and hashable, as every config


# ---------------------------------------------------------------- weight files and mappings

@pytest.mark.core
def test_weight_mapping_reports_every_problem_under_one_summary():
    expected = {"a.weight": (2, 3), "a.bias": (2,), "b.weight": (4,), "c.weight": (1,), "d.weight": (1,),
                "e.weight": (1,), "f.weight": (1,)}
    mapping = {"a.weight": np.zeros((2, 3), np.float32), "b.weight": np.zeros(4, np.complex64),
               "c.weight": np.zeros(1, np.int64), "d.weight": np.zeros(1, bool), "e.weight": [0.0],
               "f.weight": np.zeros(2, np.float32), "g.weight": np.zeros(1, np.float32), 7: np.zeros(1)}
    with pytest.raises(zoo.WeightMismatchError) as error:
        zoo.weights.check_mapping(expected, mapping, "net")
    lines = str(error.value).splitlines()
    assert lines[0] == "weights do not fit net (7 tensors), nothing was loaded: 1 missing, 2 unexpected, 1 mis-shaped, 4 wrong type"
    assert len(lines) == 1 + 8
    text = "\n".join(lines[1:])
    for part in ("missing: a.bias (expected shape (2,))", "unexpected: g.weight", "unexpected: 7 (names are strings)",
                 "mis-shaped: f.weight: expected (1,), got (2,)", "b.weight: dtype complex64: expected real floating point",
                 "imaginary part", "c.weight: dtype int64", "d.weight: dtype bool", "e.weight: not an array but list"):
        assert part in text, part


@pytest.mark.core
def test_weight_mapping_must_be_a_mapping():
    with pytest.raises(TypeError, match=r"mapping must be a mapping of canonical weight names .*got str"):
        zoo.weights.check_mapping({"a": (1,)}, "weights.safetensors")


@pytest.mark.core
def test_a_good_mapping_comes_back_as_arrays_in_model_order():
    arrays = zoo.weights.check_mapping({"a": (2,), "b": (1,)}, {"b": np.ones(1, np.float16), "a": np.zeros(2)})
    assert list(arrays) == ["a", "b"] and arrays["b"].dtype == np.float16


@pytest.mark.core
def test_weight_file_errors_name_the_path(tmp_path):
    with pytest.raises(zoo.WeightFileError, match=f"weight file '{tmp_path}' is a folder, not a safetensors file"):
        zoo.weights.load(tmp_path)
    with pytest.raises(zoo.WeightFileError, match="absent.safetensors' does not exist"):
        zoo.weights.load(tmp_path / "absent.safetensors")
    (tmp_path / "bad.safetensors").write_text("{not json")
    with pytest.raises(zoo.WeightFileError, match=r"bad.safetensors' \(9 bytes\) is not a readable safetensors weight file"):
        zoo.weights.load(tmp_path / "bad.safetensors")
    with pytest.raises(TypeError, match="path must be a file path .*got dict"):
        zoo.weights.load({"a": np.zeros(1)})


@pytest.mark.core
def test_saving_refuses_what_loading_would(tmp_path):
    with pytest.raises(zoo.WeightMismatchError, match=r"(?s)cannot save 1 of 2 weights.*b: dtype complex128"):
        zoo.weights.save(tmp_path / "w.safetensors", {"a": np.zeros(1, np.float32), "b": np.zeros(1, complex)})
    with pytest.raises(zoo.WeightFileError, match="folder .* does not exist"):
        zoo.weights.save(tmp_path / "no" / "w.safetensors", {"a": np.zeros(1, np.float32)})
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- per framework: weights

@pytest.mark.parametrize("damage", ["shape", "complex", "integer", "not an array"])
def test_a_failing_load_leaves_the_model_as_it_was(lenet, framework, damage):
    backend = zoo.backend(framework)
    before = backend.export_weights(lenet)
    rng = np.random.default_rng(1)
    mapping = {name: rng.standard_normal(array.shape).astype(array.dtype) for name, array in before.items()}
    last = list(mapping)[-1]
    mapping[last] = {"shape": np.zeros((*mapping[last].shape, 2), np.float32), "complex": mapping[last] + 1j,
                     "integer": np.ones(mapping[last].shape, np.int32), "not an array": mapping[last].tolist()}[damage]
    with pytest.raises(zoo.WeightMismatchError, match=f"(?s)nothing was loaded: 1 .*{last}"):
        backend.load_weights(lenet, mapping)
    after = backend.export_weights(lenet)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    # The same mapping with its last tensor mended loads, and changes every tensor.
    mapping[last] = rng.standard_normal(before[last].shape).astype(np.float32)
    backend.load_weights(lenet, mapping)
    loaded = backend.export_weights(lenet)
    for name in before:
        np.testing.assert_allclose(loaded[name], mapping[name], rtol=1e-6, err_msg=name)
    backend.load_weights(lenet, before)


def test_load_weights_refuses_a_non_mapping(lenet, framework):
    with pytest.raises(TypeError, match="mapping must be a mapping of canonical weight names"):
        zoo.backend(framework).load_weights(lenet, list(zoo.backend(framework).export_weights(lenet).values()))


# ---------------------------------------------------------------- per framework: predict and loss_gradients

def _nan(x):
    x = x.copy()
    x[1, 0, 5, 7] = np.nan
    return x


def _inf(x):
    x = x.copy()
    x[0, 0, 0, 0] = -np.inf
    return x


BAD_IMAGES = {
    "list": (lambda x: x.tolist(), zoo.InputError, r"images must be a numpy array \(batch, 1, H, W\) .*got list"),
    "empty": (lambda x: x[:0], zoo.InputShapeError, r"got an empty batch of shape \(0, 1, 32, 32\)"),
    "nhwc": (lambda x: x.transpose(0, 2, 3, 1), zoo.InputShapeError, "looks like an NHWC batch"),
    "channels": (lambda x: np.concatenate([x, x], axis=1), zoo.InputShapeError, "expected 1 input channels"),
    "3-d": (lambda x: x[0], zoo.InputShapeError, "expected a 4-d NCHW batch"),
    "strings": (lambda x: x.astype(str), zoo.InputError, "images must hold real numbers .*got dtype <U"),
    "objects": (lambda x: x.astype(object), zoo.InputError, "got dtype object"),
    "complex": (lambda x: x.astype(np.complex64), zoo.InputError, "got dtype complex64"),
    "booleans": (lambda x: x > 0, zoo.InputError, "got dtype bool"),
    "nan": (_nan, zoo.InputError, r"images must be finite: 1 value is NaN or infinite, the first \(nan\) at index \(1, 0, 5, 7\)"),
    "inf": (_inf, zoo.InputError, r"the first \(-inf\) at index \(0, 0, 0, 0\)"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_predict_refuses_bad_images(lenet, framework, case):
    damage, error, message = BAD_IMAGES[case]
    with pytest.raises(error, match=message):
        zoo.backend(framework).predict(lenet, damage(images()))


@pytest.mark.parametrize("case", ["nan", "empty", "complex"])
def test_loss_gradients_refuses_bad_images(lenet, framework, case):
    damage, error, message = BAD_IMAGES[case]
    with pytest.raises(error, match=message):
        zoo.backend(framework).loss_gradients(lenet, damage(images()), np.array([0, 1]))


def test_non_finite_images_are_refused_by_a_model_with_max_pooling(framework):
    # PyTorch's max pool propagates NaN, TensorFlow's and MXNet's drop it: refused alike everywhere.
    model = zoo.create_model("resnet18", framework, **TINY_RESNET)
    x = _nan(images(shape=(3, 32, 32)))
    with pytest.raises(zoo.InputError, match="images must be finite"):
        zoo.backend(framework).predict(model, x)
    with pytest.raises(zoo.InputError, match="images must be finite"):
        zoo.backend(framework).loss_gradients(model, x, np.array([0, 2]))


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 10]), r"labels must be class indices in \[0, 10\); got 10 at position 1"),
    (np.array([-1, -2]), r"in \[0, 10\); got -1 at position 0 \(2 out of range\)"),
    (np.array([0.0, 1.0]), r"labels must be one integer class index per image \(a 1-d array of 2\); got dtype float64"),
    (np.array([True, False]), "got dtype bool"),
    (np.array([0, 1, 2]), "got 3 labels for 2 images"),
    (np.array([[0], [1]]), r"got shape \(2, 1\)"),
    ("01", "labels must be one integer class index per image .*got str"),
])
def test_loss_gradients_refuses_bad_labels(lenet, framework, labels, message):
    with pytest.raises(zoo.InputError, match=message):
        zoo.backend(framework).loss_gradients(lenet, images(), labels)


def test_numpy_sizes_build_and_bound_the_labels(framework):
    backend = zoo.backend(framework)
    model = zoo.create_model("lenet5", framework, num_classes=np.int64(5), in_channels=np.int32(1), dtype=np.float32)
    assert backend.count_parameters(model) == zoo.backend("torch").count_parameters(zoo.create_model("lenet5", num_classes=5))
    # Integer images are real numbers too (uint8 pixels), converted to the model's dtype.
    assert backend.predict(model, np.zeros((1, *LENET_SIZE), np.uint8)).shape == (1, 5)
    with pytest.raises(zoo.InputError, match=r"in \[0, 5\); got 5 at position 0"):
        backend.loss_gradients(model, images(batch=1), np.array([5]))


@pytest.mark.parametrize("call", ["predict", "loss_gradients", "export_weights", "load_weights"])
def test_backend_functions_take_their_own_frameworks_models(framework, call):
    backend = zoo.backend(framework)
    not_a_model = images()  # an easy slip: the batch where the model goes
    args = {"predict": (images(),), "loss_gradients": (images(), np.array([0, 1])), "export_weights": (),
            "load_weights": ({},)}[call]
    with pytest.raises(TypeError, match=f"model must be a .* as zoo.create_model\\(name, '{framework}'\\) builds, got numpy.ndarray"):
        getattr(backend, call)(not_a_model, *args)


@pytest.mark.parametrize("shape, message", [
    ((2, 1, 32), "input_shape must be 4 positive integers, NCHW"),
    ((2, 1, 32, 0), "input_shape must be 4 positive integers"),
    ((2, 1, 32.0, 32), "input_shape must be 4 positive integers"),
    ("2x1x32x32", "input_shape must be 4 positive integers"),
    ((2, 3, 32, 32), "expected 1 input channels"),
    ((2, 1, 28, 28), "this model takes only 32x32 images"),
])
def test_infer_output_shape_checks_the_shape(lenet, framework, shape, message):
    with pytest.raises(zoo.InputShapeError, match=message):
        zoo.backend(framework).infer_output_shape(lenet, shape)


def test_infer_output_shape_takes_numpy_integers(lenet, framework):
    shape = tuple(np.int64(d) for d in (2, *LENET_SIZE))
    assert zoo.backend(framework).infer_output_shape(lenet, shape) == (2, 10)


@pytest.mark.parametrize("settings, error, message", [
    ({"momentum": 1.0}, ValueError, r"momentum must be a number in \[0, 1\), got 1.0"),
    ({"momentum": float("nan")}, ValueError, "momentum must be a number in"),
    ({"weight_decay": -1e-4}, ValueError, "weight_decay must be a finite number >= 0, got -0.0001"),
    ({"weight_decay": float("inf")}, ValueError, "weight_decay must be a finite number >= 0, got inf"),
    ({"seed": 1.5}, TypeError, "seed must be an integer, got float 1.5"),
])
def test_make_trainer_checks_the_optimizer(lenet, framework, settings, error, message):
    arguments = {"momentum": 0.9, "weight_decay": 1e-4, "seed": 0, **settings}
    with pytest.raises(error, match=message):
        zoo.backend(framework).make_trainer(lenet, **arguments)


def test_make_trainer_takes_its_own_frameworks_models(framework):
    with pytest.raises(TypeError, match="model must be a .* got numpy.ndarray"):
        zoo.backend(framework).make_trainer(images(), 0.9, 0.0, 0)


def test_a_trainer_checks_its_batches_and_rates(framework):
    model = zoo.create_model("lenet5", framework, num_classes=4)
    trainer = zoo.backend(framework).make_trainer(model, 0.9, 0.0, 0)
    with pytest.raises(zoo.InputError, match="images must be finite"):
        trainer.prepare(_nan(images()))
    with pytest.raises(zoo.InputShapeError, match="expected 1 input channels"):
        trainer.prepare(images(shape=(3, 32, 32)))
    with pytest.raises(zoo.InputError, match=r"labels must be class indices in \[0, 4\); got 4 at position 1"):
        trainer.labels(np.array([0, 4]))
    x, y = trainer.prepare(images()), trainer.labels(np.array([0, 3]))
    for rate in (float("nan"), -0.1, float("inf")):
        with pytest.raises(ValueError, match="the learning rate must be a finite number >= 0"):
            trainer.step(x, y, rate)
    assert np.isfinite(trainer.step(x, y, 0.01))
