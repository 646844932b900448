"""LeNet-5's variants: the 28x28 form of d2l (first convolution padded by 2) and other head sizes."""
from __future__ import annotations

import pytest

import zoo
from variant_checks import ALL_FRAMEWORKS, OTHER_FRAMEWORKS, compare_with_torch, counts

D2L_MNIST = {"image_size": 28, "padding": 2}  # d2l.ai 7.6: LeNet on 1x28x28 Fashion-MNIST


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_28x28_lenet_has_the_classic_count(framework):
    # Padding 2 keeps 28x28 through the first convolution, so the head still sees 16x5x5.
    assert counts("lenet5", framework, **D2L_MNIST) == (61_706, 61_706)
    spec = zoo.get_spec("lenet5")
    assert spec.signature(spec.configure(**D2L_MNIST)).fixed_size == 28


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
@pytest.mark.parametrize("overrides", [D2L_MNIST, {"image_size": 28}, {"activation": "relu", "pooling": "max", "dropout": 0.5}])
def test_lenet_variants_match_pytorch(framework, overrides):
    compare_with_torch("lenet5", framework, size=overrides.get("image_size", 32), **overrides)


def test_unpadded_28x28_lenet_flattens_a_4x4_map():
    config = zoo.get_spec("lenet5").configure(image_size=28)
    assert config.feature_size() == 4
    assert counts("lenet5", "torch", image_size=28)[0] == 61_706 - 120 * 16 * (25 - 16)
