"""The compare tool: every command on tiny settings, its outputs checked for content, and its errors.

Throwaway models (a spec whose input size its network rejects, a family whose builder kills its
process) are registered by a plugin file for these tests only, and removed afterwards.
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import zoo
from compare import baseline, bench, cli, crosscheck, flops, layers, summary, tour
from compare.frameworks import PLUGINS_ENV
from compare.tables import format_table
from conftest import FRAMEWORKS, OTHER_FRAMEWORKS, framework_params

ROOT = Path(__file__).resolve().parent.parent
LENET_MACS = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10  # by hand, from LeCun 1998
TINY = dict(repeat=2, min_round_s=0.01, warmup_s=0.0, peak_n=128, threads=1, show_progress=False, plots=False)

PLUGIN = textwrap.dedent('''
    import os
    from zoo.registry import ModelSpec, register, _REGISTRY
    from zoo.specs.lenet import LeNetConfig

    def _spec(name, family, size):
        return ModelSpec(name=name, family=family, config=LeNetConfig(), input_size=(1, size, size),
                         num_classes=10, params=61_706, params_total=61_706, source="test", paper="test")

    if "lenet5_badsize" not in _REGISTRY:
        # LeNet's network takes only 32x32, but this spec says 28: its cells fail at the first call.
        register(_spec("lenet5_badsize", "lenet", 28))
        # A family whose PyTorch builder ends its process, as a segfault or an out-of-memory kill would.
        import zoo_torch
        zoo_torch.FAMILIES["crashy"] = lambda config, *, num_classes, in_channels: os._exit(3)
        register(_spec("crashy", "crashy", 32))
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    from compare.frameworks import load_plugins
    from zoo.registry import _REGISTRY

    path = tmp_path / "zoo_test_plugin.py"
    path.write_text(PLUGIN)
    monkeypatch.setenv(PLUGINS_ENV, str(path))
    load_plugins()
    yield path
    for name in ("lenet5_badsize", "crashy"):
        _REGISTRY.pop(name, None)
    zoo.backend("torch").FAMILIES.pop("crashy", None)
    sys.modules.pop("zoo_plugin_zoo_test_plugin", None)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    # and a private in-process memo: a count made by an earlier test would never reach this cache file
    monkeypatch.setattr(flops, "_MEMO", {})
    monkeypatch.setattr(flops, "_DISK", None)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- list and the operation counter

@pytest.mark.torch
def test_macs_of_lenet_equal_the_hand_count(tmp_path):
    assert flops.count_macs("lenet5") == LENET_MACS
    cached = json.loads(flops.cache_path().read_text())
    assert LENET_MACS in cached.values()


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.mxnet
def test_list_shows_counts_gflops_and_frameworks(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "list", "lenet*", "--json", str(tmp_path / "list.json"))
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("lenet5"))
    assert "61,706" in line and "1x32x32" in line and "torch,tf,mxnet" in line
    records = json.loads((tmp_path / "list.json").read_text())
    assert [r["model"] for r in records] == ["lenet5", "lenet_d2l"]
    record = records[0]
    assert record["params"] == 61_706
    assert record["gflops"] == pytest.approx(LENET_MACS / 1e9)


@pytest.mark.core
def test_list_unknown_pattern_is_an_error(capsys):
    code, _, err = run_cli(capsys, "list", "nonexistent*")
    assert code == 2 and "no model matches" in err


# ---------------------------------------------------------------- summary

@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_summary_lenet_side_by_side(capsys, framework):
    code, out, _ = run_cli(capsys, "summary", "lenet5", "--frameworks", f"{zoo.REFERENCE_FRAMEWORK},{framework}")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("features", "classifier"))}
    assert list(rows)[:3] == ["features.0", "features.1", "features.2"]
    # conv 1: 6 maps of 28x28 and 6*25+6 parameters, the same in both frameworks
    assert rows["features.0"][2:] == ["6x28x28", "156"] * 2
    assert rows["classifier.4"][2:] == ["10", "850"] * 2
    total = next(line for line in out.splitlines() if line.startswith("total trainable"))
    assert total.split()[2:] == ["61,706"] * 2
    assert "agree on every layer" in out


@pytest.mark.core
def test_summary_marks_mismatches():
    a, b = layers.LayerTable("torch"), layers.LayerTable("mxnet")
    a.layers = {"conv": layers.Layer("conv", "Conv2d", (6, 28, 28), 156, 156), "act": layers.Layer("act", "Tanh", (6, 28, 28))}
    b.layers = {"conv": layers.Layer("conv", "Conv2D", (6, 28, 28), 150, 150), "act": layers.Layer("act", "Act", (6, 28, 28))}
    for table in (a, b):
        table.output_shape, table.params, table.params_total = (10,), 156, 156
    rows, mismatches = summary.rows_for([a, b])
    marked = {row[0] for row in rows if row[-1] == summary.MARK}
    assert marked == {"conv"} and mismatches == 1


# ---------------------------------------------------------------- crosscheck

@pytest.mark.parametrize("a, b", list(itertools.combinations(FRAMEWORKS, 2)))  # every pair: marked by both
def test_crosscheck_agrees_and_writes_json(capsys, tmp_path, a, b):
    path = tmp_path / "cc.json"
    code, out, _ = run_cli(capsys, "crosscheck", "lenet5", "--frameworks", f"{a},{b}", "--json", str(path))
    assert code == 0, out
    [record] = json.loads(path.read_text())["records"]
    assert (record["a"], record["b"]) == (a, b)
    assert 0 <= record["rel_error"] <= 1e-4 and record["top1_agreement"] == 1.0 and record["ok"]
    assert 0 <= record["max_abs_error"] < 1e-3
    # LeNet's float32 rounding is far below --tol, which therefore judges it.
    assert 0 < record["noise_floor"] < 1e-5 and record["noise_factor"] == crosscheck.NOISE_FACTOR
    assert (record["bound"], record["bound_source"]) == (1e-4, "tol") and record["bn_stats"] == "batches"


@pytest.mark.torch
@pytest.mark.mxnet
def test_crosscheck_fails_on_a_planted_mismatch(capsys, monkeypatch, tmp_path):
    backend = zoo.backend("mxnet")
    load = backend.load_weights

    def perturbed(model, mapping):  # one bias off by a little: what a layout slip looks like
        mapping = dict(mapping)
        mapping["classifier.4.bias"] = mapping["classifier.4.bias"] + 0.05
        load(model, mapping)

    monkeypatch.setattr(backend, "load_weights", perturbed)
    path = tmp_path / "cc.json"
    code, out, err = run_cli(capsys, "crosscheck", "lenet5", "--frameworks", "torch,mxnet", "--json", str(path))
    assert code == 1
    assert "FAIL" in out and "crosscheck FAILED" in err
    [record] = json.loads(path.read_text())["records"]
    assert record["rel_error"] > 1e-4 and not record["ok"]


def planted_mismatch_and_floor(monkeypatch, floor: float) -> None:
    """MXNet's LeNet one bias off by 2e-4 (a relative error of about 1e-3), and the noise floor made
    `floor` by moving the reference's float64 result that far: 1e-3 puts the pair within k floors,
    5e-5 puts k floors between --tol and the pair's error."""
    backend = zoo.backend("mxnet")
    load = backend.load_weights

    def perturbed(model, mapping):
        mapping = dict(mapping)
        mapping["classifier.4.bias"] = mapping["classifier.4.bias"] + 2e-4
        load(model, mapping)

    exact = crosscheck.reference_float64
    monkeypatch.setattr(backend, "load_weights", perturbed)
    monkeypatch.setattr(crosscheck, "reference_float64", lambda *args: exact(*args) * (1 + floor))


