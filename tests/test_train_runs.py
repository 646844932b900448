"""What a `compare train` run leaves behind and how it goes on: checkpoints, --resume after an interruption
or a kill, trained weights, several models in one study, the d2l recipe, a failing framework."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zoo
from compare import checkpoints, cli, recipes, train as training
from zoo.errors import WeightFileError
from conftest import framework_params

FRAMEWORKS = zoo.available_frameworks()
ROOT = Path(__file__).resolve().parents[1]
# LeNet-5 with dropout: resuming must restore the optimiser's buffers and the dropout stream, not only weights.
RUN = dict(dataset="digits", epochs=3, batch_size=32, lr=0.05, limit=200, overrides={"dropout": 0.3})


class Interrupted(BaseException):
    """Stands for Ctrl-C or a kill: not an error of one framework, which the run would record and go past."""


def interrupt_at(epoch: int):
    """A log that stops the run as the line of `epoch` is printed, before that epoch's checkpoint is written."""
    def log(line: str) -> None:
        if f"epoch {epoch:>3}/" in line:
            raise Interrupted(line)
    return log


def weights_of(out: Path, framework: str) -> dict[str, np.ndarray]:
    return zoo.weights.load(out / "weights" / f"{framework}.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_a_resumed_run_ends_with_the_weights_of_a_run_never_stopped(tmp_path, framework):
    whole = training.train("lenet5", frameworks=[framework], out=tmp_path / "whole", **RUN)
    with pytest.raises(Interrupted):
        training.train("lenet5", frameworks=[framework], out=tmp_path / "broken", log=interrupt_at(2), **RUN)
    assert checkpoints.peek(tmp_path / "broken" / "checkpoints" / f"{framework}.safetensors")[0] == 1
    assert not (tmp_path / "broken" / "weights" / f"{framework}.safetensors").exists()
    resumed = training.train("lenet5", frameworks=[framework], out=tmp_path / "broken", resume=True, **RUN)
    expected, got = weights_of(tmp_path / "whole", framework), weights_of(tmp_path / "broken", framework)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7, err_msg=name)
    for key in ("loss", "test_accuracy", "step_loss"):
        np.testing.assert_allclose(resumed["frameworks"][framework][key], whole["frameworks"][framework][key],
                                   rtol=1e-6, err_msg=key)
    # The trained weights are the model's: they load back and give the run's test accuracy.
    model = zoo.create_model("lenet5", framework, num_classes=10, dropout=0.3)
    zoo.backend(framework).load_weights(model, got)


