"""DenseNet against keras.applications, Gluon's model zoo and timm: each reference built with random weights
(BatchNorm statistics included), converted with zoo.convert, and its logits compared with the zoo's model
in the reference's framework and in PyTorch; DenseNet-121 of each library in all four frameworks.

Gluon's DenseNets end in AvgPool2D(7), a global pool only on 224x224 inputs; the others run at 64x64.
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
# keras.applications' BatchNorm: epsilon 1.001e-5, momentum 0.99 (PyTorch's 0.01).
KERAS_KNOBS = {"bn_eps": 1.001e-5, "bn_momentum": 0.01}


def compare(conversion, expected: np.ndarray, batch: np.ndarray, frameworks, what: str) -> None:
    for framework in frameworks:
        assert_logits_match(zoo_logits(conversion, framework, batch), expected, f"{what} in {framework}")
        gc.collect()
        zoo.backend(framework).release_memory()


def own_and_torch(library: str, frameworks: tuple[str, ...] | None = None):
    return frameworks or ((library,) if library == "torch" else (library, "torch"))


@pytest.mark.parametrize("builder, zoo_name, frameworks", [
    ("DenseNet121", "densenet121", FRAMEWORKS),
    ("DenseNet169", "densenet169", ("tf", "torch")),
    ("DenseNet201", "densenet201", ("tf", "torch")),
])
def test_keras_densenet(builder, zoo_name, frameworks):
    reference = randomize_keras(getattr(keras.applications, builder)(
        weights=None, input_shape=(64, 64, 3), classifier_activation=None))
    batch = images(2, 64)
    expected = np.asarray(reference(batch.transpose(0, 2, 3, 1), training=False))
    conversion = zoo.convert.from_keras(reference)
    del reference
    assert (conversion.name, dict(conversion.knobs)) == (zoo_name, KERAS_KNOBS)
    compare(conversion, expected, batch, frameworks, f"keras {builder}")


def test_keras_densenet_without_top_is_refused():
    model = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(zoo.convert.ConversionError, match="no classifier"):
        zoo.convert.from_keras(model)


@pytest.mark.parametrize("builder, frameworks", [
    ("densenet121", FRAMEWORKS),
    ("densenet161", ("mxnet", "torch")),
    ("densenet169", ("mxnet", "torch")),
    ("densenet201", ("mxnet", "torch")),
])
def test_gluon_densenet(builder, frameworks):
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    batch = images(1, 224)
    reference = getattr(vision, builder)()
    for param in reference.collect_params().values():
        param.initialize(init=mx.init.Zero())  # randomize_gluon draws every value below
    reference(mx.nd.array(batch))
    expected = randomize_gluon(reference)(mx.nd.array(batch)).asnumpy()
    conversion = zoo.convert.from_gluon(reference)
    del reference
    assert (conversion.name, dict(conversion.knobs)) == (builder, {})
    compare(conversion, expected, batch, frameworks, f"gluon {builder}")


def timm_logits(model, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


def randomized(model):
    import zoo_torch

    return zoo_torch.randomize(model, seed=1).eval()


@pytest.mark.parametrize("builder, frameworks", [
    ("densenet121", FRAMEWORKS), ("densenet161", ("torch",)), ("densenet169", ("torch",)), ("densenet201", ("torch",)),
])
def test_timm_densenet(builder, frameworks):
    reference = randomized(timm.create_model(builder, pretrained=False))
    batch = images(2, 64)
    expected = timm_logits(reference, batch)
    conversion = zoo.convert.from_timm(reference)
    assert (conversion.name, dict(conversion.knobs)) == (builder, {})
    compare(conversion, expected, batch, frameworks, f"timm {builder}")


def test_timm_densenet_class_at_the_papers_densenet264_and_other_settings():
    from timm.models.densenet import DenseNet

    # The paper's DenseNet-264 (k=32, 6-12-64-48, 64 stem features) is the zoo's densenet264.
    reference = randomized(DenseNet(growth_rate=32, block_config=(6, 12, 64, 48)))
    batch = images(1, 64)
    conversion = zoo.convert.from_timm(reference)
    assert (conversion.name, dict(conversion.knobs)) == ("densenet264", {})
    compare(conversion, timm_logits(reference, batch), batch, ("torch",), "timm DenseNet-264")
    # A build of one's own converts through the knobs: growth, blocks, classes, dense-layer dropout.
    reference = randomized(DenseNet(growth_rate=16, block_config=(2, 3), num_classes=10, proj_drop_rate=0.1))
    conversion = zoo.convert.from_timm(reference)
    assert conversion.name == "densenet121"
    assert dict(conversion.knobs) == {"growth_rate": 16, "block_config": (2, 3), "num_init_features": 32,
                                      "drop_rate": 0.1, "num_classes": 10}
    compare(conversion, timm_logits(reference, batch), batch, FRAMEWORKS, "timm DenseNet(k=16, 2-3)")


@pytest.mark.parametrize("builder, difference", [
    ("densenet264d", "deep stem"),  # timm's DenseNet-264: k=48 and a 3x3 deep stem
    ("densenetblur121d", "blur pooling"),
])
def test_timm_densenets_the_zoo_cannot_build(builder, difference):
    with torch.device("meta"):  # refused before any weight is read
        reference = timm.create_model(builder, pretrained=False)
    with pytest.raises(zoo.convert.ConversionError, match=difference):
        zoo.convert.from_timm(reference)
    with torch.device("meta"):
        pooled = timm.create_model("densenet121", pretrained=False, global_pool="max")
    with pytest.raises(zoo.convert.ConversionError, match="global_pool='max'"):
        zoo.convert.from_timm(pooled)
