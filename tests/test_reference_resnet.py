"""ResNet and SE-ResNet against timm, keras.applications and Gluon's model zoo: each reference, with random
weights, converts (zoo.convert) to the zoo's model with the knobs of its variant, and gives the same logits
in its own framework, and the shallowest of each library's variants also in PyTorch (the deeper ones
repeat the same blocks: only cost). One build per library and variant of knobs is also compared in all
four frameworks: a small one of the reference's own classes (one block per stage, a user's own build),
which exercises every layer of the variant at a fraction of the cost of ResNet-50. Also the knobs those variants
need (conv_bias, preactivation, input_norm, se_divisor) on their own: parameter counts against the
references' and across frameworks, outputs across frameworks, validation."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import timm
import torch

import zoo
import zoo_torch
from reference_checks import compare_frameworks, images, randomize_gluon, randomize_keras
from variant_checks import compare_with_torch, counts
from zoo.convert import ConversionError

pytestmark = [pytest.mark.reference, pytest.mark.torch, pytest.mark.tf, pytest.mark.mxnet, pytest.mark.jax]

SIZE = 64
BATCH = images(batch=2, size=SIZE)


# Where a Keras or Gluon reference is also compared in PyTorch: the shallowest of each block and variant.
ALSO_IN_TORCH = {"ResNet50", "resnet18_v1", "resnet50_v1", "resnet18_v2", "resnet50_v2"}



def compare(conversion, theirs, frameworks, what):
    return compare_frameworks(conversion, theirs, frameworks, what, BATCH)


# ------------------------------------------------------------------------------------------- timm

TIMM = {
    "resnet18": ("resnet18", {}),
    "resnet34": ("resnet34", {}),
    "resnet50": ("resnet50", {}),
    "resnet101": ("resnet101", {}),
    "resnet152": ("resnet152", {}),
    # timm rounds the SE's squeezed channels to multiples of 8: 64-channel blocks squeeze to 8, not 4
    "seresnet18": ("se_resnet18", {"se_divisor": 8}),
    "seresnet34": ("se_resnet34", {"se_divisor": 8}),
    "seresnet50": ("se_resnet50", {}),
    "seresnet101": ("se_resnet101", {}),
    "seresnet152": ("se_resnet152", {}),
}


def _timm_logits(model) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(BATCH)).numpy()


@pytest.mark.parametrize("name", TIMM)
def test_timm(name):
    model = zoo_torch.randomize(timm.create_model(name, pretrained=False), seed=1).eval()
    conversion = zoo.convert.from_timm(model)
    assert (conversion.name, dict(conversion.knobs)) == TIMM[name]
    compare(conversion, _timm_logits(model), ("torch",), f"timm {name}")


@pytest.mark.parametrize("block, attention, knobs", [
    ("BasicBlock", None, {}),                     # resnet18 .. resnet152: the zoo's defaults
    ("BasicBlock", "se", {"se_divisor": 8}),      # seresnet18, seresnet34
    ("Bottleneck", "se", {}),                     # seresnet50 .. seresnet152
])
def test_timm_variants_in_every_framework(block, attention, knobs):
    """timm's ResNet class with one block per stage and 10 classes, in all four frameworks."""
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    kind = {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck}[block]
    model = ResNet(kind, layers=(1, 1, 1, 1), num_classes=10, block_args={"attn_layer": attention} if attention else None)
    model = zoo_torch.randomize(model, seed=2).eval()
    conversion = zoo.convert.from_timm(model)
    expected = {**knobs, "layers": (1, 1, 1, 1), "num_classes": 10}
    assert dict(conversion.knobs) == expected
    assert conversion.name == ("se_" if attention else "") + ("resnet18" if block == "BasicBlock" else "resnet50")
    compare(conversion, _timm_logits(model), zoo.FRAMEWORKS, f"timm ResNet({block}, attn={attention})")


def test_timm_variants_the_zoo_cannot_build():
    from timm.models.resnet import Bottleneck, ResNet

    # resnet50d: a deep stem and average-pooled shortcuts
    deep = ResNet(Bottleneck, layers=(1, 1, 1, 1), stem_type="deep", stem_width=32, avg_down=True)
    with pytest.raises(ConversionError, match="deep stem.*avg_down"):
        zoo.convert.from_timm(deep)
    eca = ResNet(Bottleneck, layers=(1, 1, 1, 1), block_args={"attn_layer": "eca"})
    with pytest.raises(ConversionError, match="EcaModule attention"):
        zoo.convert.from_timm(eca)
    silu = ResNet(Bottleneck, layers=(1, 1, 1, 1), act_layer=torch.nn.SiLU)
    with pytest.raises(ConversionError, match="activations"):
        zoo.convert.from_timm(silu)


