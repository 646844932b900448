"""MobileNet V1/V2/V3: width multipliers and tail knobs in all frameworks, torchvision key names,
PyTorch's activation slopes in TF and MXNet, and invalid knobs."""
from __future__ import annotations

import numpy as np
import pytest

import zoo
from zoo.arith import make_divisible
from conftest import OTHER_FRAMEWORKS, framework_params

# (model, knobs) -> (trainable, total) with 1000 classes. Sources: Keras applications (keras 3.15),
# `keras.applications.MobileNet(alpha=a)` / `MobileNetV2(alpha=a)` with weights=None at 224x224,
# whose layers and counts equal these models'. V3 variants have no published figure: they are only
# checked to agree across the three frameworks.
REFERENCE_COUNTS = {
    ("mobilenet_v1", (("width_mult", 0.25),)): (470_072, 475_544),
    ("mobilenet_v1", (("width_mult", 0.75),)): (2_585_560, 2_601_976),
    ("mobilenet_v2", (("width_mult", 0.5),)): (1_968_680, 1_987_224),
    ("mobilenet_v2", (("width_mult", 1.4),)): (6_108_776, 6_156_712),
}
CROSS_FRAMEWORK_ONLY = [
    ("mobilenet_v3_large", (("width_mult", 0.75),)),
    ("mobilenet_v3_small", (("reduced_tail", True), ("dilated", True))),
]


def _counts(name, framework, knobs, **kwargs):
    model = zoo.create_model(name, framework, **dict(knobs), **kwargs)
    return zoo.backend(framework).count_parameters(model)


@pytest.mark.parametrize("name,knobs", list(REFERENCE_COUNTS), ids=lambda v: str(v))
@pytest.mark.parametrize("framework", framework_params())
def test_width_variants_match_keras_applications(framework, name, knobs):
    assert _counts(name, framework, knobs) == REFERENCE_COUNTS[name, knobs]


@pytest.mark.parametrize("name,knobs", CROSS_FRAMEWORK_ONLY, ids=lambda v: str(v))
@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_v3_variants_count_the_same_everywhere(framework, name, knobs):
    expected = _counts(name, "torch", knobs, num_classes=10)
    assert _counts(name, framework, knobs, num_classes=10) == expected
    assert expected != _counts(name, "torch", (), num_classes=10)  # the knob changed something


VARIANTS = [
    ("mobilenet_v1", {"width_mult": 0.25}),
    ("mobilenet_v2", {"width_mult": 0.5}),
    ("mobilenet_v3_large", {"width_mult": 0.75}),
    # Dilated tail: depthwise 5x5 with dilation 2 and stride 1, halved channels.
    ("mobilenet_v3_small", {"reduced_tail": True, "dilated": True}),
]


@pytest.mark.parametrize("name,knobs", VARIANTS, ids=[f"{n}-{'-'.join(map(str, k.values()))}" for n, k in VARIANTS])
@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_variant_outputs_match_pytorch(framework, name, knobs):
    torch_backend = zoo.backend("torch")
    reference = torch_backend.randomize(zoo.create_model(name, "torch", num_classes=5, **knobs), seed=11)
    weights = torch_backend.export_weights(reference)
    images = np.random.default_rng(12).standard_normal((3, 3, 40, 40)).astype(np.float32)
    expected = torch_backend.predict(reference, images)
    backend = zoo.backend(framework)
    model = zoo.create_model(name, framework, num_classes=5, **knobs)
    backend.load_weights(model, weights)
    got = backend.predict(model, images)
    error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert error <= 1e-4, f"{framework}: relative error {error:.2e}"
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


# Keys and shapes of torchvision's checkpoints (mobilenet_v2-b0353104.pth, mobilenet_v3_large-8738ca79.pth,
# mobilenet_v3_small-047dcff4.pth); V1 follows the same style (see the spec's notes).
KNOWN_KEYS = {
    "mobilenet_v1": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.0.0.weight": (32, 1, 3, 3),
        "features.1.1.0.weight": (64, 32, 1, 1),
        "features.13.1.1.running_var": (1024,),
        "classifier.1.weight": (1000, 1024),
    },
    "mobilenet_v2": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.running_mean": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
    },
    "mobilenet_v3_large": {
        "features.1.block.0.0.weight": (16, 1, 3, 3),
        "features.4.block.1.0.weight": (72, 1, 5, 5),
        "features.4.block.2.fc1.weight": (24, 72, 1, 1),
        "features.4.block.2.fc2.bias": (72,),
        "features.4.block.3.0.weight": (40, 72, 1, 1),
        "features.16.0.weight": (960, 160, 1, 1),
        "classifier.0.weight": (1280, 960),
        "classifier.3.weight": (1000, 1280),
    },
    "mobilenet_v3_small": {
        "features.1.block.1.fc1.weight": (8, 16, 1, 1),
        "features.1.block.2.0.weight": (16, 16, 1, 1),
        "features.12.0.weight": (576, 96, 1, 1),
        "classifier.0.weight": (1024, 576),
        "classifier.3.bias": (1000,),
    },
}


@pytest.mark.parametrize("name", sorted(KNOWN_KEYS))
def test_torchvision_keys(name):
    model = zoo.create_model(name, "torch")
    state = model.state_dict()
    for key, shape in KNOWN_KEYS[name].items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small"])