@pytest.mark.torch
@pytest.mark.mxnet
@pytest.mark.parametrize("floor, ok", [(1e-3, True), (5e-5, False)])
def test_crosscheck_judges_by_k_floors_where_they_exceed_tol(capsys, monkeypatch, tmp_path, floor, ok):
    planted_mismatch_and_floor(monkeypatch, floor)
    path = tmp_path / "cc.json"
    code, out, err = run_cli(capsys, "crosscheck", "lenet5", "--frameworks", "torch,mxnet", "--json", str(path))
    [record] = json.loads(path.read_text())["records"]
    assert record["noise_floor"] == pytest.approx(floor, rel=1e-2)
    assert record["bound"] == pytest.approx(crosscheck.NOISE_FACTOR * record["noise_floor"])
    assert record["bound_source"] == "k x floor" and "k x floor" in out
    assert record["tol"] < record["rel_error"]  # above --tol either way: the floor decides
    assert record["ok"] is ok and (record["rel_error"] <= record["bound"]) is ok
    assert code == (0 if ok else 1) and ("crosscheck FAILED" in err) is not ok


@pytest.mark.torch
@pytest.mark.mxnet
def test_crosscheck_noise_factor_0_judges_by_tol_alone(capsys, monkeypatch, tmp_path):
    planted_mismatch_and_floor(monkeypatch, 1e-3)
    path = tmp_path / "cc.json"
    code, out, _ = run_cli(capsys, "crosscheck", "lenet5", "--frameworks", "torch,mxnet", "--noise-factor", "0",
                           "--json", str(path))
    [record] = json.loads(path.read_text())["records"]
    assert code == 1 and (record["bound"], record["bound_source"]) == (1e-4, "tol") and not record["ok"]