# ------------------------------------------------------------------------------- keras.applications

KERAS_KNOBS = {"stride_in_1x1": True, "conv_bias": "all", "bn_eps": 1.001e-5, "bn_momentum": 0.01}


@pytest.mark.parametrize("name, zoo_name", [("ResNet50", "resnet50"), ("ResNet101", "resnet101"),
                                            ("ResNet152", "resnet152")])
def test_keras(name, zoo_name):
    # Keras ends in a softmax by default; the zoo's models (and this comparison) give the logits
    model = randomize_keras(getattr(keras.applications, name)(weights=None, input_shape=(SIZE, SIZE, 3),
                                                              classifier_activation=None))
    conversion = zoo.convert.from_keras(model)
    assert (conversion.name, dict(conversion.knobs)) == (zoo_name, KERAS_KNOBS)
    theirs = np.asarray(model(BATCH.transpose(0, 2, 3, 1), training=False))
    compare(conversion, theirs, ("tf", "torch") if name in ALSO_IN_TORCH else ("tf",), f"keras {name}")


def test_keras_variant_in_every_framework():
    """keras.applications' ResNet builder with one bottleneck per stage and 10 classes."""
    from keras.src.applications import resnet

    def stack_fn(x):
        for index, (filters, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=2):
            x = resnet.stack_residual_blocks_v1(x, filters, 1, stride1=stride, name=f"conv{index}")
        return x

    model = randomize_keras(resnet.ResNet(stack_fn, False, True, weights=None, input_shape=(SIZE, SIZE, 3),
                                          classes=10, classifier_activation=None), seed=3)
    conversion = zoo.convert.from_keras(model)
    assert dict(conversion.knobs) == {**KERAS_KNOBS, "layers": (1, 1, 1, 1), "num_classes": 10}
    theirs = np.asarray(model(BATCH.transpose(0, 2, 3, 1), training=False))
    compare(conversion, theirs, zoo.FRAMEWORKS, "keras ResNet, one block per stage")


def test_keras_resnet_v2_is_refused():
    with pytest.raises(ConversionError, match="ResNet v2, which the zoo does not build.*last block"):
        zoo.convert.from_keras(keras.applications.ResNet50V2(weights=None, input_shape=(SIZE, SIZE, 3)))
    with pytest.raises(ConversionError, match="include_top=False"):
        zoo.convert.from_keras(keras.applications.ResNet50(weights=None, include_top=False,
                                                           input_shape=(SIZE, SIZE, 3)))


# ------------------------------------------------------------------------------------ Gluon model zoo

GLUON_V1 = {"stride_in_1x1": True, "conv_bias": "bottleneck_1x1"}
GLUON_V2 = {"preactivation": True, "input_norm": True}
GLUON = {
    "resnet18_v1": ("resnet18", {}),
    "resnet34_v1": ("resnet34", {}),
    "resnet50_v1": ("resnet50", GLUON_V1),
    "resnet101_v1": ("resnet101", GLUON_V1),
    "resnet152_v1": ("resnet152", GLUON_V1),
    "resnet18_v2": ("resnet18", GLUON_V2),
    "resnet34_v2": ("resnet34", GLUON_V2),
    "resnet50_v2": ("resnet50", GLUON_V2),
    "resnet101_v2": ("resnet101", GLUON_V2),
    "resnet152_v2": ("resnet152", GLUON_V2),
}


def _gluon_ready(net, seed: int = 0):
    import mxnet as mx

    net.initialize()
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))  # deferred shapes
    return randomize_gluon(net, seed=seed)


def _gluon_logits(net) -> np.ndarray:
    import mxnet as mx

    return net(mx.nd.array(BATCH)).asnumpy()


@pytest.mark.parametrize("name", GLUON)
def test_gluon(name):
    from mxnet.gluon.model_zoo import vision

    net = _gluon_ready(vision.get_model(name))
    conversion = zoo.convert.from_gluon(net)
    assert (conversion.name, dict(conversion.knobs)) == GLUON[name]
    compare(conversion, _gluon_logits(net), ("mxnet", "torch") if name in ALSO_IN_TORCH else ("mxnet",),
             f"gluon {name}")


