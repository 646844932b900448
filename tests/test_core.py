"""The framework-neutral core: registry, specs, arithmetic, weight files and their errors."""
from __future__ import annotations

import numpy as np
import pytest

import zoo
from zoo.arith import conv_out, make_divisible, round_filters, round_repeats
from zoo.registry import FRAMEWORKS, Framework

pytestmark = pytest.mark.core

# Every model the zoo promises, by family.
EXPECTED_MODELS = {
    "lenet": ["lenet5", "lenet_d2l"],
    "alexnet": ["alexnet", "alexnet_d2l"],
    "vgg": [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")] + ["vgg11_d2l"],
    "nin": ["nin", "nin_d2l"],
    "googlenet": ["googlenet", "googlenet_d2l"],
    "resnet": [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + ["resnet18_d2l"],
    "senet": [f"se_resnet{d}" for d in (18, 34, 50, 101, 152)],
    "densenet": [f"densenet{d}" for d in (121, 161, 169, 201)] + ["densenet_d2l"],
    "mobilenet": ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"],
    "shufflenet": [f"shufflenet_v1_g{g}" for g in (1, 2, 3, 4, 8)]
                  + [f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")],
    "efficientnet": [f"efficientnet_b{i}" for i in range(8)],
}


@pytest.mark.parametrize("family", sorted(EXPECTED_MODELS))
def test_registry_has_every_promised_model(family):
    registered = set(zoo.list_models())
    missing = [name for name in EXPECTED_MODELS[family] if name not in registered]
    assert not missing
    assert all(zoo.get_spec(name).family == family for name in EXPECTED_MODELS[family])


@pytest.mark.parametrize("name", zoo.list_models())
def test_spec_is_complete(name):
    spec = zoo.get_spec(name)
    assert spec.name == name
    assert len(spec.input_size) == 3 and all(isinstance(v, int) and v > 0 for v in spec.input_size)
    assert 0 < spec.params <= spec.params_total
    assert spec.source.strip() and spec.paper.strip()
    signature = spec.signature()
    assert signature.fixed_size in (None, spec.input_size[1])
    assert signature.min_size <= spec.input_size[1] == spec.input_size[2]


def test_list_models_filters_by_pattern():
    assert zoo.list_models("lenet*") == ["lenet5", "lenet_d2l"]
    assert zoo.list_models("no-such-model*") == []


def test_unknown_model_names_the_closest_ones():
    with pytest.raises(zoo.UnknownModelError, match="unknown model 'lenet6'.*closest: lenet5"):
        zoo.get_spec("lenet6")
    with pytest.raises(KeyError):  # also a KeyError, for callers that expect one
        zoo.create_model("lenet6")


def test_unknown_framework_lists_the_known_ones():
    with pytest.raises(ValueError, match=f"unknown framework 'caffe'; expected one of {', '.join(FRAMEWORKS)}$"):
        zoo.create_model("lenet5", "caffe")


def test_missing_framework_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(FRAMEWORKS, "absent", Framework("absent", "zoo_absent_backend", ("zoo_absent_backend",),
                                                        "pip install absent", "Absent", "#000000"))
    with pytest.raises(zoo.FrameworkUnavailableError, match="not installed here; install it with: pip install absent"):
        zoo.create_model("lenet5", "absent")
    assert "absent" not in zoo.available_frameworks()


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
    ({"num_classes": 2.5}, "num_classes must be a positive integer"),
    ({"in_channels": -1}, "in_channels must be a positive integer, got -1"),
    ({"in_channels": True}, "in_channels must be a positive integer"),
    ({"dtype": "float16"}, "dtype must be one of 'float32', 'float64'; got 'float16'"),
])
def test_impossible_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("lenet5", **kwargs)


def test_unknown_option_lists_the_family_knobs():
    with pytest.raises(TypeError, match="lenet5 has no option 'width_mult'; its lenet options are: channels"):
        zoo.create_model("lenet5", width_mult=2.0)


@pytest.mark.parametrize("overrides", [{"activation": "gelu"}, {"image_size": 8}, {"padding": -1}])
def test_invalid_knob_values_are_value_errors(overrides):
    with pytest.raises(ValueError):
        zoo.get_spec("lenet5").configure(**overrides)


@pytest.mark.parametrize("value, divisor, expected", [
    (32 * 0.75, 8, 24), (16 * 0.35, 8, 8), (1280 * 1.4, 8, 1792), (96 * 0.5, 8, 48), (35, 8, 32), (27, 8, 32),
    (3, 8, 8),
])
def test_make_divisible_follows_the_reference_rule(value, divisor, expected):
    assert make_divisible(value, divisor) == expected


def test_compound_scaling_of_efficientnet():
    # EfficientNet-B4: width 1.4, depth 1.8 (Tan & Le 2019, Table 1 scaled).
    assert round_filters(32, 1.4) == 48
    assert round_filters(320, 1.4) == 448
    assert round_repeats(4, 1.8) == 8
    assert round_repeats(1, 1.8) == 2


@pytest.mark.parametrize("size, kernel, stride, padding, ceil, expected", [
    (224, 7, 2, 3, False, 112), (112, 3, 2, 1, False, 56), (112, 3, 2, 0, True, 56), (56, 3, 2, 0, True, 28),
    (14, 3, 2, 0, True, 7), (7, 2, 2, 0, True, 4), (6, 3, 3, 1, True, 3), (5, 3, 2, 1, True, 3),
    (8, 3, 3, 1, True, 3),  # the last window would start in the padding: dropped
])
def test_conv_out_matches_pytorchs_rule(size, kernel, stride, padding, ceil, expected):
    assert conv_out(size, kernel, stride, padding, ceil_mode=ceil) == expected


def test_weight_file_round_trip(tmp_path):
    mapping = {"features.0.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "fc.bias": np.ones(3, np.float32)}
    zoo.weights.save(tmp_path / "w.safetensors", mapping)
    loaded = zoo.weights.load(tmp_path / "w.safetensors")
    assert sorted(loaded) == sorted(mapping)
    for key in mapping:
        np.testing.assert_array_equal(loaded[key], mapping[key])


def test_missing_weight_file_is_named(tmp_path):
    with pytest.raises(zoo.WeightFileError, match="does not exist"):
        zoo.weights.load(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_malformed_weight_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "w.safetensors"
    zoo.weights.save(path, {"a": np.zeros((64, 64), np.float32)})
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not a weight file" * 8, "empty": b""}[damage])
    with pytest.raises(zoo.WeightFileError, match="is not a readable safetensors weight file"):
        zoo.weights.load(path)


def test_weight_mismatch_names_every_problem():
    expected = {"a.weight": (2, 3), "a.bias": (2,), "b.weight": (4,)}
    mapping = {"a.weight": np.zeros((3, 2)), "b.weight": np.zeros(4), "c.weight": np.zeros(1)}
    with pytest.raises(zoo.WeightMismatchError) as error:
        zoo.weights.check_mapping(expected, mapping, "net")
    text = str(error.value)
    assert "1 missing, 1 unexpected, 1 mis-shaped" in text.splitlines()[0]
    assert "missing: a.bias (expected shape (2,))" in text
    assert "unexpected: c.weight" in text
    assert "a.weight: expected (2, 3), got (3, 2)" in text


def test_input_signature_names_the_layout_mistake():
    signature = zoo.InputSignature(in_channels=3, min_size=32)
    signature.check((1, 3, 32, 40), "NCHW")
    with pytest.raises(zoo.InputShapeError, match="looks like an NHWC batch; this framework takes NCHW"):
        signature.check((1, 32, 32, 3), "NCHW")
    with pytest.raises(zoo.InputShapeError, match="below this model's minimum of 32"):
        signature.check((1, 3, 31, 64), "NCHW")
    with pytest.raises(zoo.InputShapeError, match="4-d NHWC batch"):
        signature.check((3, 32, 32), "NHWC")