@pytest.mark.torch
@pytest.mark.mxnet
def test_crosscheck_without_a_floor_judges_by_tol_and_says_why(capsys, monkeypatch, tmp_path):
    def no_float64(*args):
        raise RuntimeError("no float64 here")

    monkeypatch.setattr(crosscheck, "reference_float64", no_float64)
    path = tmp_path / "cc.json"
    code, out, _ = run_cli(capsys, "crosscheck", "lenet5", "--frameworks", "torch,mxnet", "--json", str(path))
    [record] = json.loads(path.read_text())["records"]
    assert code == 0 and record["ok"] and record["noise_floor"] is None
    assert record["noise_floor_note"] == "noise floor not measured: RuntimeError: no float64 here"
    assert (record["bound"], record["bound_source"]) == (1e-4, "tol")


@pytest.mark.torch
def test_crosscheck_records_a_failing_model_with_every_field_and_goes_on(capsys, plugin, tmp_path):
    path = tmp_path / "cc.json"
    code, out, _ = run_cli(capsys, "crosscheck", "lenet5_badsize", "lenet5", "--frameworks", "torch,mxnet",
                           "--json", str(path))
    bad, good = json.loads(path.read_text())["records"]
    assert code == 1 and bad["model"] == "lenet5_badsize" and "32x32" in bad["error"] and not bad["ok"]
    assert {"noise_floor", "bound", "bound_source", "bn_stats"} <= set(bad)
    assert good["model"] == "lenet5" and good["ok"] and good["noise_floor"] > 0


@pytest.mark.core
def test_bound_is_the_larger_of_tol_and_k_floors():
    assert crosscheck.bound_for(1e-4, 1e-5, 4) == (1e-4, "tol")
    assert crosscheck.bound_for(1e-4, 1e-4, 4) == pytest.approx((4e-4, "k x floor"))
    assert crosscheck.bound_for(1e-4, 1e-4, 0) == (1e-4, "tol")
    assert crosscheck.bound_for(1e-4, None, 4) == (1e-4, "tol")


@pytest.mark.torch
def test_batchnorm_statistics_come_from_the_batches():
    import torch

    backend = zoo.backend("torch")
    model = backend.randomize(zoo.create_model("resnet18", "torch", num_classes=4), seed=3)
    model.train()
    momentum = model.bn1.momentum
    batches = [np.random.default_rng(seed).standard_normal((4, 3, 32, 32)).astype(np.float32) for seed in (1, 2)]
    seen = []
    hook = model.bn1.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().double()))
    backend.calibrate_batchnorm(model, batches)
    hook.remove()
    per_batch_mean = [x.mean((0, 2, 3)) for x in seen]
    per_batch_var = [x.var((0, 2, 3), unbiased=True) for x in seen]
    torch.testing.assert_close(model.bn1.running_mean.double(), sum(per_batch_mean) / 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.bn1.running_var.double(), sum(per_batch_var) / 2, rtol=1e-5, atol=1e-6)
    assert model.training and model.bn1.momentum == momentum  # left as it came
    with pytest.raises(ValueError, match="at least one batch"):
        backend.calibrate_batchnorm(model, [])


@pytest.mark.core
def test_relative_error_definition():
    expected = np.array([[3.0, 4.0]])
    assert crosscheck.relative_error(expected * 1.001, expected) == pytest.approx(1e-3)


# ---------------------------------------------------------------- bench

