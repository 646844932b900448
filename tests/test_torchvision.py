"""Parity with torchvision (-m reference): for every model torchvision shares with the zoo, identical
state_dict keys and shapes, a torchvision state_dict loads with strict=True, `zoo.convert.from_torchvision`
finds the model, and with random weights (BatchNorm statistics included) both give the same outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

import zoo
import zoo.convert
import zoo_torch
from conftest import random_images
from reference_checks import assert_logits_match, zoo_logits

pytestmark = [pytest.mark.reference, pytest.mark.torch]

# torchvision builds GoogLeNet with auxiliary classifiers unless told otherwise; the zoo's default has none.
TORCHVISION_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": True}}
SHARED = [name for name in zoo.list_models() if name in set(torchvision.models.list_models())]


def reference(name: str) -> torch.nn.Module:
    model = torchvision.models.get_model(name, weights=None, **TORCHVISION_KWARGS.get(name, {}))
    return zoo_torch.randomize(model, seed=1).eval()


def test_the_zoo_shares_34_models_with_torchvision():
    assert len(SHARED) == 34, SHARED


@pytest.mark.parametrize("name", SHARED)
def test_same_state_dict_and_outputs_as_torchvision(name):
    theirs = reference(name)
    model = zoo.create_model(name, "torch").eval()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    model.load_state_dict(theirs.state_dict(), strict=True)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in theirs.parameters())
    conversion = zoo.convert.from_torchvision(theirs)
    assert (conversion.name, dict(conversion.knobs)) == (name, {})
    images = random_images(name, batch=2)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(images)).numpy()
        assert_logits_match(model(torch.from_numpy(images)).numpy(), expected, f"{name} (state_dict loaded)")
    # The other frameworks take these weights through the canonical format: test_models compares them
    # with PyTorch on every model, test_reference_* with each reference.


def test_a_torchvision_variant_the_zoo_does_not_build_is_refused_with_what_differs():
    dilated = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    with pytest.raises(zoo.convert.ConversionError, match="layer3.0.conv2.*stride"):
        zoo.convert.from_torchvision(dilated)
    with pytest.raises(zoo.convert.ConversionError, match="aux_logits"):
        zoo.convert.from_torchvision(torchvision.models.googlenet(aux_logits=True, init_weights=False))
    with pytest.raises(zoo.convert.ConversionError, match="ConvNeXt"):
        zoo.convert.from_torchvision(torchvision.models.convnext_tiny())


def test_num_classes_and_in_channels_become_knobs():
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    conversion = zoo.convert.from_torchvision(zoo_torch.randomize(model).eval())
    assert (conversion.name, dict(conversion.knobs)) == ("resnet18", {"num_classes": 10, "in_channels": 1})
    images = np.random.default_rng(0).standard_normal((2, 1, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    assert_logits_match(zoo_logits(conversion, "torch", images), expected, "resnet18 1-channel")