@pytest.mark.parametrize("version, block, knobs", [
    (1, "BasicBlockV1", {}),            # resnet18_v1, resnet34_v1
    (1, "BottleneckV1", GLUON_V1),      # resnet50_v1 .. resnet152_v1
    (2, "BottleneckV2", GLUON_V2),      # resnet18_v2 .. resnet152_v2 (the basic v2 block: test_knobs_*)
])
def test_gluon_variants_in_every_framework(version, block, knobs):
    """Gluon's ResNetV1 / ResNetV2 with one block per stage and 10 classes, in all four frameworks."""
    from mxnet.gluon.model_zoo import vision

    channels = [64, 64, 128, 256, 512] if block.startswith("Basic") else [64, 256, 512, 1024, 2048]
    net = getattr(vision, f"ResNetV{version}")(getattr(vision, block), [1, 1, 1, 1], channels, classes=10)
    net = _gluon_ready(net, seed=4)
    conversion = zoo.convert.from_gluon(net)
    assert dict(conversion.knobs) == {**knobs, "layers": (1, 1, 1, 1), "num_classes": 10}
    compare(conversion, _gluon_logits(net), zoo.FRAMEWORKS, f"gluon ResNetV{version}({block})")


def test_gluon_thumbnail_is_refused():
    from mxnet.gluon.model_zoo import vision

    net = vision.get_resnet(1, 18, thumbnail=True)
    net.initialize()
    with pytest.raises(ConversionError, match="thumbnail"):
        zoo.convert.from_gluon(net)


# ------------------------------------------------------------------------------------------ the knobs

SMALL = dict(num_classes=10, layers=(1, 2, 1), widths=(8, 16, 32), stem_width=8)
# (model, knobs, whether outputs are compared here too: the others are, in the reference tests above)
KNOBS = [
    ("resnet50", dict(conv_bias="all", stride_in_1x1=True), False),
    ("resnet50", dict(conv_bias="bottleneck_1x1"), False),
    ("resnet50", dict(preactivation=True, input_norm=True), False),
    ("se_resnet18", dict(se_divisor=8, se_reduction=4), False),
    ("resnet18", dict(conv_bias="all"), True),
    ("resnet18", dict(preactivation=True, input_norm=True), True),
    ("se_resnet50", dict(conv_bias="all", input_norm=True), True),
]


@pytest.mark.parametrize("name, knobs, outputs", KNOBS, ids=[f"{n}-{'-'.join(k)}" for n, k, _ in KNOBS])
def test_knobs_agree_across_frameworks(name, knobs, outputs):
    expected = counts(name, "torch", **SMALL, **knobs)
    assert all(counts(name, framework, **SMALL, **knobs) == expected for framework in zoo.FRAMEWORKS)
    for framework in zoo.FRAMEWORKS if outputs else ():
        if framework != "torch":
            compare_with_torch(name, framework, size=32, **SMALL, **knobs)


def test_knob_parameter_counts_match_the_references():
    base = counts("resnet50", "torch")
    # Keras' ResNet50: every convolution has a bias
    assert counts("resnet50", "torch", conv_bias="all")[0] - base[0] == 26_560
    # Gluon's resnet50_v1: biases on the bottleneck's 1x1 convolutions; Gluon's own total
    assert counts("resnet50", "torch", conv_bias="bottleneck_1x1", stride_in_1x1=True) == (
        base[0] + 18_880, 25_629_032)
    # Gluon's resnet50_v2 counts 25,595,060 with the input BatchNorm's unused gamma and beta (3 + 3)
    assert counts("resnet50", "torch", preactivation=True, input_norm=True)[1] == 25_595_060 - 6
    assert counts("resnet18", "torch", preactivation=True, input_norm=True)[1] == 11_695_796 - 6
    # timm's seresnet18: 64-channel stages squeeze to 8 channels (C // 16 = 4): 11,779,624 trainable
    assert counts("se_resnet18", "torch", se_divisor=8)[0] == 11_779_624
    state = zoo.create_model("resnet18", "torch", preactivation=True, input_norm=True).state_dict()
    assert {"input_bn.running_mean", "final_bn.weight", "layer2.0.downsample.0.weight"} <= set(state)
    assert "input_bn.weight" not in state and "layer2.0.downsample.1.weight" not in state
    assert tuple(state["layer2.0.bn1.weight"].shape) == (64,)  # the block's input, pre-activated


@pytest.mark.parametrize("name, knobs, message", [
    ("resnet18", dict(conv_bias="bottleneck_1x1"), "basic block has none"),
    ("resnet50", dict(conv_bias="some"), "conv_bias"),
    ("resnet50", dict(preactivation=True, zero_init_residual=True), "zero_init_residual"),
    ("se_resnet50", dict(preactivation=True), "preactivation"),
    ("se_resnet50", dict(se_divisor=0), "se_divisor"),
])
def test_knob_validation(name, knobs, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, "torch", **knobs)


def test_default_models_are_unchanged():
    for name in ("resnet50", "se_resnet18"):
        spec = zoo.get_spec(name)
        assert counts(name, "torch") == (spec.params, spec.params_total)
