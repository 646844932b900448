"""EfficientNet B0-B7 against timm (efficientnet_bN, tf_efficientnet_bN) and keras.applications
(EfficientNetB0-B7): each reference, with random weights, converts (zoo.convert) to the zoo's efficientnet_bN
with the knobs of its variant (BatchNorm epsilon and momentum, TensorFlow's "same" padding, dropout and
stochastic depth where they are not the spec's), and gives the same logits in its own framework and in
PyTorch; one model per library and variant in all four frameworks. Also what is refused, and why."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import zoo
import zoo_torch
from reference_checks import (assert_logits_match, compare_frameworks, images, randomize_keras,
                              timm_reference, zoo_logits)
from zoo.convert import ConversionError

pytestmark = [pytest.mark.reference, pytest.mark.torch, pytest.mark.tf, pytest.mark.mxnet, pytest.mark.jax]

SIZE = 64  # every map a stride-2 convolution sees is even down to 2x2, where Keras' fixed pads are "same"
DEPTHS = range(8)


def _batch(seed: int = 0) -> np.ndarray:
    return images(batch=2, size=SIZE, seed=seed)



def compare(conversion, theirs, frameworks, what):
    return compare_frameworks(conversion, theirs, frameworks, what, _batch())


# ------------------------------------------------------------------------------------------- timm

# timm builds both without dropout or stochastic depth unless asked (drop_rate, drop_path_rate).
TIMM_TRAINING = {"dropout": 0.0, "stochastic_depth_prob": 0.0}
# torchvision's B5-B7 (the zoo's defaults) carry TensorFlow's BatchNorm settings; timm's PyTorch builds do not.
TIMM_TORCH_NORM = {f"efficientnet_b{i}": {"bn_eps": 1e-5, "bn_momentum": 0.1} for i in (5, 6, 7)}
# timm's tf_ ports: TensorFlow's epsilon with PyTorch's momentum, and TensorFlow's padding.
TIMM_TF_NORM = {f"efficientnet_b{i}": {"bn_eps": 1e-3} for i in range(5)} | {
    f"efficientnet_b{i}": {"bn_momentum": 0.1} for i in (5, 6, 7)}
TIMM = {
    **{f"efficientnet_b{i}": (f"efficientnet_b{i}", {**TIMM_TORCH_NORM.get(f"efficientnet_b{i}", {}), **TIMM_TRAINING})
       for i in DEPTHS},
    **{f"tf_efficientnet_b{i}": (f"efficientnet_b{i}", {**TIMM_TF_NORM[f"efficientnet_b{i}"], "padding": "same",
                                                         **TIMM_TRAINING}) for i in DEPTHS},
}
TIMM_ALL_FRAMEWORKS = ("efficientnet_b0", "tf_efficientnet_b0")


@pytest.mark.parametrize("name", list(TIMM))
def test_timm(name):
    conversion, theirs = timm_reference(name, SIZE)
    assert (conversion.name, dict(conversion.knobs)) == TIMM[name]
    frameworks = zoo.FRAMEWORKS if name in TIMM_ALL_FRAMEWORKS else ("torch",)
    compare(conversion, theirs, frameworks, f"timm {name}")


@pytest.mark.parametrize("name", ["tf_efficientnet_b0"])  # next to test_timm[tf_efficientnet_b0]: one build
def test_timm_tf_port_needs_same_padding(name):
    conversion, theirs = timm_reference(name, SIZE)
    symmetric = zoo.create_model(conversion.name, "torch", **{**conversion.knobs, "padding": "symmetric"})
    zoo_torch.load_weights(symmetric, conversion.weights)
    with pytest.raises(AssertionError, match="relative error"):
        assert_logits_match(zoo_torch.predict(symmetric, _batch()), theirs, f"{name}, symmetric")


def test_timm_user_build_keeps_its_classes_channels_and_training_knobs():
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=10, in_chans=1, drop_rate=0.3,
                              drop_path_rate=0.1)
    model = zoo_torch.randomize(model, seed=2).eval()
    conversion = zoo.convert.from_timm(model)
    assert (conversion.name, dict(conversion.knobs)) == (
        "efficientnet_b0", {"dropout": 0.3, "stochastic_depth_prob": 0.1, "num_classes": 10, "in_channels": 1})
    batch = images(batch=2, size=SIZE, channels=1)
    with torch.no_grad():
        theirs = model(torch.from_numpy(batch)).numpy()
    assert_logits_match(zoo_logits(conversion, "torch", batch), theirs, "timm efficientnet_b0, 1 channel, 10 classes")


@pytest.mark.parametrize("name, kwargs, message", [
    ("efficientnet_lite0", {}, "EfficientNet-Lite"),
    ("efficientnetv2_rw_t", {}, "EfficientNetV2"),
    ("efficientnet_b0_gn", {}, "otherwise than with BatchNorm"),
    ("efficientnet_b0", {"num_classes": 0}, "no classifier"),
    ("efficientnet_b0", {"act_layer": "relu"}, "bn1 is followed by relu where the zoo has silu"),
])
def test_timm_variant_the_zoo_does_not_build_is_refused(name, kwargs, message):
    with pytest.raises(ConversionError, match=message):
        zoo.convert.from_timm(timm.create_model(name, pretrained=False, **kwargs))


def test_timm_own_scaling_becomes_width_and_depth_knobs():
    from timm.models.efficientnet import _gen_efficientnet

    model = zoo_torch.randomize(_gen_efficientnet("efficientnet_b0", channel_multiplier=0.5, depth_multiplier=0.5,
                                                  pretrained=False), seed=3).eval()
    conversion = zoo.convert.from_timm(model)
    assert (conversion.name, dict(conversion.knobs)) == (
        "efficientnet_b0", {"width_mult": 0.5, "depth_mult": 0.5, **TIMM_TRAINING})
    with torch.no_grad():
        theirs = model(torch.from_numpy(_batch())).numpy()
    assert_logits_match(zoo_logits(conversion, "torch", _batch()), theirs, "timm efficientnet_b0, width and depth 0.5")


def test_timm_layout_no_scaling_makes_is_refused_with_it():
    from timm.models.efficientnet import _gen_efficientnet

    # fix_stem keeps 32 stem channels while the stages narrow: no width multiplier gives both.
    narrow = _gen_efficientnet("efficientnet_b0", channel_multiplier=0.5, pretrained=False, fix_stem=True)
    with pytest.raises(ConversionError, match=r"stem has 32 channels.*no width and depth multipliers"):
        zoo.convert.from_timm(narrow)


def test_other_timm_families_are_left_to_their_converters():
    from zoo.convert.efficientnet import from_timm_efficientnet

    # timm builds MobileNetV2 with its EfficientNet class: not this family.
    assert from_timm_efficientnet(timm.create_model("mobilenetv2_050", pretrained=False)) is None


# ------------------------------------------------------------------------------------------- Keras

# keras.applications: TensorFlow's BatchNorm (epsilon 1e-3, momentum 0.99, PyTorch's 0.01) and correct_pad,
# TensorFlow's "same"; dropout and stochastic depth (drop_connect_rate 0.2) are torchvision's.
KERAS_TF = {"bn_eps": 1e-3, "bn_momentum": 0.01, "padding": "same"}
KERAS = {f"EfficientNetB{i}": (f"efficientnet_b{i}", KERAS_TF if i < 5 else {"padding": "same"}) for i in DEPTHS}
KERAS_ALL_FRAMEWORKS = ("EfficientNetB0",)


def _keras_application(name):
    import keras

    # The zoo's model is what follows the preprocessing, which with weights=None is Rescaling(1/255) and a
    # Normalization of mean 0 and variance 1.
    return getattr(keras.applications, name)(weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None)


@pytest.fixture(scope="module")
def keras_reference():
    cache = {}

    def get(name):
        if name not in cache:
            cache.clear()
            zoo.backend("tf").release_memory()  # Keras' graph state grows with every model built
            model = randomize_keras(_keras_application(name), seed=1)
            # 255 * x: the preprocessing's Rescaling(1/255) gives the zoo's input back.
            logits = np.asarray(model(255.0 * _batch().transpose(0, 2, 3, 1), training=False))
            cache[name] = (zoo.convert.from_keras(model), logits, model)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(KERAS))
def test_keras(keras_reference, name):
    conversion, theirs, _ = keras_reference(name)
    assert (conversion.name, dict(conversion.knobs)) == KERAS[name]
    frameworks = zoo.FRAMEWORKS if name in KERAS_ALL_FRAMEWORKS else ("tf", "torch")
    compare(conversion, theirs, frameworks, f"keras.applications.{name}")


def test_keras_without_its_top_is_refused(keras_reference):
    import keras

    *_, model = keras_reference("EfficientNetB0")  # runs first (the suite orders by model), then cached
    features = keras.Model(model.input, model.get_layer("top_activation").output)
    with pytest.raises(ConversionError, match="include_top=False"):
        zoo.convert.from_keras(features)
