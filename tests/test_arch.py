"""The architecture study: stage outlines against the counter, published accuracy, `arch` and `efficiency`.

The counter traces on PyTorch's meta device (no weights, no arithmetic), so these run on small models
and small inputs in a few seconds.
"""
from __future__ import annotations

import json
import math

import pytest

import zoo
from compare import arch, cli, efficiency, flops
from zoo.arith import conv_out

# (model, knobs, input size): the smallest of the families whose stage layouts differ most. LeNet-5's
# unpadded 5x5 convolutions shrink the map besides the strides, the others' padding keeps it.
CASES = [
    ("lenet5", {}, None),
    ("resnet18", {}, 64),
    ("densenet121", {"block_config": (2, 2, 2, 2), "growth_rate": 8}, 64),
    ("mobilenet_v2", {}, 64),
]
TORCHVISION_FAMILIES = ("alexnet", "vgg", "googlenet", "resnet", "densenet", "mobilenet", "efficientnet")


@pytest.mark.torch
@pytest.mark.parametrize("name, knobs, size", CASES, ids=[c[0] for c in CASES])
def test_stages_add_up_to_the_counter_and_follow_the_spec_strides(name, knobs, size):
    record = arch.describe(name, size, knobs)
    stages = record["stages"]
    spec = zoo.get_spec(name)
    config = spec.configure(**knobs)
    assert [s["name"] for s in stages] == [s.name for s in config.outline()]
    assert stages[-1]["name"] == "head" and stages[-1]["output"] == [spec.num_classes]
    assert sum(s["macs"] for s in stages) == record["macs"] == flops.count_macs(name, size, overrides=knobs)
    assert sum(s["params"] for s in stages) == record["params"]
    assert record["params_not_run"] == 0
    if not knobs:
        assert record["params"] == spec.params
    assert math.isclose(sum(s["params_share"] for s in stages), 1.0)
    assert all(s["macs"] > 0 for s in stages)
    # Every map stage shrinks the map by the stride the spec declares for it (these inputs divide evenly).
    resolution = record["input_size"]
    for stage in stages[:-1] if name != "lenet5" else ():
        resolution //= stage["stride"]
        assert stage["output"][1:] == [resolution, resolution], stage["name"]


@pytest.mark.torch
def test_depth_and_receptive_field_are_the_textbook_figures():
    # ResNet-18 is 18 layers deep (the 1x1 shortcut projections are not on the longest path); its last
    # stage sees 435 pixels, as receptive-field calculators give for torchvision's model.
    record = arch.describe("resnet18", 64)
    assert record["depth"] == 18
    assert record["receptive_field"] == 435 and record["last_stage"] == "layer4"
    assert arch.describe("lenet5")["depth"] == 5
    # LeNet-5's C3-S4 output: 5x5 conv, 2x2 pool, 5x5 conv, 2x2 pool -> 1 + 4 + 1*2 + 4*2 + 1*4 = 16 pixels.
    assert arch.describe("lenet5")["stages"][1]["receptive_field"] == 16
    assert conv_out(32, 5) // 2 == arch.describe("lenet5")["stages"][0]["output"][1]


@pytest.mark.core
def test_every_model_has_a_published_figure_with_its_source_or_a_reason():
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        assert spec.accuracy_source, f"{name}: no source (or reason) for its accuracy"
        if spec.top1 is None:
            assert spec.top5 is None, name
            continue
        low = 90.0 if not spec.accuracy_dataset.startswith(("ImageNet", "ILSVRC")) else 50.0
        assert low < spec.top1 < 100.0, (name, spec.top1)
        if spec.top5 is not None:
            assert spec.top1 < spec.top5 < 100.0, name
        if spec.accuracy_source.startswith("torchvision"):
            assert f"acc@1 {spec.top1:.3f}" in spec.accuracy_source, name
    # The models torchvision ships weights for carry its figures.
    for name in ("alexnet", "vgg16_bn", "googlenet", "resnet50", "densenet121", "mobilenet_v3_large",
                 "shufflenet_v2_x1_0", "efficientnet_b0"):
        spec = zoo.get_spec(name)
        assert spec.family in TORCHVISION_FAMILIES + ("shufflenet",)
        assert spec.top1 is not None and spec.top5 is not None, name
        assert spec.accuracy_source.startswith("torchvision ") and "IMAGENET1K_V1" in spec.accuracy_source, name
        assert spec.accuracy_recipe, name
    assert zoo.get_spec("resnet50").top1 == 76.130 and zoo.get_spec("resnet50").top5 == 92.862
    assert zoo.get_spec("lenet5").accuracy_dataset.startswith("MNIST")


