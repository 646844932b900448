"""The compare tool's command line: one spelling per option, one error path, output paths checked before
any work, valid JSON. Everything here fails or parses before a model is built, so it is cheap."""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import pytest

import zoo
from compare import cli, crosscheck, frameworks, gradcheck, options
from compare import train as training
from compare.files import json_safe, write_json
from compare.frameworks import PLUGINS_ENV
from compare.options import UsageError

pytestmark = pytest.mark.core

INSTALLED = [fw for fw in zoo.FRAMEWORKS if frameworks.framework_installed(fw)]
TWO = [zoo.REFERENCE_FRAMEWORK] + [fw for fw in INSTALLED if fw != zoo.REFERENCE_FRAMEWORK][:1]
needs_two = pytest.mark.skipif(zoo.REFERENCE_FRAMEWORK not in INSTALLED or len(TWO) < 2,
                               reason="needs the reference framework and one other installed")

# The sub-commands that take each shared option, with what they need before it (one model).
TAKES = {
    "--frameworks": ("summary", "crosscheck", "gradcheck", "bench", "train"),
    "--input-size": ("summary", "crosscheck", "gradcheck", "bench", "train"),
    "--set": ("summary", "crosscheck", "gradcheck", "bench", "train"),
    "--batch-size": ("crosscheck", "gradcheck", "bench", "train"),
    "--seed": ("crosscheck", "gradcheck", "train"),
    "--tol": ("crosscheck", "gradcheck"),
    "--json": ("crosscheck", "gradcheck"),
    "--out": ("bench", "train"),
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(PLUGINS_ENV, raising=False)


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def subparsers() -> dict[str, argparse.ArgumentParser]:
    [commands] = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def no_work(monkeypatch):
    """Make every piece of real work fail loudly, so a test shows the command stopped before it."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the command started working before its arguments were checked")

    monkeypatch.setattr(training, "load_dataset", forbidden)
    monkeypatch.setattr(training.TrainingRun, "train", forbidden)
    monkeypatch.setattr(crosscheck, "crosscheck", forbidden)
    monkeypatch.setattr(gradcheck, "gradcheck", forbidden)
    monkeypatch.setattr("compare.bench.cli.run_bench", forbidden)


# ---------------------------------------------------------------- one spelling, parsed the same

@pytest.mark.parametrize("words", [("torch,tf",), ("torch", "tf"), ("torch, tf",)])
@pytest.mark.parametrize("command", TAKES["--frameworks"])
def test_frameworks_take_commas_or_spaces_everywhere(command, words):
    assert parse(command, "lenet5", "--frameworks", *words).frameworks == ["torch", "tf"]
    repeated = parse(command, "lenet5", "--frameworks", "torch", "--frameworks", "tf")
    assert repeated.frameworks == ["torch", "tf"]
    assert parse(command, "lenet5").frameworks is None  # every installed one


@pytest.mark.parametrize("option, value, attribute, expected", [
    ("--input-size", "48", "input_size", 48),
    ("--set", "dropout=0.25", "knobs", [("dropout", [0.25])]),
    ("--seed", "7", "seed", 7),
    ("--tol", "0", "tol", 0.0),
    ("--json", "r.json", "json", "r.json"),
    ("--out", "runs/x", "out", "runs/x"),
])
def test_each_shared_option_parses_the_same_in_every_sub_command(option, value, attribute, expected):
    for command in TAKES[option]:
        assert getattr(parse(command, "lenet5", option, value), attribute) == expected, command


def test_batch_size_is_one_number_except_in_bench_where_it_is_a_list():
    for command in ("crosscheck", "gradcheck", "train"):
        assert parse(command, "lenet5", "--batch-size", "4").batch_size == 4
    assert parse("bench", "lenet5", "--batch-size", "1,8,8").batch_size == [1, 8]
    assert parse("bench", "lenet5").batch_size == [1, 8, 32]


def test_many_models_are_named_the_same_way_in_every_sub_command():
    patterned = zoo.list_models("resnet1*")
    assert {"resnet18", "resnet101", "resnet152"} <= set(patterned)
    for command in ("crosscheck", "gradcheck", "bench", "train"):
        args = parse(command, "lenet5,alexnet", "resnet1*")
        assert options.selected_models(args) == ["lenet5", "alexnet", *patterned]
        assert options.selected_models(parse(command, "--all")) == zoo.list_models()
    assert options.selected_models(parse("train", "--model", "lenet5")) == ["lenet5"]  # train took one model
    assert options.selected_model(parse("summary", "lenet5")) == "lenet5"
    assert options.selected_model(parse("summary", "--model", "lenet5")) == "lenet5"


def test_every_sub_command_declares_a_shared_option_alike():
    # Declared by one helper each: same type and metavar wherever the option appears (bench's list of
    # batch sizes is the one intended difference), so a sub-command added later is held to it too.
    for option in TAKES:
        declared = {}
        for command, parser in subparsers().items():
            for action in parser._actions:
                if option in action.option_strings and action.help is not argparse.SUPPRESS:
                    declared[command] = (action.type, action.metavar, action.nargs)
        assert set(TAKES[option]) <= set(declared), option
        if option == "--batch-size":
            assert declared.pop("bench")[0] is options.positive_int_list
        assert len(set(declared.values())) == 1, (option, declared)


# ---------------------------------------------------------------- old spellings

@pytest.mark.parametrize("argv, attribute, expected, old, new", [
    (["crosscheck", "lenet5", "--tolerance", "0.5"], "tol", 0.5, "--tolerance", "--tol"),
    (["gradcheck", "lenet5", "--tolerance", "0.5"], "tol", 0.5, "--tolerance", "--tol"),
    (["crosscheck", "lenet5", "--batch", "3"], "batch_size", 3, "--batch", "--batch-size"),
    (["gradcheck", "lenet5", "--batch", "3"], "batch_size", 3, "--batch", "--batch-size"),
    (["bench", "lenet5", "--batch-sizes", "1,2"], "batch_size", [1, 2], "--batch-sizes", "--batch-size"),
    (["gradcheck", "lenet5", "--size", "48"], "input_size", 48, "--size", "--input-size"),
    (["train", "lenet5", "--image-size", "28"], "input_size", 28, "--image-size", "--input-size"),
    (["bench", "--models", "lenet5,alexnet"], "models", ["lenet5,alexnet"], "--models", "positional MODEL arguments"),
])
def test_old_spellings_still_work_and_name_the_new_one(capsys, argv, attribute, expected, old, new):
    assert getattr(parse(*argv), attribute) == expected
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"zoo-compare: warning: {old} is deprecated; use {new}"
    help_text = subparsers()[argv[0]].format_help()
    shown = "MODEL" if new.startswith("positional") else new
    assert old + " " not in help_text and f"{old}\n" not in help_text and shown in help_text


def test_old_spellings_are_range_checked_too(capsys):
    code, _, err = run_cli(capsys, "gradcheck", "lenet5", "--tolerance", "nan")
    assert code == 2 and err.splitlines()[-1] == "zoo-compare: error: argument --tolerance: expected a finite number >= 0, got nan"


# ---------------------------------------------------------------- one error path, ranges in the messages

@pytest.mark.parametrize("argv, message", [
    (["crosscheck", "lenet5", "--tol", "nan"], "argument --tol: expected a finite number >= 0, got nan"),
    (["crosscheck", "lenet5", "--tol", "-0.5"], "argument --tol: expected a finite number >= 0, got -0.5"),
    (["gradcheck", "lenet5", "--tol", "inf"], "argument --tol: expected a finite number >= 0, got inf"),
    (["train", "lenet5", "--lr", "inf"], "argument --lr: expected a finite number > 0, got inf"),
    (["train", "lenet5", "--lr", "0"], "argument --lr: expected a finite number > 0, got 0.0"),
    (["train", "lenet5", "--momentum", "nan"], "argument --momentum: expected a number in [0, 1), got nan"),
    (["train", "lenet5", "--momentum", "1"], "argument --momentum: expected a number in [0, 1), got 1.0"),
    (["train", "lenet5", "--weight-decay", "-1"], "argument --weight-decay: expected a finite number >= 0"),
    (["train", "lenet5", "--weight-decay", "inf"], "argument --weight-decay: expected a finite number >= 0"),
    (["bench", "lenet5", "--min-time", "inf"], "argument --min-time: expected a finite number > 0, got inf"),
    (["bench", "lenet5", "--min-time", "nan"], "argument --min-time: expected a finite number > 0, got nan"),
    (["train", "lenet5", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    (["train", "lenet5", "--limit", "-5"], "argument --limit: expected an integer >= 2, got -5"),
    (["crosscheck", "lenet5", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["crosscheck", "lenet5", "--noise-factor", "-1"], "argument --noise-factor: expected a finite number >= 0"),
    (["crosscheck", "lenet5", "--noise-factor", "inf"], "argument --noise-factor: expected a finite number >= 0"),
    (["crosscheck", "lenet5", "--bn-stats", "zeros"], "argument --bn-stats: invalid choice: 'zeros'"),
    (["bench", "lenet5", "--batch-size", "8,0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["gradcheck", "lenet5", "--seed", "1.5"], "argument --seed: expected an integer in [0, 4294967295], got '1.5'"),
    (["train", "lenet5", "--seed", "-1"], "argument --seed: expected an integer in [0, 4294967295], got '-1'"),
    (["crosscheck", "lenet5", "--input-size", "28"], "lenet5 takes only 32x32 inputs"),
    (["gradcheck", "alexnet", "--input-size", "32"], "--input-size 32 is below alexnet's minimum of 63"),
    # The knob pins LeNet to 28x28: the default 32 is refused, not swapped for 28.
    (["train", "lenet5", "--set", "image_size=28", "--input-size", "32"], "lenet5 takes only 28x28 inputs"),
    (["summary", "lenet5", "--set", "wings=2"], "--set for lenet5: lenet5 has no option 'wings'"),
    (["gradcheck", "alexnet", "--set", "dropout=0.5"], "gradcheck turns dropout and stochastic depth off"),
    (["crosscheck", "lenet5", "--frameworks", "torch", "tf", "alexnet"], "(model names go before --frameworks)"),
    (["crosscheck", "lenet5", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["summary"], "give one model, as MODEL or --model MODEL"),
    (["summary", "resnet*"], "this command takes one model; 'resnet*' matches"),
    (["bench"], "which models? give names or patterns"),
    (["train", "lenet5", "--dataset", "imagenet"], "--dataset: unknown dataset 'imagenet'"),
    (["train", "lenet5", "alexnet", "--weights", "w.safetensors"], "--weights: no file"),
    (["train", "resnet50", "--recipe", "d2l"], "--recipe: recipe 'd2l' has no settings for 'resnet50'"),
    (["train", "lenet5", "--weights", "nowhere.safetensors"], "--weights: no file 'nowhere.safetensors'"),
])
def test_bad_values_exit_2_with_one_line(capsys, monkeypatch, tmp_path, argv, message):
    no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith("zoo-compare: error: ") and message in line
    assert out == ""


def test_crosscheck_defaults_judge_by_k_floors_on_calibrated_statistics():
    args = parse("crosscheck", "lenet5")
    defaults = (crosscheck.DEFAULT_TOL, crosscheck.NOISE_FACTOR, "batches")
    assert (args.tol, args.noise_factor, args.bn_stats) == defaults
    assert parse("crosscheck", "lenet5", "--noise-factor", "0", "--bn-stats", "random").bn_stats == "random"
    help_text = subparsers()["crosscheck"].format_help()
    assert "--noise-factor K" in help_text and "--bn-stats" in help_text


@needs_two
def test_crosscheck_refuses_a_single_framework(capsys, monkeypatch):
    no_work(monkeypatch)
    code, out, err = run_cli(capsys, "crosscheck", "lenet5", "--frameworks", zoo.REFERENCE_FRAMEWORK)
    [line] = err.splitlines()
    assert code == 2 and "needs two or more" in line and "ok" not in out
    with pytest.raises(ValueError, match="two frameworks or more"):
        crosscheck.check_model("lenet5", [zoo.REFERENCE_FRAMEWORK])


# ---------------------------------------------------------------- output paths, before the work

def test_train_refuses_a_file_where_its_folder_goes_before_training(capsys, monkeypatch, tmp_path):
    no_work(monkeypatch)
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "train", "lenet5", "--epochs", "1", "--out", str(blocker))
    [line] = err.splitlines()
    assert code == 2 and line == f"zoo-compare: error: --out: {str(blocker)!r} is a file; expected a folder"
    assert blocker.read_text() == "not a folder"


def test_train_refuses_earlier_results_without_overwrite(capsys, monkeypatch, tmp_path):
    no_work(monkeypatch)
    (tmp_path / "train.json").write_text("{}")
    code, _, err = run_cli(capsys, "train", "lenet5", "--out", str(tmp_path))
    assert code == 2 and "already holds train.json" in err and "--overwrite" in err
    assert training.check_out(tmp_path, overwrite=True) == (str(tmp_path / "train.json"), str(tmp_path / "train.png"))
    (tmp_path / "train.png").mkdir()
    with pytest.raises(UsageError, match="train.png' is a folder"):
        training.check_out(tmp_path, overwrite=True)


@needs_two
def test_train_checks_its_default_folder_before_reading_the_data(monkeypatch, tmp_path):
    no_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="started working"):  # reached the data: the paths were fine
        cli.main(["train", "lenet5", "--frameworks", INSTALLED[0]])
    assert (tmp_path / "runs" / "train-lenet5-digits").is_dir()


@pytest.mark.parametrize("command", TAKES["--json"])
def test_json_paths_are_checked_before_the_work(capsys, monkeypatch, tmp_path, command):
    no_work(monkeypatch)
    frameworks = ["--frameworks", ",".join(TWO)]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for path, message in [(tmp_path, "is a folder; expected a file name"),
                          (tmp_path / "missing" / "r.json", "does not exist"),
                          (a_file / "r.json", "is a file, not a folder")]:
        code, _, err = run_cli(capsys, command, "lenet5", *frameworks, "--json", str(path))
        [line] = err.splitlines()
        assert code == 2 and line.startswith("zoo-compare: error: --json: ") and message in line


def test_bench_refuses_a_file_where_its_folder_goes(capsys, monkeypatch, tmp_path):
    no_work(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "bench", "lenet5", "--out", str(blocker))
    assert code == 2 and "is a file; expected a folder" in err


# ---------------------------------------------------------------- valid JSON

def test_write_json_writes_null_and_a_note_for_numbers_that_are_not_finite(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"loss": float("nan"), "curve": [1.0, float("inf"), np.float32("nan")],
                      "grid": np.array([[0.5, -np.inf]]), "ok": np.float64(0.25), "count": np.int64(3),
                      "given": float("nan"), "given_note": "diverged: NaN at step 12",
                      "records": [{"rel_error": float("nan")}]})

    def refuse(token):
        raise ValueError(f"{token} in the file")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["loss"] is None and data["loss_note"] == "nan written as null"
    assert data["curve"] == [1.0, None, None] and data["curve_note"] == "inf at [1] and 1 more written as null"
    assert data["grid"] == [[0.5, None]] and data["grid_note"] == "-inf at [0][1] written as null"
    assert data["ok"] == 0.25 and data["count"] == 3
    assert data["given"] is None and data["given_note"] == "diverged: NaN at step 12"  # the producer's reason kept
    assert data["records"] == [{"rel_error": None, "rel_error_note": "nan written as null"}]
    assert json_safe([float("nan")]) == [None]


def test_write_json_refuses_what_json_cannot_hold_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_a_diverged_training_run_is_written_as_valid_json(tmp_path):
    results = {"model": "lenet5", "dataset": "digits",
               "frameworks": {"torch": {"loss": [2.3, math.nan], "loss_note": "diverged: nan at step 3 (epoch 2)",
                                        "test_accuracy": [0.1, 0.1], "train_accuracy": [0.1, 0.1]}}}
    json_path, png_path = training.write(results, tmp_path)
    saved = json.loads(open(json_path).read(), parse_constant=lambda token: pytest.fail(token))
    assert saved["frameworks"]["torch"]["loss"] == [2.3, None]
    assert saved["frameworks"]["torch"]["loss_note"].startswith("diverged")
    assert open(png_path, "rb").read()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- plugins

@pytest.mark.parametrize("item, message", [
    ("zoo_no_such_plugin", "plugin 'zoo_no_such_plugin' does not import: ModuleNotFoundError"),
    ("{tmp}/gone.py", "no plugin file '{tmp}/gone.py'"),
    ("{tmp}/broken.py", "plugin '{tmp}/broken.py' does not import: RuntimeError: no registry today"),
])
def test_plugins_that_do_not_load_are_named_in_one_line(capsys, monkeypatch, tmp_path, item, message):
    (tmp_path / "broken.py").write_text("raise RuntimeError('no registry today\\nsecond line')\n")
    monkeypatch.setenv(PLUGINS_ENV, item.format(tmp=tmp_path))
    code, _, err = run_cli(capsys, "list", "lenet5")
    [line] = err.splitlines()
    assert code == 2 and line.startswith(f"zoo-compare: error: {PLUGINS_ENV}: {message.format(tmp=tmp_path)}")
    assert "zoo_plugin_broken" not in sys.modules
