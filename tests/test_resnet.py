"""ResNet family: variants that are a call (CIFAR ResNet-18, ResNeXt, wide ResNet), torchvision key
names, knobs and their validation."""
from __future__ import annotations

import pytest

import zoo
from zoo.specs.resnet import ResNetConfig, bn_state, resnet_config
from variant_checks import ALL_FRAMEWORKS, OTHER_FRAMEWORKS, compare_with_torch, counts

# kuangliu/pytorch-cifar's ResNet18 (3x3/1 stem, no max pool, 10 classes): 11,173,962 parameters.
CIFAR_RESNET18 = dict(num_classes=10, stem="cifar")
CIFAR_RESNET18_PARAMS = 11_173_962
# A small ResNeXt-style network: grouped 3x3 convolutions of 4 groups x 2 channels in the first stage.
SMALL_RESNEXT = dict(num_classes=5, layers=(1, 2), widths=(16, 32), stem="cifar", stem_width=8,
                     groups=4, width_per_group=8)


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_cifar_resnet18_counts(framework):
    config = resnet_config(18, stem="cifar")
    expected = (CIFAR_RESNET18_PARAMS, CIFAR_RESNET18_PARAMS + bn_state(config))
    assert counts("resnet18", framework, **CIFAR_RESNET18) == expected


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_cifar_resnet18_at_32x32_matches_torch(framework):
    compare_with_torch("resnet18", framework, size=32, **CIFAR_RESNET18)


def test_cifar_stem_keeps_the_resolution():
    import torch

    model = zoo.create_model("resnet18", "torch", **CIFAR_RESNET18).eval()
    with torch.no_grad():
        stage1 = model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(torch.zeros(1, 3, 32, 32))))))
    assert tuple(stage1.shape) == (1, 64, 32, 32)
    assert zoo.backend("torch").infer_output_shape(model, (2, 3, 32, 32)) == (2, 10)


@pytest.mark.parametrize("name, overrides, params", [
    # torchvision's figures (docs: num_params)
    ("resnet50", dict(groups=32, width_per_group=4), 25_028_904),   # resnext50_32x4d
    ("resnet50", dict(width_per_group=128), 68_883_240),            # wide_resnet50_2
])
def test_resnext_and_wide_resnet_are_calls(name, overrides, params):
    assert counts(name, "torch", **overrides)[0] == params


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_small_resnext_matches_torch(framework):
    compare_with_torch("resnet50", framework, size=16, **SMALL_RESNEXT)


def test_grouped_convolution_shapes():
    state = zoo.create_model("resnet50", "torch", **SMALL_RESNEXT).state_dict()
    assert tuple(state["layer1.0.conv2.weight"].shape) == (8, 2, 3, 3)    # 4 groups of 2 channels
    assert tuple(state["layer2.1.conv2.weight"].shape) == (16, 4, 3, 3)


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_small_resnext_counts_agree(framework):
    assert counts("resnet50", framework, **SMALL_RESNEXT) == counts("resnet50", "torch", **SMALL_RESNEXT)