@pytest.mark.torch
def test_arch_cli_prints_one_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "arch.json"
    # LeNet-5's dense head takes 32x32 only: the whole run stops before any table.
    assert cli.main(["arch", "resnet18", "lenet5", "--input-size", "64", "--json", str(path)]) == 2
    assert "lenet5 takes only 32x32" in capsys.readouterr().err and not path.exists()
    assert cli.main(["arch", "lenet5", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "C1-S2 (5x5 conv, 2x2 avg pool)" in out and "head (3 x fc)" in out and "total: depth 5" in out
    data = json.loads(path.read_text())
    (record,) = data["models"]
    assert record["model"] == "lenet5" and record["params"] == 61_706
    assert [s["output"] for s in record["stages"]] == [[6, 14, 14], [16, 5, 5], [10]]


@pytest.mark.torch
def test_arch_takes_knob_variants():
    knobs = {"block_config": (2, 2), "growth_rate": 8}
    record = arch.describe("densenet121", 64, knobs)
    assert [s["name"] for s in record["stages"]] == ["stem", "denseblock1", "transition1", "denseblock2", "head"]
    assert record["stages"][1]["label"] == "denseblock1 (2 x DenseLayer: 1x1, 3x3 conv)"
    assert record["stages"][3]["output"] == [record["stages"][2]["output"][0] + 2 * 8, 8, 8]


@pytest.mark.parametrize("argv, expected", [
    (["arch", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["arch", "resnet18", "--set", "growth_rate=8"], "--set for resnet18"),
    (["arch", "vgg16", "--input-size", "8"], "below vgg16's minimum"),
    (["efficiency", "--frameworks", "caffe"], "unknown framework 'caffe'"),
    (["efficiency", "--bench", "/nonexistent/bench"], "no results.json"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, expected, capsys, tmp_path):
    assert cli.main(argv + (["--out", str(tmp_path)] if argv[0] == "efficiency" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("zoo-compare: error: ") and expected in err, err


@pytest.mark.torch
def test_efficiency_data_has_every_model_with_an_imagenet_figure(tmp_path, capsys, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    records = [
        {"model": "resnet18", "framework": "torch", "status": "ok", "mode": "infer", "batch_size": b,
         "images_per_sec": 10.0 * b, "implementation": "zoo", "knobs": {}} for b in (1, 8)
    ] + [{"model": "resnet18", "framework": "tf", "status": "failed", "mode": "infer", "batch_size": 8}]
    (bench / "results.json").write_text(json.dumps(records))
    # Cheap counts: the plot and the file, not the counter, are under test here.
    monkeypatch.setattr(flops, "count_macs", lambda name, *a, **k: 10 ** 9)
    assert cli.main(["efficiency", "--out", str(tmp_path / "out"), "--bench", str(bench)]) == 0
    data = json.loads((tmp_path / "out" / "efficiency.json").read_text())
    assert (tmp_path / "out" / "efficiency.png").stat().st_size > 0
    plotted = {d["model"] for d in data["models"]}
    left_out = {d["model"] for d in data["not_plotted"]}
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        assert (name in plotted) == efficiency.imagenet(spec), name
        assert (name in plotted) != (name in left_out), name
    assert "lenet5" in left_out and "resnet50" in plotted
    assert data["bench"] == [{"model": "resnet18", "framework": "torch", "batch_size": 8, "images_per_sec": 80.0}]