def check_bench_record(record: dict) -> None:
    assert record["status"] == "ok", record
    assert record["images_per_sec"] > 0 and record["latency_ms"] > 0
    # images/s and the median latency describe the same measurement
    assert record["images_per_sec"] == pytest.approx(record["batch_size"] / (record["latency_ms"] / 1e3))
    assert record["latency_min_ms"] <= record["latency_ms"] <= record["latency_max_ms"]
    assert record["latency_p25_ms"] <= record["latency_ms"] <= record["latency_p75_ms"]
    factor = bench.TRAIN_FLOP_FACTOR if record["mode"] == "train" else 1
    assert record["gflops"] == pytest.approx(LENET_MACS / 1e9)
    assert record["gflops_per_sec"] == pytest.approx(2 * LENET_MACS * factor * record["images_per_sec"] / 1e9)
    assert record["machine_peak_gflops_per_sec"] > 0
    assert record["peak_share"] == pytest.approx(record["gflops_per_sec"] / record["machine_peak_gflops_per_sec"])
    assert record["peak_memory_mb"] is not None and record["peak_memory_mb"] >= 0
    assert record["compile_s"] > 0 and record["rounds"] == 2
    assert record["device"] == "cpu" and record["error"] is None
    assert record["method"].startswith(record["framework"] + ":")


@pytest.mark.torch
def test_baseline_times_the_bare_loop_and_the_harness_side_by_side():
    result = baseline.compare_with_harness("torch", "lenet5", 2, rounds=4, seconds=0.01, threads=1)
    assert result["rounds"] == 4
    assert result["bare_images_per_sec"] > 0 and result["harness_images_per_sec"] > 0
    assert 0 < result["ratio_p25"] <= result["ratio_median"] <= result["ratio_p75"]


