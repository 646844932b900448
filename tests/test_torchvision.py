"""Parity with torchvision, where torchvision is installed (it is not a dependency of the zoo).

For every model torchvision has: identical state_dict keys and shapes, a torchvision state_dict
loads with strict=True, and both give the same outputs.
"""
from __future__ import annotations

import pytest
import torch

import zoo
from conftest import random_images

torchvision = pytest.importorskip(
    "torchvision", reason="torchvision is not installed here; parity with it is checked where it is")

pytestmark = pytest.mark.torch

# torchvision builds GoogLeNet with auxiliary classifiers unless told otherwise; the zoo's default has none.
TORCHVISION_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": True}}
SHARED = [name for name in zoo.list_models() if name in set(torchvision.models.list_models())]


@pytest.mark.parametrize("name", SHARED)
def test_same_state_dict_and_outputs_as_torchvision(name):
    reference = torchvision.models.get_model(name, weights=None, **TORCHVISION_KWARGS.get(name, {})).eval()
    model = zoo.create_model(name, "torch").eval()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs
    model.load_state_dict(reference.state_dict(), strict=True)
    images = torch.from_numpy(random_images(name, batch=2, size=zoo.get_spec(name).input_size[1] // 2))
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
