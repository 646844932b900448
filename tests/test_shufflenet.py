"""ShuffleNet V1 and V2 beyond the shared suite: width and group knobs, reference counts of
variants that are not registered, the channel shuffle order in every layout, torchvision's keys."""
from __future__ import annotations

import numpy as np
import pytest

import zoo
from conftest import FRAMEWORKS, OTHER_FRAMEWORKS, framework_params
from zoo.specs.shufflenet import ShuffleNetV1Config, ShuffleNetV2Config


# (model, knobs, trainable parameters at 1000 classes or None, source of the figure)
VARIANTS = [
    # osmr/imgclsmob's ShuffleNet x0.5 table; its stem is 12 channels wide at 0.5x, as Megvii's.
    ("shufflenet_v1_g3", {"width_mult": 0.5}, 718_324),
    ("shufflenet_v1_g1", {"width_mult": 0.5}, 534_484),
    # Megvii's 0.5x g=8 widens the stem to 16 so that the first unit's 176-channel branch splits
    # into 8 groups; the README gives "1.0M" parameters, no exact figure.
    ("shufflenet_v1_g8", {"width_mult": 0.5}, None),
    # Megvii's code without the classifier bias: 1,864,728 by its own rules.
    ("shufflenet_v1_g3", {"fc_bias": False}, 1_864_728),
]


