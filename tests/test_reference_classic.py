"""AlexNet and VGG against keras.applications, Gluon's model zoo and timm: each reference built with random
weights (BatchNorm statistics included), converted with zoo.convert, and its logits compared with the
zoo's model in the reference's framework and in PyTorch; one model per library and knobs in all four.

VGG's head holds 120M parameters: each reference is built once, at batch 1, and dropped before the next.
Keras' and Gluon's heads read the flattened map of the size they were built for: Gluon's vgg11 and
alexnet are built for 224x224 (the ImageNet layout), the others for 64x64 or 32x32 (a 2x2 or
1x1 map: `pool_size=2` or 1). timm's deeper VGGs get a 64-wide fc1 (timm's mlp_ratio), vgg11's the real one.
"""
from __future__ import annotations

import gc

import keras
import numpy as np
import pytest
import timm
import torch

import zoo
import zoo.convert
from reference_checks import assert_logits_match, images, randomize_gluon, randomize_keras, zoo_logits

pytestmark = [pytest.mark.reference, pytest.mark.torch, pytest.mark.tf, pytest.mark.mxnet, pytest.mark.jax]

FRAMEWORKS = tuple(zoo.FRAMEWORKS)


def release(*frameworks: str) -> None:
    gc.collect()
    for framework in frameworks:
        zoo.backend(framework).release_memory()


def compare(conversion, expected: np.ndarray, batch: np.ndarray, frameworks, what: str) -> dict[str, float]:
    """The converted model's logits in each framework against the reference's; one model alive at a time."""
    errors = {}
    for framework in frameworks:
        errors[framework] = assert_logits_match(zoo_logits(conversion, framework, batch), expected,
                                                f"{what} in {framework}")
        release(framework)
    return errors


# --- keras.applications -----------------------------------------------------------------------------

def keras_logits(model, batch: np.ndarray) -> np.ndarray:
    return np.asarray(model(batch.transpose(0, 2, 3, 1), training=False))


@pytest.mark.parametrize("builder, size, zoo_name, knobs, frameworks", [
    # Built for 64x64: fc1 reads a 2x2 map, whose NHWC flatten order the conversion permutes (at 224x224
    # the same code permutes a 7x7 one; Gluon's vgg11 below has the ImageNet head).
    ("VGG16", 64, "vgg16", {"dropout": 0.0, "pool_size": 2}, ("tf", "torch")),
    ("VGG19", 64, "vgg19", {"dropout": 0.0, "pool_size": 2}, FRAMEWORKS),
])
def test_keras_vgg(builder, size, zoo_name, knobs, frameworks):
    reference = randomize_keras(getattr(keras.applications, builder)(
        weights=None, input_shape=(size, size, 3), classifier_activation=None))
    batch = images(1, size)
    expected = keras_logits(reference, batch)
    conversion = zoo.convert.from_keras(reference)
    del reference
    release("tf")
    assert (conversion.name, dict(conversion.knobs)) == (zoo_name, knobs)
    compare(conversion, expected, batch, frameworks, f"keras {builder}")


def test_keras_vgg_without_top_or_with_unpadded_convolutions_is_refused():
    with pytest.raises(zoo.convert.ConversionError, match="no classifier"):
        zoo.convert.from_keras(keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)))
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="valid", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    with pytest.raises(zoo.convert.ConversionError, match="padding 'valid'"):
        zoo.convert.from_keras(model)


# --- Gluon's model zoo ------------------------------------------------------------------------------

def gluon_reference(builder: str, size: int, batch: np.ndarray):
    """A Gluon model-zoo network initialised for size x size inputs, randomised; and its logits."""
    import zoo_mxnet  # noqa: F401  (before mxnet)
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    net = getattr(vision, builder)()
    for param in net.collect_params().values():
        # randomize_gluon draws every value below: MXNet's own initialisers would cost seconds per VGG.
        param.initialize(init=mx.init.Zero())
    net(mx.nd.zeros((1, 3, size, size)))  # Gluon infers the dense layers' inputs at the first call
    randomize_gluon(net)
    return net, net(mx.nd.array(batch)).asnumpy()


