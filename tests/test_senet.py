"""SE-ResNet family: parameter counts against the references, SE key names and placement, a small
SE configuration in every framework, and knob validation."""
from __future__ import annotations

import pytest

import zoo
from zoo.specs.resnet import ResNetConfig
from zoo.specs.senet import CADENE_SE_RESNET50, SEResNetConfig, se_params
from variant_checks import ALL_FRAMEWORKS, OTHER_FRAMEWORKS, compare_with_torch, counts

SMALL_SE = dict(num_classes=5, layers=(1, 1), widths=(16, 32), stem="cifar", stem_width=16, se_reduction=4)


def test_se_resnet50_count_equals_cadene():
    assert zoo.get_spec("se_resnet50").params == CADENE_SE_RESNET50 == 28_088_024
    assert counts("se_resnet50", "torch")[0] == CADENE_SE_RESNET50


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_counts_are_resnet_plus_se_modules(depth):
    se, plain = zoo.get_spec(f"se_resnet{depth}"), zoo.get_spec(f"resnet{depth}")
    assert se.params == plain.params + se_params(se.config)
    assert se.params_total - se.params == plain.params_total - plain.params  # SE adds no BatchNorm
    assert isinstance(se.config, ResNetConfig)


def test_se_key_names_and_shapes():
    state = zoo.create_model("se_resnet50", "torch").state_dict()
    expected = {
        "layer1.0.se.fc1.weight": (16, 256, 1, 1),
        "layer1.0.se.fc1.bias": (16,),
        "layer1.0.se.fc2.weight": (256, 16, 1, 1),
        "layer1.0.se.fc2.bias": (256,),
        "layer4.2.se.fc1.weight": (128, 2048, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "fc.weight": (1000, 2048),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    plain = set(zoo.create_model("resnet50", "torch").state_dict())
    assert plain < set(state)
    assert all(".se.fc" in key for key in set(state) - plain)  # torchvision's keys plus the SE ones
    assert "layer2.1.se.fc1.weight" in zoo.create_model("se_resnet18", "torch").state_dict()


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_small_se_resnet_keys_equal_torch(framework):
    backend = zoo.backend(framework)
    keys = set(backend.export_weights(zoo.create_model("se_resnet50", framework, **SMALL_SE)))
    assert keys == set(zoo.backend("torch").export_weights(zoo.create_model("se_resnet50", "torch", **SMALL_SE)))
    assert "layer2.0.se.fc2.bias" in keys


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_small_se_resnet_matches_torch(framework, block):
    compare_with_torch("se_resnet50", framework, size=16, block=block, **SMALL_SE)


def test_se_sits_on_the_residual_branch_before_the_addition():
    """With the excitation forced to 1 an SE-ResNet computes its ResNet; forced to 0, each block is
    relu(shortcut). Both hold only if SE scales the branch after its last BN, before the addition."""
    import torch

    small = {k: v for k, v in SMALL_SE.items() if k != "se_reduction"}
    plain = zoo.backend("torch").randomize(zoo.create_model("resnet50", "torch", **small), seed=1).eval()
    se = zoo.create_model("se_resnet50", "torch", **SMALL_SE).eval()
    se.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for module in se.modules():
            if hasattr(module, "fc2"):
                module.fc2.weight.zero_()
                module.fc2.bias.fill_(40.0)  # sigmoid = 1
        torch.testing.assert_close(se(x), plain(x), rtol=1e-5, atol=1e-5)
        block = se.layer2[0]
        block.se.fc2.bias.fill_(-40.0)  # sigmoid = 0: the branch vanishes
        h = torch.randn(2, 64, 8, 8)
        torch.testing.assert_close(block(h), torch.relu(block.downsample(h)), rtol=1e-5, atol=1e-6)


def test_senet_builds_through_resnet():
    from zoo_torch import resnet

    model = zoo.create_model("se_resnet18", "torch", **SMALL_SE)
    assert isinstance(model, resnet.ResNet)
    assert isinstance(model.layer1[0], resnet.BasicBlock)


@pytest.mark.parametrize("knobs, message", [
    (dict(se_reduction=0), "se_reduction"),
    (dict(se_reduction=2.5), "se_reduction"),
    (dict(block="basic", widths=(8, 16, 32, 64), se_reduction=16), "at most 8"),
    (dict(block="tiny"), "block must be one of"),
])
def test_invalid_knobs_raise(knobs, message):
    with pytest.raises(ValueError, match=message):
        SEResNetConfig(**knobs)
    with pytest.raises(ValueError, match=message):
        zoo.create_model("se_resnet50", "torch", **knobs)