@pytest.mark.torch
@pytest.mark.mxnet
def test_bench_tiny_run_writes_results_report_and_plots(tmp_path):
    out = tmp_path / "bench"
    records, machine = bench.run_bench(models=["lenet5"], frameworks=["torch", "mxnet"], batch_sizes=[1, 2],
                                       modes=["infer", "train"], device="auto", out=out,
                                       **{**TINY, "plots": True})
    assert len(records) == 8
    assert {(r["framework"], r["batch_size"], r["mode"]) for r in records} == {
        (fw, b, m) for fw in ("torch", "mxnet") for b in (1, 2) for m in ("infer", "train")}
    for record in records:
        check_bench_record(record)
    assert "inference_mode" in next(r["method"] for r in records if r["framework"] == "torch" and r["mode"] == "infer")
    assert "static_alloc=True" in next(r["method"] for r in records if r["framework"] == "mxnet")
    assert machine["torch"]["device"] == "cpu" and machine["mxnet"]["peak_gflops_per_sec"] > 0
    # One yardstick: the shares of every framework are against the best probe on the device.
    best = max(machine[fw]["peak_gflops_per_sec"] for fw in ("torch", "mxnet"))
    assert {r["machine_peak_gflops_per_sec"] for r in records} == {best}
    for record in records:
        assert record["framework_peak_gflops_per_sec"] == machine[record["framework"]]["peak_gflops_per_sec"]
    assert "clear_refs" in records[0]["memory_method"] and records[0]["memory_exact"]
    # Training cells get a worker of their own (exact peaks); a later inference cell shares one, and says so.
    assert all(r["memory_exact"] for r in records if r["mode"] == "train")
    assert not any(r["memory_exact"] for r in records if (r["mode"], r["batch_size"]) == ("infer", 2))
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(records))
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and set(bench.CSV_COLUMNS) <= set(rows[0])
    assert all(float(row["images_per_sec"]) > 0 for row in rows)
    report = (out / "report.md").read_text()
    assert "lenet5" in report and "infer, batch 2" in report and "% of peak" in report
    for plot in ("images_per_sec.png", "speed_vs_gflops.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.torch
@pytest.mark.mxnet
def test_bench_interleaves_zoo_and_reference_rounds():
    # The zoo and the reference cells of one (model, batch size, mode) form one group, timed in alternating
    # order, so that neither is always the one measured first (on a GPU still ramping its clocks).
    cells = bench.plan_cells(["resnet18", "lenet5"], ["torch", "mxnet"], [1, 2], ["infer"], reference=True)
    groups = bench.group_cells(cells)
    assert [(g[0]["model"], g[0]["batch_size"]) for g in groups] == [
        ("resnet18", 1), ("resnet18", 2), ("lenet5", 1), ("lenet5", 2)]
    assert [(c["framework"], c["implementation"]) for c in groups[0]] == [
        ("torch", "zoo"), ("mxnet", "zoo"), ("torch", "reference"), ("mxnet", "reference")]
    assert [c["implementation"] for c in groups[2]] == ["zoo", "zoo"]  # no reference of LeNet
    orders = [bench.round_order(groups[0], r) for r in range(4)]
    assert orders[0] == groups[0] and orders[1] == groups[0][::-1] and orders[2] == groups[0]
    assert bench.Bench.worker_key("torch", "reference") != bench.Bench.worker_key("torch", "zoo") == "torch"


def test_reference_of_another_variant_is_marked_in_the_speed_table():
    from compare import report

    cells = bench.plan_cells(["resnet50", "resnet18"], ["mxnet"], [8], ["infer"], reference=True)
    variant = {(c["model"], c["implementation"]): c["reference_variant"] for c in cells}
    assert "stride_in_1x1=True" in variant[("resnet50", "reference")]  # Gluon's resnet50_v1
    assert variant[("resnet18", "reference")] is None  # basic blocks: v1 and v1.5 are one network
    speeds = {("resnet50", "zoo"): 30.0, ("resnet50", "reference"): 40.0, ("resnet18", "zoo"): 90.0,
              ("resnet18", "reference"): 60.0}
    records = [{**cell, "status": "ok", "device": "cpu", "gflops": 1.0,
                "images_per_sec": speeds[(cell["model"], cell["implementation"])]} for cell in cells]
    (_, table), = report.speed_tables(records)
    assert "0.75 +" in table and "1.50" in table and "1.50 +" not in table
    assert "+ mxnet resnet50: mxnet.gluon.model_zoo.vision.resnet50_v1 is ResNet v1" in table


@pytest.mark.core
def test_gpu_warm_up_waits_until_timings_settle(monkeypatch):
    from compare import worker
    from zoo import benchtools
    from zoo.contract import Prepared

    clock = {"t": 0.0, "steps": 0}
    monkeypatch.setattr(worker.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(benchtools.time, "perf_counter", lambda: clock["t"])

    def step():  # a device ramping up its clocks: 10 ms per step for the first 0.6 s, then 5 ms
        clock["steps"] += 1
        clock["t"] += 0.010 if clock["t"] < 0.6 else 0.005

    prepared = Prepared(step, lambda out: None, "fake")
    per_iteration, count, settled = worker.warm_up_gpu(prepared, {"warmup_s": 0.0})
    assert settled and per_iteration == pytest.approx(0.005) and count > 60
    assert worker.GPU_WARMUP_S <= clock["t"] < worker.GPU_WARMUP_MAX_S

    def sync(out):  # timed_rounds syncs twice per chunk
        clock["syncs"] += 1

    def noisy():  # one chunk 20 % slower than the next, forever: the warm-up gives up at its limit
        clock["t"] += 0.005 if (clock["syncs"] // 2) % 2 else 0.006
    clock.update(t=0.0, syncs=0)
    _, _, settled = worker.warm_up_gpu(Prepared(noisy, sync, "fake"), {})
    assert not settled and worker.GPU_WARMUP_MAX_S <= clock["t"] < worker.GPU_WARMUP_MAX_S + 1


@pytest.mark.parametrize("framework, method", [pytest.param("tf", "tf.function", marks=pytest.mark.tf),
                                               pytest.param("jax", "jax.jit", marks=pytest.mark.jax)])
def test_bench_cells_of_a_graph_compiling_framework(tmp_path, framework, method):
    records, _ = bench.run_bench(models=["lenet5"], frameworks=[framework], batch_sizes=[2], modes=["infer", "train"],
                                 device="cpu", out=tmp_path, **TINY)
    assert sorted(r["mode"] for r in records) == ["infer", "train"]
    for record in records:
        check_bench_record(record)
        assert method in record["method"]


@pytest.mark.torch
def test_failing_cells_are_recorded_and_the_run_goes_on(tmp_path, plugin):
    records, _ = bench.run_bench(models=["lenet5_badsize", "crashy", "lenet5"], frameworks=["torch"],
                                 batch_sizes=[1], modes=["infer"], device="cpu", out=tmp_path, **TINY)
    by_model = {r["model"]: r for r in records}
    assert by_model["lenet5_badsize"]["status"] == "error"
    assert "InputShapeError" in by_model["lenet5_badsize"]["error"]
    assert by_model["crashy"]["status"] == "error"
    assert "died" in by_model["crashy"]["error"] and "exit status 3" in by_model["crashy"]["error"]
    check_bench_record(by_model["lenet5"])  # after a crash the worker is started again
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["status"] for r in saved] == ["error", "error", "ok"]
    assert "Failed or skipped cells" in (tmp_path / "report.md").read_text()


@pytest.mark.mxnet
def test_resume_skips_finished_cells(tmp_path):
    common = dict(models=["lenet5"], frameworks=["mxnet"], modes=["infer"], device="cpu", out=tmp_path, **TINY)
    [first], _ = bench.run_bench(batch_sizes=[1], **common)
    records, _ = bench.run_bench(batch_sizes=[1, 2], resume=True, fresh_workers=True, **common)
    assert [r["batch_size"] for r in records] == [1, 2]
    assert records[1]["memory_exact"]
    assert records[0] == first  # not run again: the same record, timestamp included
    records, _ = bench.run_bench(batch_sizes=[1, 2], resume=True, **common)
    assert records[1]["timestamp"] == json.loads((tmp_path / "results.json").read_text())[1]["timestamp"]


@pytest.mark.mxnet
def test_gpu_request_without_gpu_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "bench", "lenet5", "--frameworks", "mxnet", "--device", "gpu", "--batch-size", "1",
                           "--modes", "infer", "--out", str(tmp_path))
    assert code == 2
    assert "no framework sees a GPU" in err and "mxnet" in err


@pytest.mark.core
@pytest.mark.parametrize("argv, message", [
    (["bench", "resnet9000"], "unknown model 'resnet9000'"),
    (["bench", "--frameworks", "theano"], "unknown framework 'theano'"),
    (["bench", "lenet5", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["bench", "lenet5", "--batch-size", "1,two"], "argument --batch-size: expected an integer >= 1, got 'two'"),
    (["bench", "lenet5", "--modes", "fly"], "--modes must be among infer, train"),
    (["summary", "lenet5", "--input-size", "28"], "takes only 32x32"),
    (["crosscheck"], "give names or patterns"),
    (["crosscheck", "lenet5", "--frameworks", "torch,caffe"], "unknown framework 'caffe'"),
])
def test_bad_arguments_are_clear_errors(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err


@pytest.mark.core
def test_unwritable_output_folder_is_a_clear_error(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "bench", "lenet5", "--out", str(blocker / "results"))
    assert code == 2 and "cannot write to output folder" in err


@pytest.mark.core
def test_cli_exit_status_through_python_m(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "ZOO_CACHE_DIR": str(tmp_path)}
    bad = subprocess.run([sys.executable, "-m", "compare", "crosscheck", "lenet6"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "unknown model 'lenet6'" in bad.stderr and "lenet5" in bad.stderr


# ---------------------------------------------------------------- the tour

@pytest.mark.core
def test_tour_picks_a_model_per_family_and_says_what_is_missing(plugin, monkeypatch):
    chosen = tour.representatives()
    families = [zoo.get_spec(name).family for name in chosen]
    assert sorted(families) == sorted({zoo.get_spec(name).family for name in zoo.list_models()})
    assert "crashy" in chosen and "lenet5" in chosen
    assert {"resnet18", "densenet121", "efficientnet_b0"} <= set(chosen)
    picked, notes = tour.bench_models()
    assert picked == [preferred[0] for _, preferred, _ in tour.BENCH_ROLES] and notes == []
    # With only LeNet and the plugin's model registered, the missing roles are named.
    monkeypatch.setattr(tour.zoo, "list_models", lambda pattern="*": ["lenet5", "crashy"])
    assert tour.representatives() == ["lenet5", "crashy"]
    picked, notes = tour.bench_models()
    assert picked == ["lenet5"]
    assert any("no ResNet model is registered" in note for note in notes)
    assert tour.crosscheck_size("lenet5") == 32


@pytest.mark.core
def test_format_table_aligns_numbers_right():
    text = format_table([("a", "n"), ("x", "1"), ("yy", "100")])
    assert text.splitlines()[2] == "x     1"