@pytest.mark.parametrize("name, knobs, reference", VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_variant_counts_agree_across_frameworks(framework, name, knobs, reference):
    trainable, total = zoo.backend(framework).count_parameters(zoo.create_model(name, framework, **knobs))
    if framework != "torch":
        assert (trainable, total) == zoo.backend("torch").count_parameters(zoo.create_model(name, "torch", **knobs))
    if reference is not None:
        assert trainable == reference
    else:
        assert round(trainable / 1e6, 1) == 1.0


def test_v1_stem_and_bottleneck_follow_the_reference():
    assert ShuffleNetV1Config(groups=3, width_mult=0.5).stem_width() == 12
    assert ShuffleNetV1Config(groups=8, width_mult=0.5).stem_width() == 16
    assert ShuffleNetV1Config(groups=3, width_mult=2.0).stem_width() == 48
    first, second = ShuffleNetV1Config(groups=3).units()[:2]
    # The first unit: an ungrouped 24 -> 60 (= 240 // 4) conv, a 216-channel branch beside the shortcut.
    assert (first.in_channels, first.mid_channels, first.branch_channels, first.first_groups) == (24, 60, 216, 1)
    assert (second.in_channels, second.branch_channels, second.first_groups, second.stride) == (240, 240, 3, 1)


# Inputs of 32x32 leave a 1x1 map before the head: every unit still runs, quickly.
AGREEMENT = [
    ("shufflenet_v1_g3", {"width_mult": 0.5}),
    ("shufflenet_v1_g8", {"width_mult": 0.5}),
    ("shufflenet_v2_x0_5", {"stages_repeats": (2, 3, 2)}),
]


@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
@pytest.mark.parametrize("name, knobs", AGREEMENT, ids=lambda v: str(v))
def test_half_width_variants_match_pytorch(framework, name, knobs):
    torch_backend, backend = zoo.backend("torch"), zoo.backend(framework)
    reference = torch_backend.randomize(zoo.create_model(name, "torch", num_classes=10, **knobs), seed=11)
    model = zoo.create_model(name, framework, num_classes=10, **knobs)
    backend.load_weights(model, torch_backend.export_weights(reference))
    # 40x40 gives a 2x2 map in the last stage, so the global mean averages real positions.
    images = np.random.default_rng(12).standard_normal((3, 3, 40, 40)).astype(np.float32)
    expected = torch_backend.predict(reference, images)
    got = backend.predict(model, images)
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= 1e-4
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("knobs, message", [
    ({"groups": 2, "width_mult": 0.5}, "groups=2 must divide"),    # bottleneck 100 // 4 = 25
    ({"groups": 4, "width_mult": 0.5}, "groups=4 must divide"),    # bottleneck 136 // 4 = 34
    ({"groups": 3, "stage_channels": (241, 480, 960)}, "groups=3 must divide"),
    ({"groups": 5}, "Table 1 has groups"),
    ({"width_mult": 0}, "width_mult"),
    ({"stage_channels": (240, 480)}, "one entry per stage"),
])
def test_v1_invalid_knobs_raise(knobs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleNetV1Config(**knobs)
    with pytest.raises(ValueError, match=message):
        zoo.create_model("shufflenet_v1_g3", "torch", **knobs)


@pytest.mark.parametrize("knobs, message", [
    ({"stages_out_channels": (24, 117, 232, 464, 1024)}, "must be even"),
    ({"stages_out_channels": (24, 116, 232, 464)}, "needs the stem's"),
    ({"stages_repeats": (4, 0, 4)}, "positive integer"),
])
def test_v2_invalid_knobs_raise(knobs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleNetV2Config(**knobs)


def test_channel_shuffle_order_is_the_same_in_every_framework():
    zoo.backend("mxnet")  # restores numpy.bool before mxnet is imported
    import mxnet as mx
    import tensorflow as tf
    import torch

    from zoo_mxnet.shufflenet import ChannelShuffle as MxShuffle
    from zoo_tf.shufflenet import ChannelShuffle as TfShuffle
    from zoo_torch.shufflenet import channel_shuffle

    groups, per_group = 3, 4
    # Channel c holds the value c at every position; (g, C/g) transposed: new j*g + i = old i*C/g + j.
    expected = np.array([i * per_group + j for j in range(per_group) for i in range(groups)])
    nchw = np.broadcast_to(np.arange(groups * per_group, dtype=np.float32)[None, :, None, None], (2, 12, 2, 3)).copy()
    by_torch = channel_shuffle(torch.from_numpy(nchw), groups).numpy()
    by_tf = np.transpose(TfShuffle(groups)(tf.constant(np.transpose(nchw, (0, 2, 3, 1)))).numpy(), (0, 3, 1, 2))
    block = MxShuffle(groups)
    by_mxnet = block(mx.nd.array(nchw)).asnumpy()
    block.hybridize()
    by_mxnet_symbolic = block(mx.nd.array(nchw)).asnumpy()
    np.testing.assert_array_equal(by_torch[0, :, 0, 0], expected)
    for got in (by_tf, by_mxnet, by_mxnet_symbolic):
        np.testing.assert_array_equal(got, by_torch)


def test_v2_state_dict_keys_are_torchvisions():
    state = zoo.create_model("shufflenet_v2_x1_0", "torch").state_dict()
    shapes = {
        "conv1.0.weight": (24, 3, 3, 3),
        "conv1.1.running_var": (24,),
        "stage2.0.branch1.0.weight": (24, 1, 3, 3),
        "stage2.0.branch1.2.weight": (58, 24, 1, 1),
        "stage2.0.branch2.0.weight": (58, 24, 1, 1),
        "stage2.1.branch2.0.weight": (58, 58, 1, 1),
        "stage3.7.branch2.3.weight": (116, 1, 3, 3),
        "stage4.3.branch2.6.bias": (232,),
        "conv5.0.weight": (1024, 464, 1, 1),
        "fc.weight": (1000, 1024),
        "fc.bias": (1000,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert not [k for k in state if k.startswith("stage2.1.branch1")]  # stride-1 units keep an empty branch1
    # 6 tensors per conv + BatchNorm (num_batches_tracked included, as in torchvision's checkpoint):
    # 12 in conv1 and conv5, 2 in fc, 30 per stride-2 unit, 18 per stride-1 unit.
    assert len(state) == 12 + 2 + 3 * 30 + 13 * 18


@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_in_channels_and_num_classes_reach_every_framework(framework):
    backend = zoo.backend(framework)
    model = zoo.create_model("shufflenet_v2_x0_5", framework, num_classes=5, in_channels=1, stages_repeats=(1, 1, 1))
    assert backend.predict(model, np.zeros((1, 1, 33, 33), np.float32)).shape == (1, 5)
