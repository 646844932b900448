"""MobileNet V1/V2/V3 against timm, keras.applications and Gluon's model zoo: each reference, with random
weights, converts (zoo.convert) to the zoo's model with the knobs of its variant, and gives the same
logits in its own framework and in PyTorch; one model per library and variant in all four frameworks.
Also the knobs those variants need (padding, activation, Gluon's t=1 expansion and bias-free classifier)
on their own: parameter counts and outputs agree across frameworks, MXNet's "same" padding hybridized."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import timm

import zoo
from reference_checks import (assert_logits_match, compare_frameworks, images, randomize_gluon, randomize_keras,
                              timm_reference)
from zoo.convert import ConversionError

pytestmark = [pytest.mark.reference, pytest.mark.torch, pytest.mark.tf, pytest.mark.mxnet, pytest.mark.jax]

SIZE = 64  # every map a stride-2 convolution sees is even down to 2x2, where Keras' fixed pads are "same"


def _batch(seed: int = 0) -> np.ndarray:
    return images(batch=2, size=SIZE, seed=seed)



def compare(conversion, theirs, frameworks, what):
    return compare_frameworks(conversion, theirs, frameworks, what, _batch())


# ------------------------------------------------------------------------------------------- timm

# timm model -> (zoo model, knobs); the last of each variant is also compared in all four frameworks.
TIMM = {
    "mobilenetv1_100": ("mobilenet_v1", {"bn_eps": 1e-5, "activation": "relu6"}),
    "mobilenetv2_100": ("mobilenet_v2", {}),
    "mobilenetv2_050": ("mobilenet_v2", {"width_mult": 0.5}),
    "mobilenetv2_140": ("mobilenet_v2", {"width_mult": 1.4}),
    "mobilenetv3_large_100": ("mobilenet_v3_large", {"bn_eps": 1e-5}),
    "mobilenetv3_small_100": ("mobilenet_v3_small", {"bn_eps": 1e-5}),
    "tf_mobilenetv3_large_100": ("mobilenet_v3_large", {"padding": "same"}),
    "tf_mobilenetv3_small_100": ("mobilenet_v3_small", {"padding": "same"}),
}
TIMM_ALL_FRAMEWORKS = ("mobilenetv1_100", "tf_mobilenetv3_small_100")


@pytest.mark.parametrize("name", list(TIMM))
def test_timm(name):
    conversion, theirs = timm_reference(name, SIZE)
    assert (conversion.name, dict(conversion.knobs)) == TIMM[name]
    frameworks = zoo.FRAMEWORKS if name in TIMM_ALL_FRAMEWORKS else ("torch",)
    compare(conversion, theirs, frameworks, f"timm {name}")


@pytest.mark.parametrize("name,kwargs,message", [
    # Depth multiplier 1.1: more blocks per stage than any MobileNetV2 the zoo builds.
    ("mobilenetv2_110d", {}, "mobilenetv2_110d has 22 depthwise convolutions"),
    # A user's own build with ReLU: the zoo's MobileNetV2 has ReLU6 only.
    ("mobilenetv2_050", {"act_layer": "relu"}, "activates with relu; the zoo's mobilenet_v2 with relu6"),
], ids=["depth", "activation"])
def test_timm_variant_without_counterpart(name, kwargs, message):
    with pytest.raises(ConversionError, match=message):
        zoo.convert.from_timm(timm.create_model(name, pretrained=False, **kwargs))


# ------------------------------------------------------------------------------------------- Keras

# (application, alpha) -> (zoo model, knobs); the marked ones are also compared in all four frameworks.
KERAS = {
    ("MobileNet", 1.0): ("mobilenet_v1", {"padding": "same", "activation": "relu6"}),
    ("MobileNet", 0.25): ("mobilenet_v1", {"padding": "same", "activation": "relu6", "width_mult": 0.25}),
    ("MobileNetV2", 1.0): ("mobilenet_v2", {"bn_eps": 1e-3, "padding": "same"}),
    ("MobileNetV2", 0.5): ("mobilenet_v2", {"bn_eps": 1e-3, "padding": "same", "width_mult": 0.5}),
    ("MobileNetV3Large", 1.0): ("mobilenet_v3_large", {"padding": "same"}),
    ("MobileNetV3Small", 1.0): ("mobilenet_v3_small", {"padding": "same"}),
}
KERAS_ALL_FRAMEWORKS = (("MobileNet", 0.25), ("MobileNetV2", 0.5), ("MobileNetV3Small", 1.0))


def _keras_application(application, alpha, **kwargs):
    if application.startswith("MobileNetV3"):
        kwargs.setdefault("include_preprocessing", False)
    kwargs.setdefault("input_shape", (SIZE, SIZE, 3))
    return getattr(keras.applications, application)(alpha=alpha, weights=None, classifier_activation=None, **kwargs)


@pytest.fixture(scope="module")
def keras_reference():
    cache = {}

    def get(key):
        if key not in cache:
            cache.clear()
            model = randomize_keras(_keras_application(*key), seed=1)
            logits = np.asarray(model(_batch().transpose(0, 2, 3, 1), training=False))
            cache[key] = (zoo.convert.from_keras(model), logits)
        return cache[key]

    return get


@pytest.mark.parametrize("key", list(KERAS), ids=lambda key: f"{key[0]}-{key[1]}")
def test_keras(keras_reference, key):
    conversion, theirs = keras_reference(key)
    assert (conversion.name, dict(conversion.knobs)) == KERAS[key]
    frameworks = zoo.FRAMEWORKS if key in KERAS_ALL_FRAMEWORKS else ("tf", "torch")
    compare(conversion, theirs, frameworks, f"keras.applications.{key[0]}(alpha={key[1]})")


def test_keras_mobilenet_on_odd_maps_is_refused():
    # Built for 72x72, its third stride-2 depthwise convolution sees a 9x9 map, which Keras' MobileNet
    # pads (0, 1) and TensorFlow's "same" (1, 1).
    with pytest.raises(ConversionError, match=r"conv_dw_6 \(stride 2, on a \(9, 9\) map\)"):
        zoo.convert.from_keras(_keras_application("MobileNet", 0.25, input_shape=(72, 72, 3)))


def test_keras_preprocessing_is_refused():
    model = _keras_application("MobileNetV3Small", 1.0, include_preprocessing=True)
    with pytest.raises(ConversionError, match="include_preprocessing=False"):
        zoo.convert.from_keras(model)


# ------------------------------------------------------------------------------------------- Gluon

GLUON_V2 = {"classifier_bias": False, "always_expand": True}
GLUON = {
    "mobilenet1.0": ("mobilenet_v1", {"bn_eps": 1e-5}),
    "mobilenet0.75": ("mobilenet_v1", {"bn_eps": 1e-5, "width_mult": 0.75}),
    "mobilenet0.5": ("mobilenet_v1", {"bn_eps": 1e-5, "width_mult": 0.5}),
    "mobilenet0.25": ("mobilenet_v1", {"bn_eps": 1e-5, "width_mult": 0.25}),
    "mobilenetv2_1.0": ("mobilenet_v2", GLUON_V2),
    # Gluon takes int(c * alpha): 16 * 0.75 = 12 channels, which rounding to multiples of 8 would make 16.
    "mobilenetv2_0.75": ("mobilenet_v2", {"width_mult": 0.75, "round_nearest": 1, **GLUON_V2}),
    "mobilenetv2_0.5": ("mobilenet_v2", {"width_mult": 0.5, "round_nearest": 1, **GLUON_V2}),
    "mobilenetv2_0.25": ("mobilenet_v2", {"width_mult": 0.25, "round_nearest": 1, **GLUON_V2}),
}
GLUON_ALL_FRAMEWORKS = ("mobilenet0.25", "mobilenetv2_0.25")


@pytest.fixture(scope="module")
def gluon_reference():
    import zoo_mxnet  # noqa: F401  (numpy.bool shim before mxnet)
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    cache = {}

    def get(name):
        if name not in cache:
            cache.clear()
            net = vision.get_model(name, pretrained=False)
            net.initialize()
            net(mx.nd.array(_batch()))  # shapes
            randomize_gluon(net, seed=1)
            cache[name] = (zoo.convert.from_gluon(net), net(mx.nd.array(_batch())).asnumpy())
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(GLUON))
def test_gluon(gluon_reference, name):
    conversion, theirs = gluon_reference(name)
    assert (conversion.name, dict(conversion.knobs)) == GLUON[name]
    frameworks = zoo.FRAMEWORKS if name in GLUON_ALL_FRAMEWORKS else ("mxnet", "torch")
    compare(conversion, theirs, frameworks, f"Gluon {name}")


# ------------------------------------------------------------------------------------------- knobs

def _counts(framework, name, **knobs):
    return zoo.backend(framework).count_parameters(zoo.create_model(name, framework, **knobs))


@pytest.mark.parametrize("name,knobs,delta", [
    ("mobilenet_v1", {"padding": "same", "activation": "relu6", "width_mult": 0.25}, (0, 0)),
    ("mobilenet_v3_small", {"padding": "same", "width_mult": 0.5}, (0, 0)),
    ("efficientnet_b0", {"padding": "same", "width_mult": 0.25, "depth_mult": 0.25}, (0, 0)),
    # Gluon's MobileNetV2: a 1x1 expansion conv with BatchNorm in the t=1 block (32 * 32 + 2 or 4 * 32),
    # a classifier without its 1000 biases.
    ("mobilenet_v2", GLUON_V2, (88, 152)),
], ids=["v1", "v3", "efficientnet", "v2-gluon"])
def test_knob_parameter_counts(name, knobs, delta):
    plain = {k: v for k, v in knobs.items() if k in ("width_mult", "depth_mult")}
    expected = _counts("torch", name, **knobs)
    baseline = _counts("torch", name, **plain)
    assert tuple(a - b for a, b in zip(expected, baseline)) == delta
    for framework in zoo.FRAMEWORKS:
        assert _counts(framework, name, **knobs) == expected, framework


def test_same_padding_everywhere():
    """TensorFlow's "same" in all four frameworks, on even and odd sizes, MXNet hybridized too, in the
    builders EfficientNet shares with MobileNet (the MobileNets' own are compared with Keras and timm)."""
    name, knobs = "efficientnet_b0", {"padding": "same", "width_mult": 0.25, "depth_mult": 0.25}
    torch_backend = zoo.backend("torch")
    reference = torch_backend.randomize(zoo.create_model(name, "torch", num_classes=5, **knobs), seed=3).eval()
    weights = torch_backend.export_weights(reference)
    even, odd = images(size=64), images(size=45)
    expected = {size: torch_backend.predict(reference, x) for size, x in ((64, even), (45, odd))}
    for framework in ("tf", "mxnet", "jax"):
        backend = zoo.backend(framework)
        model = zoo.create_model(name, framework, num_classes=5, **knobs)
        backend.load_weights(model, weights)
        for size, x in ((64, even), (45, odd)):
            assert_logits_match(backend.predict(model, x), expected[size], f"{framework} at {size}")
        if framework == "mxnet":
            model.hybridize()
            for size, x in ((64, even), (45, odd)):
                assert_logits_match(backend.predict(model, x), expected[size], f"hybridized at {size}")


def test_same_padding_differs_from_symmetric_on_even_sizes():
    torch_backend = zoo.backend("torch")
    same = torch_backend.randomize(zoo.create_model("mobilenet_v1", "torch", padding="same", width_mult=0.25), 3)
    symmetric = zoo.create_model("mobilenet_v1", "torch", width_mult=0.25)
    torch_backend.load_weights(symmetric, torch_backend.export_weights(same))
    odd = images(size=33)  # 33 -> 17 -> 9 -> 5 -> 3 -> 2: the last stride-2 map is odd, so the same padding
    assert np.allclose(torch_backend.predict(same, odd), torch_backend.predict(symmetric, odd), atol=1e-5)
    even = images(size=64)
    assert not np.allclose(torch_backend.predict(same, even), torch_backend.predict(symmetric, even), atol=1e-3)


@pytest.mark.parametrize("name,knobs,message", [
    ("mobilenet_v1", {"padding": "valid"}, "padding"),
    ("mobilenet_v1", {"activation": "hardswish"}, "activation"),
    ("mobilenet_v2", {"padding": "SAME"}, "padding"),
    ("mobilenet_v3_large", {"padding": 1}, "padding"),
    ("efficientnet_b0", {"padding": "reflect"}, "padding"),
    ("mobilenet_v2", {"always_expand": 1}, "always_expand"),
    ("mobilenet_v2", {"classifier_bias": "no"}, "classifier_bias"),
])
def test_invalid_knobs(name, knobs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        zoo.create_model(name, "torch", **knobs)
