"""The zoo on the releases its users have: NumPy 2, Flax 0.12, MXNet 1.9.1 beside NumPy 2, and a GPU
machine's own Python, where only some frameworks are installed and nothing can be."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import zoo
import compare.frameworks
from compare import bench, cli, options, report
from zoo.benchtools import datasheet_peak

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement(extra_or_deps: list[str], name: str) -> str:
    (found,) = [r for r in extra_or_deps if re.match(rf"{name}\b", r)]
    return found


# ---------------------------------------------------------------- dependencies

@pytest.mark.core
def test_numpy_has_no_upper_bound_and_no_extra_holds_it_back():
    numpy = _requirement(PYPROJECT["project"]["dependencies"], "numpy")
    assert "<" not in numpy, numpy
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        assert not any(r.startswith(("numpy", "mxnet")) for r in requirements), (extra, requirements)
    # MXNet 1.9.1's wheel asks for numpy<2: it is installed on its own, without its dependencies.
    assert PYPROJECT["tool"]["zoo"]["no-deps"] == ["mxnet==1.9.1"]
    assert "mxnet==1.9.1" in zoo.FRAMEWORKS["mxnet"].install and "--no-deps" in zoo.FRAMEWORKS["mxnet"].install


@pytest.mark.core
def test_the_jax_extra_takes_current_jax_and_flax():
    jax_extra = PYPROJECT["project"]["optional-dependencies"]["jax"]
    assert _requirement(jax_extra, "jax") == "jax>=0.7.1" and _requirement(jax_extra, "flax") == "flax>=0.12"
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert "jax==0.10.2" in dev and "flax==0.12.8" in dev


@pytest.mark.core
def test_the_test_environment_runs_numpy_2():
    assert int(np.__version__.split(".")[0]) >= 2
    # NumPy 2's promotion (NEP 50): a Python float does not widen a float32 array.
    assert (np.ones(2, np.float32) * 0.1).dtype == np.float32


# ---------------------------------------------------------------- MXNet beside NumPy 2

@pytest.mark.mxnet
def test_compat_restores_what_mxnet_reads_with_numpy_1_meaning():
    import zoo_mxnet  # noqa: F401  (imports _compat, then MXNet)
    import zoo_mxnet._compat as compat

    assert np.PZERO == 0.0 and np.copysign(1.0, np.NZERO) == -1.0 and np.NINF == -np.inf and np.isnan(np.NaN)
    assert np.in1d([[1, 2], [3, 4]], [2, 3]).tolist() == [False, True, True, False]
    assert np.msort(np.array([[3, 1], [1, 2]])).tolist() == [[1, 1], [3, 2]]
    assert np.trapz([1.0, 1.0, 1.0]) == 2.0 and np.product([2, 3]) == 6 and np.alltrue([True, False]) == False  # noqa: E712
    with pytest.raises(NotImplementedError, match="numpy-financial"):
        np.npv(0.1, [1.0, 2.0])
    # Names NumPy has keep NumPy's own meaning: nothing is replaced.
    assert np.bool is np.bool_ and np.round is compat.numpy.round
    assert "round" not in compat._REMOVED_IN_NUMPY_2


@pytest.mark.mxnet
def test_mxnet_runs_on_numpy_2():
    import mxnet as mx

    import zoo_mxnet

    assert int(np.__version__.split(".")[0]) >= 2 and mx.__version__ == "1.9.1"
    model = zoo.create_model("lenet5", "mxnet")
    logits = zoo_mxnet.predict(model, np.random.default_rng(0).random((2, 1, 32, 32), np.float32))
    assert logits.shape == (2, 10) and np.isfinite(logits).all()


# ---------------------------------------------------------------- JAX on Flax 0.12

@pytest.mark.jax
def test_zoo_jax_raises_no_deprecation_warning_of_its_own():
    import zoo_jax
    from conftest import REPRESENTATIVES

    package = str(Path(zoo_jax.__file__).parent)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Every family's builder, initialisation, weight mapping and traced shapes (no compilation) ...
        for name in sorted(REPRESENTATIVES):
            model = zoo.create_model(name, "jax", num_classes=10)
            zoo_jax.load_weights(model, zoo_jax.export_weights(model))
            zoo_jax.layer_shapes(model, (1, *zoo.get_spec(name).input_size))
        # ... and the compiled calls, on LeNet (Sequential) and a DenseNet-BC whose BatchNorm statistics are
        # written back from under jax.checkpoint.
        for name, knobs in (("lenet5", {}), ("densenet_bc_100_k12", {"block_config": (1, 1), "memory_efficient": True})):
            model = zoo.create_model(name, "jax", num_classes=10, **knobs)
            size = zoo.get_spec(name).input_size
            images, labels = rng.random((2, *size), np.float32), np.array([1, 2])
            zoo_jax.predict(model, images)
            zoo_jax.loss_gradients(model, images, labels)
            trainer = zoo_jax.make_trainer(model, 0.9, 5e-4, 0)
            trainer.step(trainer.prepare(images), trainer.labels(labels), 0.01)
    ours = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if w.filename.startswith(package)]
    assert not ours, "\n".join(ours)


@pytest.mark.jax
def test_an_older_flax_is_named_at_import():
    # A GPU machine's own Flax may predate 0.12: the import says what is needed, not a deep traceback later.
    code = ("import flax; flax.__version__ = '0.10.7'\n"
            "try:\n    import zoo_jax\nexcept ImportError as error:\n    print(type(error).__name__, error)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("FrameworkUnavailableError zoo_jax needs Flax 0.12 or newer, found flax 0.10.7")


@pytest.mark.jax
def test_sequential_children_are_flax_data_with_torch_names():
    from flax import nnx

    import zoo_jax

    model = zoo.create_model("lenet5", "jax")
    assert isinstance(model.features, nnx.List)
    names = {name for name, _, _ in zoo_jax.named_modules(model)}
    assert {"features.0", "classifier.0"} <= names
    # The children are pytree data (Flax 0.12 would hold a plain list as static): their parameters are state.
    paths = {path for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert ("features", 0, "kernel") in paths
    assert zoo_jax.count_parameters(model)[0] == zoo.get_spec("lenet5").params


# ---------------------------------------------------------------- a GPU machine's own Python

@pytest.mark.core
def test_frameworks_left_out_of_the_default_set_are_named_once(monkeypatch, capsys):
    here = {"torch", "jax"}
    monkeypatch.setattr(compare.frameworks, "framework_installed", lambda fw: fw in here)
    monkeypatch.setattr(compare.frameworks, "_NOTED_ABSENT", set())
    assert compare.frameworks.resolve_frameworks(None) == ["torch", "jax"]
    assert compare.frameworks.resolve_frameworks(None) == ["torch", "jax"]
    err = capsys.readouterr().err
    assert err.count("not here") == 1
    assert "tf (tensorflow is not installed)" in err and "mxnet (mxnet is not installed)" in err
    # Frameworks asked for by name are not noted: an absent one is an error there.
    assert compare.frameworks.resolve_frameworks("torch") == ["torch"] and capsys.readouterr().err == ""


@pytest.mark.core
@pytest.mark.parametrize("device, precision, expected", [
    ("GPU NVIDIA H100 80GB HBM3", "amp bfloat16", (989.4e3, "NVIDIA H100 SXM datasheet, dense bfloat16")),
    ("GPU NVIDIA H100 PCIe", "amp float16", (756.5e3, "NVIDIA H100 PCIe datasheet, dense float16")),
    ("GPU NVIDIA H200", "fp32", (66.9e3, "NVIDIA H200 SXM datasheet, dense float32")),
    ("GPU NVIDIA A100-SXM4-80GB", "amp mixed_float16", (312e3, "NVIDIA A100 datasheet, dense float16")),
    ("CPU Intel Xeon", "fp32", None),
    ("GPU NVIDIA H100 80GB HBM3", "amp float8", None),
    (None, "fp32", None),
])
def test_datasheet_peak(device, precision, expected):
    found = datasheet_peak(device, precision)
    assert found == (pytest.approx(expected[0]), expected[1]) if expected else found is None


@pytest.mark.core
def test_a_gpu_cell_is_a_share_of_its_probe_and_of_the_datasheet(tmp_path):
    cell = {"model": "lenet5", "framework": "torch", "implementation": "zoo", "mode": "train", "batch_size": 256,
            "input_size": 32, "overrides": {}}
    setup = {"build_s": 1.0, "compile_s": 2.0, "warmup_s": 0.5, "method": "torch: autocast", "precision": "amp bfloat16"}
    state = {"setup": setup, "rounds": [0.010, 0.011, 0.012], "iterations": 10}
    machine = {"device_note": "GPU NVIDIA H100 80GB HBM3", "amp_peak_gflops_per_sec": 700e3, "amp_dtype": "bfloat16"}
    fields = bench.summarise(cell, state, {"ok": True, "peak_memory_mb": 900.0}, machine, 50e3, "torch probe")
    assert fields["peak_share"] == pytest.approx(fields["gflops_per_sec"] / 700e3)
    assert fields["datasheet_share"] == pytest.approx(fields["gflops_per_sec"] / 989.4e3)
    record = {**cell, **fields, "status": "ok", "device": "gpu", "knobs": {}}
    table = report.detail_table([record])
    assert "% of datasheet" in table.splitlines()[0]
    assert f"{100 * fields['datasheet_share']:.1f}%" in table
    assert "NVIDIA H100 SXM datasheet" in report.yardstick_paragraph([record])
    # A CPU cell has no datasheet and no such column.
    cpu = {**record, "datasheet_share": None, "datasheet_peak_gflops_per_sec": None, "device": "cpu"}
    assert "% of datasheet" not in report.detail_table([cpu])


def readme_gpu_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### On a GPU machine, without an install", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = section.replace("\\\n", " ").split("&&")
    return [shlex.split(command) for command in commands]


@pytest.mark.core
def test_the_readme_gpu_benchmark_is_the_one_the_issue_asks_for():
    commands = readme_gpu_commands()
    assert [c[:4] for c in commands] == [["PYTHONPATH=.", "python3", "-m", "compare"]] * 3
    parser = cli.build_parser()
    crosscheck, eager, compiled = (parser.parse_args(c[4:]) for c in commands)
    models = ["resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0"]
    assert crosscheck.command == "crosscheck" and options.split_list(crosscheck.models) == models
    for args, frameworks, compile_ in ((eager, "torch,jax", False), (compiled, "torch", True)):
        assert args.command == "bench" and options.split_list(args.models) == models
        assert options.split_list(args.frameworks) == frameworks.split(",")
        assert (args.device, args.amp, args.compile, args.batch_size) == ("gpu", "on", compile_, [32, 256])
        assert options.split_list(args.modes) == ["infer", "train"]
    assert eager.out != compiled.out


@pytest.mark.torch
def test_the_readme_gpu_benchmark_without_a_gpu_stops_at_once_with_each_reason(capsys, tmp_path):
    *_, compiled = readme_gpu_commands()
    argv = [a for a in compiled[4:]]
    argv[argv.index("--out") + 1] = str(tmp_path / "gpu")
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "no framework sees a GPU" in err and "torch:" in err