def test_v3_batchnorm_is_tensorflows_in_every_framework(name):
    import torch

    spec = zoo.get_spec(name)
    assert (spec.config.bn_eps, spec.config.bn_momentum) == (1e-3, 0.01)
    norms = [m for m in zoo.create_model(name, "torch").modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {(m.eps, m.momentum) for m in norms} == {(1e-3, 0.01)}
    import keras

    keras_norms = [layer for layer in zoo.create_model(name, "tf").layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {(layer.epsilon, round(layer.momentum, 6)) for layer in keras_norms} == {(1e-3, 0.99)}
    gluon = zoo.create_model(name, "mxnet")
    gluon_norms = [b for b in _gluon_blocks(gluon) if type(b).__name__ == "BatchNorm"]
    assert {(b._kwargs["eps"], round(b._kwargs["momentum"], 6)) for b in gluon_norms} == {(1e-3, 0.99)}
    assert len(norms) == len(keras_norms) == len(gluon_norms)


def _gluon_blocks(block):
    yield block
    for child in block._children.values():
        yield from _gluon_blocks(child)


ACTIVATION_INPUTS = np.array([-6.0, -3.0, -2.9999, -1.5, -0.1, 0.0, 0.1, 1.0, 2.9999, 3.0, 3.5, 6.0, 7.0], np.float32)


@pytest.mark.parametrize("kind", ["hardswish", "hardsigmoid", "silu", "relu6"])
def test_activations_are_pytorchs(kind):
    import torch

    expected = {
        "hardswish": torch.nn.functional.hardswish, "hardsigmoid": torch.nn.functional.hardsigmoid,
        "silu": torch.nn.functional.silu, "relu6": torch.nn.functional.relu6,
    }[kind](torch.from_numpy(ACTIVATION_INPUTS)).numpy()
    # PyTorch's definitions: x * relu6(x + 3) / 6, relu6(x + 3) / 6, x * sigmoid(x).
    relu6 = np.clip(ACTIVATION_INPUTS + 3, 0, 6) / 6
    formula = {"hardswish": ACTIVATION_INPUTS * relu6, "hardsigmoid": relu6,
               "silu": ACTIVATION_INPUTS / (1 + np.exp(-ACTIVATION_INPUTS)), "relu6": np.clip(ACTIVATION_INPUTS, 0, 6)}[kind]
    np.testing.assert_allclose(expected, formula, rtol=1e-6, atol=1e-7)

    import keras
    from zoo_tf.layers import ACTIVATIONS

    got_tf = np.asarray(keras.layers.Activation(ACTIVATIONS[kind])(ACTIVATION_INPUTS[None]))[0]
    np.testing.assert_allclose(got_tf, expected, rtol=1e-6, atol=1e-7)

    zoo.backend("mxnet")
    import mxnet as mx
    from zoo_mxnet.mobilenet import Activation

    got_mx = Activation(kind)(mx.nd.array(ACTIVATION_INPUTS)).asnumpy()
    np.testing.assert_allclose(got_mx, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("value,divisor,expected", [
    (32 * 0.25, 8, 8),
    (32 * 0.35, 8, 16),  # 8 would be more than 10% below 11.2
    (72 // 4, 8, 24),  # MobileNetV3's first SE: 18 -> 24 (torchvision's fc1 is 24x72)
    (1280 * 1.4, 8, 1792),
    (16 * 0.75, 8, 16),
    (3, 8, 8),  # never below the divisor
    (100, 8, 104),
    (100, 1, 100),
])
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected


@pytest.mark.parametrize("name,knobs,match", [
    ("mobilenet_v1", {"width_mult": 0}, "width_mult"),
    ("mobilenet_v1", {"width_mult": -0.5}, "width_mult"),
    ("mobilenet_v2", {"width_mult": "wide"}, "width_mult"),
    ("mobilenet_v2", {"width_mult": True}, "width_mult"),
    ("mobilenet_v2", {"dropout": 1.0}, "dropout"),
    ("mobilenet_v2", {"blocks": ((6, 24, 2, 3),)}, "stride"),
    ("mobilenet_v2", {"blocks": ()}, "blocks"),
    ("mobilenet_v2", {"round_nearest": 0}, "round_nearest"),
    ("mobilenet_v3_large", {"width_mult": 0.0}, "width_mult"),
    ("mobilenet_v3_large", {"bn_momentum": 0.0}, "bn_momentum"),
    ("mobilenet_v3_large", {"bn_eps": -1e-3}, "bn_eps"),
    ("mobilenet_v3_small", {"blocks": ((4, 16, 16, True, "relu", 2),)}, "odd"),
    ("mobilenet_v3_small", {"blocks": ((3, 16, 16, True, "gelu", 2),)}, "activation"),
    ("mobilenet_v3_small", {"tail_start": 20}, "tail_start"),
])
def test_invalid_knobs_raise_value_error(name, knobs, match):
    with pytest.raises(ValueError, match=match):
        zoo.create_model(name, "torch", **knobs)


def test_tiny_inputs_work():
    # Every window is padded to keep its size, so any input of at least 1x1 is valid.
    for name in zoo.list_models("mobilenet*"):
        assert zoo.get_spec(name).signature().min_size == 1
    images = np.random.default_rng(0).standard_normal((2, 3, 1, 1)).astype(np.float32)
    for name, knobs in VARIANTS[-1:]:
        logits = zoo.backend("torch").predict(zoo.create_model(name, "torch", num_classes=3, **knobs), images)
        assert logits.shape == (2, 3) and np.isfinite(logits).all()