def test_torchvision_key_names_and_shapes():
    state = zoo.create_model("resnet50", "torch").state_dict()
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.weight": (256,),
        "layer2.0.conv2.weight": (128, 128, 3, 3),   # v1.5: the stride-2 3x3
        "layer4.2.bn3.num_batches_tracked": (),
        "fc.weight": (1000, 2048),
        "fc.bias": (1000,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert "layer1.1.downsample.0.weight" not in state
    assert sum(k.endswith(".downsample.0.weight") for k in state) == 4
    resnet18 = zoo.create_model("resnet18", "torch").state_dict()
    assert "layer1.0.downsample.0.weight" not in resnet18  # 64 -> 64 at stride 1: identity shortcut
    assert tuple(resnet18["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)


def test_v15_stride_on_the_3x3():
    model = zoo.create_model("resnet50", "torch")
    assert model.layer2[0].conv1.stride == (1, 1)
    assert model.layer2[0].conv2.stride == (2, 2)
    assert model.layer2[0].downsample[0].stride == (2, 2)


def test_v1_stride_on_the_first_1x1():
    """The paper's v1 (Keras' ResNet50, Gluon's resnet50_v1): the same parameters, fewer multiply-adds."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    def flop_count(model):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(torch.zeros(1, 3, 224, 224))
        return counter.get_total_flops()

    v1, v15 = zoo.create_model("resnet50", "torch", stride_in_1x1=True), zoo.create_model("resnet50", "torch")
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert counts("resnet50", "torch", stride_in_1x1=True) == counts("resnet50", "torch")
    assert 0.93 < flop_count(v1) / flop_count(v15) < 0.96


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_v1_bottleneck_matches_torch(framework):
    compare_with_torch("resnet50", framework, size=32, num_classes=10, layers=(1, 2, 1), widths=(8, 16, 32),
                       stem_width=8, stride_in_1x1=True)


def test_torchvision_initialisation():
    model = zoo.create_model("resnet18", "torch").requires_grad_(False)
    assert float(model.bn1.weight.min()) == float(model.bn1.weight.max()) == 1.0
    # kaiming_normal_(mode="fan_out"): std = sqrt(2 / (out_channels * k * k))
    std = float(model.layer3[0].conv1.weight.std())
    assert abs(std - (2 / (256 * 9)) ** 0.5) < 0.1 * std
    zero = zoo.create_model("resnet50", "torch", zero_init_residual=True).requires_grad_(False)
    assert float(zero.layer1[0].bn3.weight.abs().max()) == 0.0
    basic = zoo.create_model("resnet18", "torch", zero_init_residual=True).requires_grad_(False)
    assert float(basic.layer1[0].bn2.weight.abs().max()) == 0.0


def test_batchnorm_knobs_reach_every_framework():
    small = dict(layers=(1, 2), widths=(8, 16), stem_width=8, bn_eps=1e-3, bn_momentum=0.01)
    model = zoo.create_model("resnet18", "torch", **small)
    assert (model.layer2[1].bn2.eps, model.layer2[1].bn2.momentum) == (1e-3, 0.01)
    tf_model = zoo.create_model("resnet18", "tf", **small)
    layer = tf_model.get_layer("layer2.1.bn2")
    assert layer.epsilon == pytest.approx(1e-3) and layer.momentum == pytest.approx(0.99)
    mx_model = zoo.create_model("resnet18", "mxnet", **small)
    bn = mx_model.layer2[1].bn2
    assert bn._kwargs["eps"] == pytest.approx(1e-3) and bn._kwargs["momentum"] == pytest.approx(0.99)


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_three_stage_resnet_and_other_widths_match_torch(framework):
    # He et al.'s CIFAR ResNet-20 layout (3 stages of 3 basic blocks, 16/32/64), with projection shortcuts.
    compare_with_torch("resnet18", framework, size=16, num_classes=10, stem="cifar", stem_width=16,
                       layers=(3, 3, 3), widths=(16, 32, 64), bn_eps=1e-3, bn_momentum=0.01)


def test_min_input_size():
    assert ResNetConfig().min_input_size() == 1
    assert ResNetConfig().feature_size(224) == 7
    assert ResNetConfig(stem="cifar").feature_size(32) == 4


@pytest.mark.parametrize("knobs, message", [
    (dict(block="resnext"), "block must be one of"),
    (dict(stem="tiny"), "stem must be one of"),
    (dict(layers=(2, 2, 2)), "same length"),
    (dict(layers=(2, 0, 2, 2)), "layers and widths"),
    (dict(block="basic", groups=32), "groups=1"),
    (dict(width_per_group=0), "width_per_group"),
    (dict(widths=(1, 2, 4, 8), width_per_group=4), "no channels per group"),
    (dict(bn_momentum=1.5), "bn_momentum"),
    (dict(bn_eps=0), "bn_eps"),
    (dict(block="basic", stride_in_1x1=True), "basic block has none"),
    (dict(preactivation=True, shortcut_norm=False), "preactivation=True needs shortcut_norm=True"),
])
def test_invalid_knobs_raise(knobs, message):
    with pytest.raises(ValueError, match=message):
        ResNetConfig(**knobs)
    with pytest.raises(ValueError, match=message):
        zoo.create_model("resnet50", "torch", **knobs)


def test_unknown_depth_and_knob():
    with pytest.raises(ValueError, match="ResNet depth"):
        resnet_config(20)
    with pytest.raises(TypeError, match="no option 'se_reduction'"):
        zoo.create_model("resnet50", "torch", se_reduction=16)