GLUON_VGG = [
    ("vgg11", 224, {}, ("mxnet", "torch")),
    # The others built for 32x32: the same layers before a head that reads a 1x1 map (pool_size=1).
    *[(f"vgg{depth}{bn}", 32, {"pool_size": 1}, FRAMEWORKS if (depth, bn) == (11, "_bn") else ("mxnet", "torch"))
      for depth in (11, 13, 16, 19) for bn in ("", "_bn") if (depth, bn) != (11, "")],
]
@pytest.mark.parametrize("builder, size, knobs, frameworks", GLUON_VGG, ids=[case[0] for case in GLUON_VGG])
def test_gluon_vgg(builder, size, knobs, frameworks):
    batch = images(1, size)
    reference, expected = gluon_reference(builder, size, batch)
    conversion = zoo.convert.from_gluon(reference)
    del reference
    release("mxnet")
    assert (conversion.name, dict(conversion.knobs)) == (builder, knobs)
    compare(conversion, expected, batch, frameworks, f"gluon {builder}")


def test_gluon_alexnet():
    batch = images(1, 224)
    reference, expected = gluon_reference("alexnet", 224, batch)
    conversion = zoo.convert.from_gluon(reference)
    del reference
    assert (conversion.name, dict(conversion.knobs)) == ("alexnet", {})
    assert "same in inference" in conversion.reference  # its dropout sits after the ReLUs
    compare(conversion, expected, batch, FRAMEWORKS, "gluon alexnet")


# --- timm -------------------------------------------------------------------------------------------

def timm_reference(builder: str, **kwargs):
    import zoo_torch

    return zoo_torch.randomize(timm.create_model(builder, pretrained=False, **kwargs), seed=1).eval()


# vgg11 and vgg11_bn as timm builds them; the deeper ones with a 64-wide fc1 (mlp_ratio=1/64), which saves
# 100M parameters a build: their features are what differs, and the head is vgg11's.
NARROW = {"mlp_ratio": 1 / 64}
TIMM_VGG = [("vgg11", {}, ("torch",)), ("vgg11_bn", {}, ("torch",)),
            *[(f"vgg{depth}{bn}", NARROW, FRAMEWORKS if (depth, bn) == (13, "") else ("torch",))
              for depth in (13, 16, 19) for bn in ("", "_bn")]]


@pytest.mark.parametrize("builder, options, frameworks", TIMM_VGG, ids=[case[0] for case in TIMM_VGG])
def test_timm_vgg(builder, options, frameworks):
    reference = timm_reference(builder, **options)
    # Below 224x224 timm's pre_logits pool the map up to 7x7 first, as the zoo's adaptive pool does.
    batch = images(2, 64)
    with torch.no_grad():
        expected = reference(torch.from_numpy(batch)).numpy()
    conversion = zoo.convert.from_timm(reference)
    del reference
    knobs = {"dropout": 0.0, **({"hidden": (64, 4096)} if options else {})}
    assert (conversion.name, dict(conversion.knobs)) == (builder, knobs)
    compare(conversion, expected, batch, frameworks, f"timm {builder}")


def test_timm_vgg_with_another_pool_or_activation_is_refused():
    with torch.device("meta"):  # refused before any weight is read
        pooled = timm.create_model("vgg11", pretrained=False, global_pool="max")
        silu = timm.create_model("vgg11", pretrained=False, act_layer=torch.nn.SiLU)
    with pytest.raises(zoo.convert.ConversionError, match="global_pool='max'"):
        zoo.convert.from_timm(pooled)
    with pytest.raises(zoo.convert.ConversionError, match="SiLU"):
        zoo.convert.from_timm(silu)
