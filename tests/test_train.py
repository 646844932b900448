"""`compare train` and its data: every framework learns the same way, and bad input is a clear error."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import zoo
from compare import cli, train as training
from compare.data import load_dataset
from conftest import framework_params

FRAMEWORKS = zoo.available_frameworks()
OTHERS = [fw for fw in FRAMEWORKS if fw != zoo.REFERENCE_FRAMEWORK]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """run(framework) -> (results, out): a short training of LeNet-5 in one framework, made once. Every
    framework's run starts from the same weights and sees the same batches, so runs compare."""
    runs = {}

    def run(framework):
        if framework not in runs:
            out = tmp_path_factory.mktemp(f"train-{framework}")
            results = training.train("lenet5", "digits", [framework], epochs=3, batch_size=16, lr=0.1,
                                     limit=400, out=out)
            runs[framework] = results, out
        return runs[framework]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_loss_falls_and_accuracy_rises_in_every_framework(short_run, framework):
    results, _ = short_run(framework)
    assert list(results["frameworks"]) == [framework]
    run = results["frameworks"][framework]
    assert len(run["loss"]) == len(run["test_accuracy"]) == len(run["images_per_sec"]) == 3
    assert run["loss"][-1] < 0.5 * run["loss"][0]
    assert run["test_accuracy"][-1] > run["initial"]["test_accuracy"] + 0.3
    assert run["train_accuracy"][-1] > run["train_accuracy"][0]
    assert all(rate > 0 for rate in run["images_per_sec"])


@pytest.mark.slow
@pytest.mark.parametrize("framework", framework_params(OTHERS))
def test_frameworks_take_the_same_steps(short_run, framework):
    # Same start, batches, loss and update rule under a changing (cosine) rate: LeNet-5 has no
    # dropout, so every step's loss agrees to rounding.
    reference = short_run(zoo.REFERENCE_FRAMEWORK)[0]["frameworks"][zoo.REFERENCE_FRAMEWORK]
    run = short_run(framework)[0]["frameworks"][framework]
    summary = training.summarize({"frameworks": {zoo.REFERENCE_FRAMEWORK: reference, framework: run}})
    assert summary["reference"] == zoo.REFERENCE_FRAMEWORK
    assert summary["first_step_loss_rel_diff"][framework] < 1e-5
    expected, steps = np.array(reference["step_loss"]), np.array(run["step_loss"])
    assert steps.shape == expected.shape
    assert np.max(np.abs(steps - expected) / expected) < 1e-3


@pytest.mark.slow
def test_results_are_written(short_run):
    results, out = short_run(zoo.REFERENCE_FRAMEWORK)
    saved = json.loads((out / "train.json").read_text())
    for run in saved["frameworks"].values():
        assert {"loss", "train_accuracy", "test_accuracy", "images_per_sec"} <= set(run)
    assert saved["settings"]["train_images"] + saved["settings"]["test_images"] == 400
    assert (out / "train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_line_trains_on_a_users_npz(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.standard_normal((60, 12, 12, 1)).astype(np.float32) + y[:, None, None, None]  # NHWC, learnable
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    code = cli.main(["train", "--model", "lenet5", "--dataset", str(tmp_path / "mine.npz"), "--frameworks", "torch",
                     "--epochs", "2", "--out", str(tmp_path / "out")])
    assert code == 0
    saved = json.loads((tmp_path / "out" / "train.json").read_text())
    assert saved["settings"]["num_classes"] == 3
    assert "torch" in capsys.readouterr().out


def test_schedules():
    cosine = [training.learning_rate("cosine", 0.1, step, 0, 10, 1) for step in range(11)]
    assert cosine[0] == 0.1 and math.isclose(cosine[5], 0.05) and abs(cosine[10]) < 1e-12
    assert [training.learning_rate("step", 1.0, 0, epoch, 8, 8) for epoch in range(8)] == \
        pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    assert training.learning_rate("constant", 0.3, 7, 3, 10, 5) == 0.3


def test_batches_are_fixed_by_the_seed_and_skip_single_examples():
    first = training.batches(65, 32, epoch=0, seed=1)
    assert [len(b) for b in first] == [32, 32]  # the lone 65th example would break BatchNorm
    assert all((a == b).all() for a, b in zip(first, training.batches(65, 32, epoch=0, seed=1)))
    assert not (first[0] == training.batches(65, 32, epoch=1, seed=1)[0]).all()


def test_digits_are_kept_small_and_batches_resized_scaled_and_split_by_class():
    data = load_dataset("digits", image_size=32, in_channels=3, seed=0)
    assert data.x_train.shape[1:] == (1, 8, 8)  # the set as stored; each batch is resized as it is drawn
    batch = data.batch("train", np.arange(5))
    assert batch.shape == (5, 3, 32, 32) and batch.dtype == np.float32
    assert batch.min() >= 0 and batch.max() <= 1  # d2l's preprocessing: scaled to [0, 1], no normalisation
    assert len(data.y_train) + len(data.y_test) == 1797 and data.num_classes == 10
    assert abs(len(data.y_test) - 0.2 * 1797) < 10
    assert set(np.unique(data.y_test)) == set(range(10))
    normalised = load_dataset("digits", image_size=8, in_channels=1, seed=0, normalize="dataset")
    x = normalised.batch("train", np.arange(len(normalised.y_train)))
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1) < 1e-3
    again = load_dataset("digits", image_size=32, in_channels=3, seed=0)
    np.testing.assert_array_equal(again.y_test, data.y_test)


def test_command_line_reports_bad_input(tmp_path, capsys):
    assert cli.main(["train", "--model", "lenet5", "--dataset", "nope", "--frameworks", "torch"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert cli.main(["train", "--model", "lenet5", "--input-size", "28", "--frameworks", "torch"]) == 2
    assert "only 32x32" in capsys.readouterr().err
    assert cli.main(["train", "--model", "lenet_5", "--frameworks", "torch"]) == 2
    assert "unknown model 'lenet_5'" in capsys.readouterr().err


@pytest.mark.parametrize("framework", framework_params(OTHERS))
def test_update_rule_equals_torch_sgd_under_a_changing_rate(framework):
    # Keras' and Gluon's own SGD fold the rate into the momentum buffer, which differs from
    # torch.optim.SGD as soon as the rate changes; the trainers must not.
    start = training.initial_weights("lenet5", 10, seed=3, overrides={})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 32, 32)).astype(np.float32), rng.integers(0, 10, 8)
    finals = {}
    for fw in ("torch", framework):
        model = zoo.create_model("lenet5", fw, num_classes=10)
        zoo.backend(fw).load_weights(model, start)
        trainer = zoo.backend(fw).make_trainer(model, momentum=0.9, weight_decay=0.01, seed=0)
        for lr in (0.1, 0.1, 0.01, 0.05, 0.001, 0.2):
            trainer.step(trainer.prepare(x), trainer.labels(y), lr)
        finals[fw] = zoo.backend(fw).export_weights(model)
    for name, expected in finals["torch"].items():
        moved = np.linalg.norm(expected - start[name])
        assert np.linalg.norm(finals[framework][name] - expected) <= 1e-4 * moved, name