def compare_process(*args: str) -> subprocess.Popen:
    # Every run of this test in its own process alike: a process that has imported another framework may
    # run PyTorch on other thread counts, which sums in another order.
    return subprocess.Popen([sys.executable, "-m", "compare", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    framework = zoo.REFERENCE_FRAMEWORK
    args = ["train", "lenet5", "--dataset", "digits", "--frameworks", framework, "--epochs", "15", "--limit", "120",
            "--batch-size", "16", "--set", "dropout=0.3"]
    whole = compare_process(*args, "--out", str(tmp_path / "whole"))
    out = tmp_path / "killed"
    process = compare_process(*args, "--out", str(out))
    checkpoint = out / "checkpoints" / f"{framework}.safetensors"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if checkpoint.exists() and checkpoints.peek(checkpoint)[0] >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    finished = checkpoints.peek(checkpoint)[0]
    assert 2 <= finished < 15
    assert not (out / "train.json").exists()
    resumed = compare_process(*args, "--out", str(out), "--resume")
    for run in (whole, resumed):
        assert run.wait(timeout=300) == 0, run.stderr.read().decode()
    expected, got = weights_of(tmp_path / "whole", framework), weights_of(out, framework)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    saved = json.loads((out / "train.json").read_text())
    assert len(saved["frameworks"][framework]["loss"]) == 15


def test_resume_refuses_a_run_with_other_settings_and_a_folder_without_checkpoints(tmp_path, capsys):
    framework = zoo.REFERENCE_FRAMEWORK
    args = ["train", "lenet5", "--frameworks", framework, "--epochs", "1", "--limit", "60", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main([*args, "--lr", "0.01", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "other settings (lr: checkpoint 0.05, now 0.01)" in err
    assert cli.main([*args[:-1], str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no checkpoint to continue from" in capsys.readouterr().err
    assert cli.main(args) == 2  # without --overwrite or --resume, an earlier run is kept
    assert "give another --out, --overwrite, or --resume" in capsys.readouterr().err
    assert cli.main([*args, "--resume", "--overwrite"]) == 2


def test_checkpoints_are_whole_files_with_their_settings(tmp_path):
    path = tmp_path / "torch.safetensors"
    weights, state = {"fc.weight": np.ones((2, 3), np.float32)}, {"momentum.0": np.zeros(3, np.float32)}
    checkpoints.save(path, epoch=2, weights=weights, optimizer=state, settings={"lr": 0.1},
                     record={"loss": [1.0, float("nan")]})
    saved = checkpoints.load(path)
    assert (saved.epoch, saved.settings) == (2, {"lr": 0.1}) and saved.record["loss"] == [1.0, None]
    np.testing.assert_array_equal(saved.weights["fc.weight"], weights["fc.weight"])
    assert set(saved.optimizer) == {"momentum.0"}
    assert [p.name for p in tmp_path.iterdir()] == ["torch.safetensors"]  # no temporary file left
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightFileError, match="not a readable training checkpoint"):
        checkpoints.load(path)
    zoo.weights.save(tmp_path / "plain.safetensors", weights)
    with pytest.raises(WeightFileError, match="not a training checkpoint"):
        checkpoints.peek(tmp_path / "plain.safetensors")


def test_xavier_initialisation_redraws_conv_and_dense_weights_only():
    start = training.initial_weights("lenet5", 10, seed=0, overrides={})
    drawn = training.initial_weights("lenet5", 10, seed=0, overrides={}, init="xavier")
    assert set(drawn) == set(start)
    for name, array in drawn.items():
        if name.endswith("weight") and array.ndim in (2, 4):
            receptive = int(np.prod(array.shape[2:]))
            bound = np.sqrt(6 / ((array.shape[0] + array.shape[1]) * receptive))
            assert np.abs(array).max() <= bound and np.abs(array).max() > 0.9 * bound, name
            assert not np.array_equal(array, start[name])
        else:
            np.testing.assert_array_equal(array, start[name])
    again = training.initial_weights("lenet5", 10, seed=0, overrides={}, init="xavier")
    assert all(np.array_equal(again[name], drawn[name]) for name in drawn)


def test_the_d2l_recipe_gives_each_chapter_its_settings(monkeypatch):
    assert all(model in zoo.list_models() for model in recipes.D2L.models)
    seen = {}

    def fake_train(model, dataset, frameworks, **kwargs):
        seen[model] = kwargs
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", fake_train)
    with pytest.raises(SystemExit):
        cli.main(["train", "alexnet_d2l", "--recipe", "d2l", "--frameworks", "torch", "--out", "/tmp/unused-d2l"])
    settings = seen["alexnet_d2l"]
    assert (settings["image_size"], settings["lr"], settings["epochs"], settings["batch_size"]) == (224, 0.01, 10, 128)
    assert (settings["momentum"], settings["weight_decay"], settings["schedule"], settings["init"]) == \
        (0.0, 0.0, "constant", "xavier")
    assert settings["recipe"] == "d2l"
    with pytest.raises(SystemExit):
        cli.main(["train", "densenet_d2l", "--recipe", "d2l", "--lr", "0.1", "--batch-size", "256",
                  "--frameworks", "torch", "--out", "/tmp/unused-d2l"])
    assert (seen["densenet_d2l"]["lr"], seen["densenet_d2l"]["batch_size"], seen["densenet_d2l"]["image_size"]) == \
        (0.1, 256, 96)  # the tutorial's MXNet run: options over the recipe


def test_a_recipe_refuses_a_model_it_does_not_cover(capsys):
    assert cli.main(["train", "resnet50", "--recipe", "d2l", "--frameworks", "torch"]) == 2
    assert "recipe 'd2l' has no settings for 'resnet50'; it trains lenet_d2l, alexnet_d2l" in capsys.readouterr().err


@pytest.mark.slow
def test_a_study_trains_every_model_and_tabulates_them(tmp_path, capsys, monkeypatch):
    frameworks = [zoo.REFERENCE_FRAMEWORK] + [fw for fw in FRAMEWORKS if fw != zoo.REFERENCE_FRAMEWORK][:1]
    broken = frameworks[-1]
    real, calls = zoo.backend(broken).make_trainer, []

    def fails_the_second_time(model, *args):  # one (model, framework) fails: reported, and the rest goes on
        calls.append(model)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(model, *args)

    monkeypatch.setattr(zoo.backend(broken), "make_trainer", fails_the_second_time)
    code = cli.main(["train", "lenet5", "lenet_d2l", "--dataset", "digits", "--frameworks", *frameworks,
                     "--epochs", "2", "--limit", "100", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "study.json").read_text())
    assert list(report["models"]) == ["lenet5", "lenet_d2l"]
    assert report["models"]["lenet_d2l"]["frameworks"][broken] == {"error": "RuntimeError: out of memory"}
    table = (tmp_path / "study.md").read_text()
    assert re.search(rf"\| lenet_d2l +\| {broken} +\| +RuntimeError: out of memory", table), table
    for model in ("lenet5", "lenet_d2l"):
        assert (tmp_path / model / "train.json").exists() and (tmp_path / model / "train.png").exists()
        for framework in frameworks:
            trained = (tmp_path / model / "weights" / f"{framework}.safetensors").exists()
            assert trained == ((model, framework) != ("lenet_d2l", broken))
            assert re.search(rf"\| {model} +\| {framework} ", table), (model, framework)
    assert (tmp_path / "study.png").read_bytes()[:4] == b"\x89PNG"
    assert "test acc" in out and "lenet_d2l" in out
