"""`train MODEL ... --dataset NAME`: train models in every framework the same way and compare the curves.

Every framework starts from the same initial weights (the reference framework's initialisation, its
backend's `initial_weights`, or d2l's Xavier draw, carried to the others through the canonical format),
sees the same batches in the same order and takes the same steps: mean cross-entropy, SGD with momentum
and coupled (PyTorch-style) weight decay on every trainable tensor, and one learning-rate schedule:

    g = grad + weight_decay * w;   buf = momentum * buf + g;   w = w - lr_t * buf

Each backend's `make_trainer` applies exactly this update. Several frameworks' own SGD fold the learning
rate into the momentum buffer, which equals the rule only while the rate is constant; each Trainer says
how it keeps to the rule under a changing rate. Dropout draws from a seed fixed per epoch, so a run
resumed from an epoch's checkpoint ends with the weights of a run never stopped.

Images stay in memory as the dataset stores them (uint8 for the named sets) and each batch is resized,
scaled and normalised as it is drawn, in a background thread, never the whole set at the model's size.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import zoo
from zoo.errors import WeightFileError, WeightMismatchError, ZooError

from . import checkpoints
from .data import Dataset, DatasetError, batches_in_background, check_source, load_dataset
from .files import atomic_write_bytes, atomic_write_text, json_safe, writable_dir, writable_file, write_json
from .frameworks import resolve_frameworks
from .knobs import add_set_option, check_knobs, input_size_for, knob_variants
from .recipes import RECIPES, get_recipe
from .tables import format_table
from .progress import Progress
from .options import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                      add_models_arguments, add_out_option, add_overwrite_option, add_seed_option, int_at_least,
                      non_negative_float, positive_float, positive_int, selected_models, unit_interval)

SCHEDULES = ("cosine", "step", "constant")
INITS = ("reference", "xavier")
NORMALIZATIONS = ("none", "dataset")
EVAL_BATCH = 256
TRAIN_EVAL_IMAGES = 10_000  # training accuracy after each epoch: on this many fixed training images at most


class ResumeError(ValueError):
    """--resume cannot continue: no checkpoint, or one made with other settings."""


def learning_rate(schedule: str, base: float, step: int, epoch: int, steps: int, epochs: int) -> float:
    """The rate of optimisation `step` (0-based, counted over the whole run) in `epoch` (0-based).

    cosine: per step from `base` down to 0 at the end; step: x0.1 after 50% and after 75% of the epochs.
    """
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return 0.5 * base * (1.0 + math.cos(math.pi * step / steps))
    if schedule == "step":
        return base * 0.1 ** sum(epoch >= m for m in (epochs // 2, (3 * epochs) // 4) if m > 0)
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")


def batches(count: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """The epoch's batches of example indices, identical for every framework.

    A final batch of a single example is dropped: BatchNorm cannot train on it.
    """
    order = np.random.default_rng([seed, epoch]).permutation(count)
    chunks = [order[i:i + batch_size] for i in range(0, count, batch_size)]
    return [chunk for chunk in chunks if len(chunk) > 1]


def xavier_uniform(weights: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """`weights` with every convolution and dense weight redrawn Xavier-uniform (Glorot and Bengio 2010),
    as d2l's `init_cnn` does (`nn.init.xavier_uniform_` on Conv2d and Linear weights; biases and
    BatchNorm keep their initialisation). Fans as PyTorch counts them: (in, out) x kernel area."""
    rng = np.random.default_rng([seed, 0x5A71E4])
    drawn = {}
    for name, array in weights.items():
        if name.endswith("weight") and array.ndim in (2, 4):
            receptive = int(np.prod(array.shape[2:])) if array.ndim == 4 else 1
            fan_in, fan_out = array.shape[1] * receptive, array.shape[0] * receptive
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            array = rng.uniform(-bound, bound, array.shape).astype(array.dtype)
        drawn[name] = array
    return drawn


def initial_weights(model: str, num_classes: int, seed: int, overrides: Mapping[str, Any],
                    init: str = "reference") -> dict[str, np.ndarray]:
    """Every framework's start, as canonical weights: the reference framework's initialisation of
    `model` (the reference implementation's scheme), or with `init="xavier"` d2l's."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    weights = zoo.backend(zoo.REFERENCE_FRAMEWORK).initial_weights(model, num_classes, seed, overrides)
    return xavier_uniform(weights, seed) if init == "xavier" else weights


def train(model: str, dataset: str | os.PathLike = "digits", frameworks: Sequence[str] | None = None, *,
          epochs: int = 30, batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
          weight_decay: float = 5e-4, schedule: str = "cosine", seed: int = 0, out: str | os.PathLike | None = None,
          image_size: int | None = None, limit: int | None = None, test_fraction: float = 0.2,
          weights: str | os.PathLike | Mapping[str, np.ndarray] | None = None,
          overrides: Mapping[str, Any] | None = None, init: str = "reference", normalize: str = "none",
          data_dir: str | os.PathLike | None = None, mirror: str | None = None, resume: bool = False,
          recipe: str | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train `model` on `dataset` in each of `frameworks` (default: all installed) from the same start.

    Returns the results dict that `out/train.json` holds: settings, the dataset's source and
    preprocessing, and per framework per-epoch `loss` (mean training loss of the epoch),
    `train_accuracy` (inference mode, on up to TRAIN_EVAL_IMAGES fixed training images) and
    `test_accuracy` (after the epoch), `images_per_sec` (training steps, waits for the input pipeline
    included, evaluation excluded) and `pipeline_wait_s`, plus every step's loss and the accuracies before
    training. `weights` (a canonical mapping or a safetensors file) replaces the initialisation as the
    common start. With `out`, every epoch ends with a checkpoint per framework (`out/checkpoints/`) and
    the run with the trained weights (`out/weights/FRAMEWORK.safetensors`, canonical); `resume` continues
    from the checkpoints there, to the same weights as a run never stopped.
    """
    spec = zoo.get_spec(model)
    overrides = dict(overrides or {})
    frameworks = list(frameworks) if frameworks else zoo.available_frameworks()
    for framework in frameworks:
        zoo.backend(framework)  # unknown or uninstalled frameworks fail before any work
    if len(set(frameworks)) != len(frameworks):
        raise ValueError(f"frameworks listed twice: {frameworks}")
    for name, value, integer in (("epochs", epochs, True), ("batch_size", batch_size, True),
                                 ("lr", lr, False)):
        zoo.registry.check_positive(name, value, integer=integer)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    if resume and out is None:
        raise ValueError("resume needs the `out` folder of the run to continue")
    config = spec.configure(**overrides)
    signature = spec.signature(config)
    image_size = image_size or signature.fixed_size or spec.input_size[1]
    signature.check((1, spec.in_channels, image_size, image_size), "NCHW")
    if out is not None:
        check_out(out)
        if not resume:
            clear_earlier_run(out)
    log = log or (lambda line: None)

    data = load_dataset(dataset, image_size=image_size, in_channels=spec.in_channels, seed=seed,
                        test_fraction=test_fraction, limit=limit, normalize=normalize, data_dir=data_dir,
                        mirror=mirror)
    log(data.describe())
    if isinstance(weights, (str, os.PathLike)):
        weights = zoo.weights.load(weights)
    start = dict(weights) if weights is not None else None
    epoch_batches = [batches(len(data.y_train), batch_size, epoch, seed) for epoch in range(epochs)]
    steps = sum(len(b) for b in epoch_batches)
    if not steps:
        raise ValueError(f"{len(data.y_train)} training images make no batch of at least 2")

    settings = {
        "dataset": data.name, "epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum,
        "weight_decay": weight_decay, "schedule": schedule, "seed": seed, "image_size": image_size,
        "train_images": int(len(data.y_train)), "test_images": int(len(data.y_test)),
        "train_accuracy_images": min(len(data.y_train), TRAIN_EVAL_IMAGES),
        "num_classes": data.num_classes, "steps": steps, "overrides": overrides, "init": init,
        "start": "given weights" if start is not None else f"{init} initialisation, seed {seed}",
        "normalize": normalize, "recipe": recipe,
        "optimizer": "SGD, momentum, coupled weight decay on every trainable tensor: "
                     "buf = momentum*buf + grad + wd*w; w -= lr*buf",
        "loss": "mean cross-entropy",
    }
    results: dict[str, Any] = {"model": model, "dataset": data.name, "data": data.source, "settings": settings,
                               "frameworks": {}}
    run = TrainingRun(model, data, epoch_batches, settings, overrides, frameworks, out=out, resume=resume, log=log)
    if start is None and any(run.resumed_epoch(fw) is None for fw in frameworks):
        start = initial_weights(model, data.num_classes, seed, overrides, init)
    for framework in frameworks:
        try:
            results["frameworks"][framework] = run.train(framework, start)
        except (KeyboardInterrupt, ZooError):  # the user's input (weights, data): every framework would fail
            raise
        except Exception as error:  # noqa: BLE001  (one framework's failure is reported; the others go on)
            log(f"{framework:>6}  failed: {type(error).__name__}: {error}")
            results["frameworks"][framework] = {"error": f"{type(error).__name__}: {error}"}
    results["summary"] = summarize(results)
    if out is not None:
        write(results, out)
    return results


class TrainingRun:
    """One model's training in every framework: the same batches, learning rates and dropout seeds, a
    checkpoint after each epoch, and a resumed framework continuing exactly where its checkpoint ends."""

    def __init__(self, model: str, data: Dataset, epoch_batches: list[list[np.ndarray]],
                 settings: Mapping[str, Any], overrides: Mapping[str, Any], frameworks: Sequence[str], *,
                 out: str | os.PathLike | None, resume: bool, log: Callable[[str], None]) -> None:
        self.model, self.data, self.epoch_batches = model, data, epoch_batches
        self.settings, self.overrides, self.log = dict(settings), dict(overrides), log
        self.out = Path(out) if out is not None else None
        # Training accuracy is measured on a fixed sample: a whole Fashion-MNIST pass per epoch would cost
        # as much as the epoch's training at 224x224.
        rng = np.random.default_rng([settings["seed"], 0x7E57])
        count = len(data.y_train)
        self.train_sample = np.sort(rng.permutation(count)[:TRAIN_EVAL_IMAGES]) if count > TRAIN_EVAL_IMAGES \
            else np.arange(count)
        # framework -> epochs its checkpoint finished: every checkpoint is checked against this run's
        # settings before any framework trains.
        self.resumed: dict[str, int] = {}
        if resume:
            for framework in frameworks:
                path = self.checkpoint_path(framework)
                if path.is_file():
                    self.resumed[framework] = self.check_checkpoint(framework, path)
            if not self.resumed:
                raise ResumeError(f"nothing to resume: {str(self.out / 'checkpoints')!r} holds no checkpoint of "
                                  f"{', '.join(frameworks)}")

    def checkpoint_path(self, framework: str) -> Path | None:
        return None if self.out is None else self.out / "checkpoints" / f"{framework}.safetensors"

    def check_checkpoint(self, framework: str, path: Path) -> int:
        epoch, settings = checkpoints.peek(path)
        ours = json_safe(self.settings)
        differing = sorted(key for key in set(ours) | set(settings) if ours.get(key) != settings.get(key))
        if differing:
            shown = "; ".join(f"{key}: checkpoint {settings.get(key)!r}, now {ours.get(key)!r}" for key in differing)
            raise ResumeError(f"cannot resume {self.model} in {framework} from {str(path)!r}: "
                              f"it was made with other settings ({shown})")
        return epoch

    def resumed_epoch(self, framework: str) -> int | None:
        return self.resumed.get(framework)

    def train(self, framework: str, start: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
        data, settings, log = self.data, self.settings, self.log
        backend = zoo.backend(framework)
        saved = checkpoints.load(self.checkpoint_path(framework)) if framework in self.resumed else None
        built = zoo.create_model(self.model, framework, num_classes=data.num_classes, **self.overrides)
        backend.load_weights(built, saved.weights if saved is not None else start)
        trainer = backend.make_trainer(built, settings["momentum"], settings["weight_decay"], settings["seed"])
        y_train = trainer.labels(data.y_train)
        if saved is not None:
            trainer.load_state(saved.optimizer)
            record, first = saved.record, saved.epoch
            log(f"{framework:>6}  resumed from {self.checkpoint_path(framework)} after epoch {first}")
        else:
            record = {
                "loss": [], "train_accuracy": [], "test_accuracy": [], "images_per_sec": [], "train_seconds": [],
                "pipeline_wait_s": [], "step_loss": [], "lr": [],  # lr: the rate of each epoch's last step
                "initial": {"train_accuracy": self.accuracy(trainer, "train", self.train_sample),
                            "test_accuracy": self.accuracy(trainer, "test", np.arange(len(data.y_test)))},
            }
            first = 0
        epochs = len(self.epoch_batches)
        steps = sum(len(b) for b in self.epoch_batches)
        step = sum(len(b) for b in self.epoch_batches[:first])
        for epoch in range(first, epochs):
            if record.get("loss_note"):  # a diverged run stays stopped
                break
            chunks = self.epoch_batches[epoch]
            trainer.reseed(checkpoints.epoch_seed(settings["seed"], epoch))
            losses, seen, waited = [], 0, 0.0
            began = time.perf_counter()
            images = batches_in_background(lambda chunk: data.batch("train", chunk), chunks)
            with Progress(len(chunks), f"{self.model} {framework} epoch {epoch + 1}/{epochs}", unit="batch",
                          lines=False) as bar:
                for chunk in chunks:
                    asked = time.perf_counter()
                    x = next(images)
                    waited += time.perf_counter() - asked
                    rate = learning_rate(settings["schedule"], settings["lr"], step, epoch, steps, epochs)
                    losses.append(trainer.step(trainer.prepare(x), y_train[chunk], rate) * len(chunk))
                    record["step_loss"].append(losses[-1] / len(chunk))
                    seen += len(chunk)
                    step += 1
                    bar.step()
            seconds = time.perf_counter() - began
            record["lr"].append(rate)
            record["loss"].append(sum(losses) / seen)
            record["train_seconds"].append(seconds)
            record["pipeline_wait_s"].append(waited)
            record["images_per_sec"].append(seen / seconds)
            record["train_accuracy"].append(self.accuracy(trainer, "train", self.train_sample))
            record["test_accuracy"].append(self.accuracy(trainer, "test", np.arange(len(data.y_test))))
            log(f"{framework:>6}  epoch {epoch + 1:>3}/{epochs}  loss {record['loss'][-1]:.4f}  "
                f"train {100 * record['train_accuracy'][-1]:6.2f}%  test {100 * record['test_accuracy'][-1]:6.2f}%  "
                f"{record['images_per_sec'][-1]:9,.0f} img/s")
            if not math.isfinite(record["loss"][-1]):
                bad = next(i for i, loss in enumerate(record["step_loss"]) if not math.isfinite(loss))
                # JSON has no NaN: write_json stores these losses as null, and this says why.
                record["loss_note"] = record["step_loss_note"] = \
                    f"diverged: {record['step_loss'][bad]} at step {bad + 1} (epoch {epoch + 1}); training stopped"
                log(f"{framework:>6}  loss is no longer finite; stopping this framework (try a lower --lr)")
            self.save_checkpoint(framework, epoch + 1, backend.export_weights(built), trainer.state(), record)
        record["first_step_loss"] = record["step_loss"][0]
        if self.out is not None:
            folder = self.out / "weights"
            folder.mkdir(exist_ok=True)
            checkpoints.write_tensors(folder / f"{framework}.safetensors", backend.export_weights(built))
        return record

    def save_checkpoint(self, framework: str, epoch: int, weights, optimizer, record) -> None:
        path = self.checkpoint_path(framework)
        if path is None:
            return
        path.parent.mkdir(exist_ok=True)
        checkpoints.save(path, epoch=epoch, weights=weights, optimizer=optimizer, settings=self.settings,
                         record=record)

    def accuracy(self, trainer, split: str, indices: np.ndarray) -> float:
        labels = self.data.y_train if split == "train" else self.data.y_test
        chunks = [indices[i:i + EVAL_BATCH] for i in range(0, len(indices), EVAL_BATCH)]
        correct = 0
        for chunk, x in zip(chunks, batches_in_background(lambda chunk: self.data.batch(split, chunk), chunks)):
            correct += int((trainer.logits(trainer.prepare(x)).argmax(1) == labels[chunk]).sum())
        return correct / max(len(indices), 1)


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Final accuracies, their spread, and how far each framework's curves stray from the reference's
    (the reference framework where it ran, else the first framework)."""
    runs = {fw: run for fw, run in results["frameworks"].items() if "loss" in run}  # not those that failed
    if not runs:
        return {}
    reference = zoo.REFERENCE_FRAMEWORK if zoo.REFERENCE_FRAMEWORK in runs else next(iter(runs))
    ref = runs[reference]
    final = {fw: run["test_accuracy"][-1] for fw, run in runs.items()}
    summary: dict[str, Any] = {
        "reference": reference,
        "final_test_accuracy": final,
        "final_test_accuracy_spread": max(final.values()) - min(final.values()),
        "first_step_loss": {fw: run["first_step_loss"] for fw, run in runs.items()},
        "median_images_per_sec": {fw: float(np.median(run["images_per_sec"])) for fw, run in runs.items()},
        "first_step_loss_rel_diff": {},
        "max_epoch_loss_rel_diff": {},
        "max_test_accuracy_diff": {},
    }
    for fw, run in runs.items():
        if fw == reference:
            continue
        first, first_ref = run["first_step_loss"], ref["first_step_loss"]
        summary["first_step_loss_rel_diff"][fw] = abs(first - first_ref) / abs(first_ref)
        pairs = list(zip(run["loss"], ref["loss"]))
        # np.max, not max: a diverged run's NaN must show in the result, not lose every comparison.
        summary["max_epoch_loss_rel_diff"][fw] = float(np.max([abs(a - b) / max(abs(b), 1e-12) for a, b in pairs]))
        summary["max_test_accuracy_diff"][fw] = max(abs(a - b) for a, b in zip(run["test_accuracy"], ref["test_accuracy"]))
    return summary


OUTPUTS = ("train.json", "train.png")
FOLDERS = ("checkpoints", "weights")  # per framework: the last epoch's checkpoint, the trained weights


def check_out(out: str | os.PathLike, *, overwrite: bool = True) -> tuple[str, str]:
    """The paths `write` will fill, checked before any training: `out` a writable folder (made if needed),
    neither file a folder, and without `overwrite` no earlier results there."""
    folder = writable_dir(out, "--out")
    paths = [writable_file(folder / name, "--out") for name in OUTPUTS]
    if not overwrite:
        found = [path.name for path in paths if path.exists()]
        found += [f"{name}/" for name in FOLDERS if any((folder / name).glob("*.safetensors"))]
        if found:
            raise UsageError(f"--out: {str(folder)!r} already holds {' and '.join(found)} of an earlier run; "
                             "give another --out, --overwrite, or --resume to continue it")
    return str(paths[0]), str(paths[1])


def clear_earlier_run(out: str | os.PathLike) -> None:
    """A fresh run in `out` starts without the checkpoints and weights of an earlier one (a later --resume
    must not mix them in)."""
    for name in FOLDERS:
        for path in (Path(out) / name).glob("*.safetensors"):
            path.unlink()


def write(results: Mapping[str, Any], out: str | os.PathLike) -> tuple[str, str]:
    """`out/train.json` and `out/train.png` (loss and accuracy curves side by side), each written whole."""
    json_path, png_path = check_out(out)
    write_json(json_path, results)
    plot(results, png_path)
    return json_path, png_path


def plot(results: Mapping[str, Any], path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    runs = {fw: run for fw, run in results["frameworks"].items() if run.get("loss")}  # not those that failed
    for index, (fw, run) in enumerate(runs.items()):
        # Frameworks that agree draw on top of each other: wider lines and distinct markers underneath
        # keep every curve visible.
        style = {"color": f"C{index}", "linewidth": 1.2 + 2.0 * (len(runs) - 1 - index),
                 "marker": "osD^v"[index % 5], "markersize": 3 + 2 * (len(runs) - 1 - index),
                 "alpha": 0.85}
        epochs = np.arange(1, len(run["loss"]) + 1)
        left.plot(epochs, run["loss"], label=fw, **style)
        right.plot(epochs, 100 * np.asarray(run["test_accuracy"]), label=f"{fw} test", **style)
        right.plot(epochs, 100 * np.asarray(run["train_accuracy"]), label=f"{fw} train",
                   **{**style, "linestyle": "--", "marker": None})
    left.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="loss")
    # Plain numbers, not powers of ten: at 1, 2 and 5 of each decade, or at every digit where the losses
    # span less than a decade.
    losses = np.array([loss for run in runs.values() for loss in run["loss"] if loss is not None], float)
    losses = losses[np.isfinite(losses) & (losses > 0)]
    narrow = losses.size and losses.max() < 10 * losses.min()
    left.yaxis.set_major_locator(LogLocator(subs=np.arange(1.0, 10.0) if narrow else (1.0, 2.0, 5.0)))
    left.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    left.yaxis.set_minor_formatter(NullFormatter())
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        axis.grid(alpha=0.3)
        if runs:
            axis.legend()
    figure.suptitle(f"{results['model']} on {results['dataset']}")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())


# --- several models: the textbook's comparison ---

STUDY_OUTPUTS = ("study.json", "study.md", "study.png")
STUDY_COLUMNS = ("model", "framework", "loss", "train acc", "test acc", "s/epoch", "img/s")
STUDY_ALIGN = "llrrrrr"


def study(models: Sequence[str], dataset: str | os.PathLike = "digits", frameworks: Sequence[str] | None = None, *,
          out: str | os.PathLike, recipe: str | None = None, settings: Mapping[str, Any] | None = None,
          per_model: Mapping[str, Mapping[str, Any]] | None = None, resume: bool = False,
          log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train each of `models` in every framework (`train`, into `out/MODEL/`), with the `recipe`'s settings
    for each model where one is given, `settings` (train's keywords) over them and `per_model[MODEL]` over
    those, then one table of every (model, framework):
    final training loss, training and test accuracy, seconds per epoch and images/s, in `out/study.json`,
    `out/study.md`, and their test accuracies side by side in `out/study.png`. A model that fails is
    reported in the table and the others go on."""
    log = log or (lambda line: None)
    chosen = get_recipe(recipe) if recipe else None
    plans = {model: {**(chosen.for_model(model) if chosen else {}), **(settings or {}), **(per_model or {}).get(model, {})}
             for model in models}
    check_study_out(out)
    report: dict[str, Any] = {"dataset": os.fspath(dataset), "recipe": chosen and {"name": chosen.name, "source": chosen.source},
                              "models": {}}
    for model in models:
        folder = Path(out) / model
        log(f"--- {model}: " + ", ".join(f"{key} {value}" for key, value in plans[model].items()
                                        if value not in (None, {})))
        try:
            results = train(model, dataset, frameworks, out=folder, recipe=recipe, log=log,
                            resume=resume and any((folder / "checkpoints").glob("*.safetensors")), **plans[model])
        except (KeyboardInterrupt, UsageError, DatasetError):
            raise
        except Exception as error:  # noqa: BLE001  (one model's failure is reported; the study goes on)
            log(f"{model}: failed: {type(error).__name__}: {error}")
            report["models"][model] = {"error": f"{type(error).__name__}: {error}"}
            continue
        report["dataset"] = results["dataset"]
        report["models"][model] = {"settings": results["settings"], "frameworks": results["frameworks"],
                                   "summary": results["summary"]}
        write_study(report, out)
    write_study(report, out)
    return report


def study_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for model, entry in report["models"].items():
        if "error" in entry:
            rows.append([model, "-", entry["error"][:80], "", "", "", ""])
            continue
        for framework, run in entry["frameworks"].items():
            if "loss" not in run:
                rows.append([model, framework, run.get("error", "failed")[:80], "", "", "", ""])
                continue
            rows.append([model, framework, f"{run['loss'][-1]:.4f}", f"{100 * run['train_accuracy'][-1]:.2f}%",
                         f"{100 * run['test_accuracy'][-1]:.2f}%", f"{np.mean(run['train_seconds']):.1f}",
                         f"{np.median(run['images_per_sec']):,.0f}"])
    return rows


def check_study_out(out: str | os.PathLike) -> list[Path]:
    folder = writable_dir(out, "--out")
    return [writable_file(folder / name, "--out") for name in STUDY_OUTPUTS]


def write_study(report: Mapping[str, Any], out: str | os.PathLike) -> None:
    """`out/study.json`, `out/study.md` (the table) and `out/study.png`, each written whole."""
    json_path, md_path, png_path = check_study_out(out)
    write_json(json_path, report)
    recipe = report.get("recipe")
    lines = [f"# {', '.join(report['models'])} on {report['dataset']}", ""]
    if recipe:
        lines += [f"Recipe `{recipe['name']}`: {recipe['source']}.", ""]
    lines += [format_table([list(STUDY_COLUMNS), *study_rows(report)], align=STUDY_ALIGN, markdown=True), ""]
    spreads = {model: entry["summary"].get("final_test_accuracy_spread") for model, entry in report["models"].items()
               if "summary" in entry and entry["summary"]}
    if spreads:
        lines += ["Spread of the final test accuracy across frameworks (percentage points): "
                  + ", ".join(f"{model} {100 * spread:.2f}" for model, spread in spreads.items()), ""]
    atomic_write_text(md_path, "\n".join(lines))
    plot_study(report, png_path)


def plot_study(report: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Final test accuracy of each model, one bar per framework: where the frameworks agree the bars match."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = {model: entry for model, entry in report["models"].items() if "frameworks" in entry}
    frameworks = list(dict.fromkeys(fw for entry in trained.values() for fw in entry["frameworks"]))
    figure, axis = plt.subplots(figsize=(max(6.0, 1.3 * len(trained) + 3), 4))
    width = 0.8 / max(len(frameworks), 1)
    for index, framework in enumerate(frameworks):
        heights = [100 * entry["frameworks"][framework]["test_accuracy"][-1]
                   if "loss" in entry["frameworks"].get(framework, {}) else np.nan for entry in trained.values()]
        axis.bar(np.arange(len(trained)) + (index - (len(frameworks) - 1) / 2) * width, heights, width,
                 label=framework, color=f"C{index}")
    axis.set_xticks(np.arange(len(trained)), list(trained), rotation=20, ha="right")
    axis.set(ylabel="final test accuracy (%)", ylim=(0, 100), title=f"test accuracy on {report['dataset']}")
    axis.grid(axis="y", alpha=0.3)
    if frameworks:
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())


# --- command line ---

# train()'s settings when neither the command line nor a recipe sets them.
DEFAULTS = {"epochs": 30, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine",
            "init": "reference", "normalize": "none"}


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="train models in every framework from the same start and compare the curves",
        description="Train each MODEL in each framework from the same initial weights, on the same batches, with "
                    "the same loss, SGD (momentum, weight decay) and schedule; write DIR/train.json, DIR/train.png, "
                    "the trained weights (DIR/weights/) and a checkpoint per epoch (DIR/checkpoints/). With several "
                    "models, each goes to DIR/MODEL/ and DIR/study.{json,md,png} compares them.",
    )
    add_models_arguments(parser, one_spelling="--model")
    parser.add_argument("--dataset", default="digits", metavar="NAME|FILE.npz|DIR",
                        help="fashion-mnist, mnist or cifar10 (downloaded once into --data-dir, checksums verified), "
                             "digits (scikit-learn's 8x8 digits), a .npz with arrays x and y, or an image folder "
                             "(a subfolder per class; train/ and val/ inside if split) (default digits)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where downloaded datasets are kept (default $ZOO_DATA_DIR, else ~/.cache/zoo/datasets)")
    parser.add_argument("--data-mirror", metavar="URL",
                        help="download the named datasets' files from URL/FILE instead of their usual hosts "
                             "(default $ZOO_DATA_MIRROR)")
    parser.add_argument("--normalize", choices=NORMALIZATIONS, default=None,
                        help="none: pixels scaled to [0, 1], as d2l; dataset: then per-channel mean and standard "
                             "deviation of the training split (default none)")
    parser.add_argument("--recipe", choices=tuple(RECIPES), default=None,
                        help="a textbook's settings per model (d2l: Dive into Deep Learning 1.0's input size, "
                             "learning rate, 10 epochs, batch 128, plain SGD, Xavier init); options given "
                             "here override it")
    add_frameworks_option(parser)
    parser.add_argument("--epochs", type=positive_int, metavar="N",
                        help=f"passes over the training images (default {DEFAULTS['epochs']})")
    add_batch_size_option(parser, DEFAULTS["batch_size"])
    parser.set_defaults(batch_size=None)  # so that a recipe's batch size applies unless one is given
    parser.add_argument("--lr", type=positive_float, metavar="X",
                        help=f"peak learning rate (default {DEFAULTS['lr']})")
    parser.add_argument("--momentum", type=unit_interval, metavar="X",
                        help=f"SGD momentum, in [0, 1) (default {DEFAULTS['momentum']})")
    parser.add_argument("--weight-decay", type=non_negative_float, metavar="X",
                        help=f"coupled L2 weight decay on every trainable tensor (default {DEFAULTS['weight_decay']:g})")
    parser.add_argument("--schedule", choices=SCHEDULES, default=None,
                        help="cosine: per step down to 0; step: x0.1 at 50%% and 75%% of the epochs; "
                             "constant (default cosine)")
    parser.add_argument("--init", choices=INITS, default=None,
                        help="reference: the reference framework's initialisation; xavier: "
                             "Xavier-uniform convolution and dense weights, as d2l (default reference)")
    add_seed_option(parser)
    add_input_size_option(parser, "the recipe's, else the model's fixed or default size")
    parser.add_argument("--limit", type=int_at_least(2), metavar="N",
                        help="use a random subset of this many images (of each split, for sets that have one)")
    parser.add_argument("--weights", metavar="PATH",
                        help="start from this canonical safetensors file instead of the initialisation")
    add_set_option(parser)
    add_out_option(parser, None, "runs/train-MODEL-DATASET, or runs/study-DATASET for several models")
    add_overwrite_option(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoints, to the weights of a run never stopped")
    parser.set_defaults(run=run)


SETTINGS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "init", "normalize")


def run(args: argparse.Namespace) -> int:
    # Everything the command line says is checked here, before a dataset is read or a model built.
    models = selected_models(args)
    frameworks = resolve_frameworks(args.frameworks)
    [overrides] = knob_variants(args.knobs)
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    plans = {}
    for model in models:
        try:
            plan = {**DEFAULTS, **(get_recipe(args.recipe).for_model(model) if args.recipe else {}), **given}
        except KeyError as error:
            raise UsageError(f"--recipe: {error.args[0]}") from None
        check_knobs(model, overrides)
        plan["image_size"] = input_size_for(model, args.input_size or plan.get("image_size"), overrides)
        plans[model] = plan
    try:
        check_source(args.dataset)
    except DatasetError as error:
        raise UsageError(f"--dataset: {error}") from None
    if args.weights and not os.path.isfile(args.weights):
        raise UsageError(f"--weights: no file {args.weights!r}")
    if args.weights and len(models) > 1:
        raise UsageError("--weights: one weight file starts one model; give one MODEL")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    stem = os.path.splitext(os.path.basename(os.path.normpath(os.fspath(args.dataset))))[0]
    single = len(models) == 1
    out = args.out or os.path.join("runs", f"train-{models[0]}-{stem}" if single else f"study-{stem}")
    folders = [out] if single else [os.path.join(out, model) for model in models]
    for folder in folders:
        check_out(folder, overwrite=args.overwrite or args.resume)
    if args.resume and not any(any((Path(folder) / "checkpoints").glob("*.safetensors")) for folder in folders):
        raise UsageError(f"--resume: {out!r} holds no checkpoint to continue from")
    common = dict(seed=args.seed, limit=args.limit, overrides=overrides, data_dir=args.data_dir, mirror=args.data_mirror)
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        if single:
            weights = zoo.weights.load(args.weights) if args.weights else None
            results = train(models[0], args.dataset, frameworks, out=out, weights=weights, resume=args.resume,
                            recipe=args.recipe, log=log, **common, **plans[models[0]])
            print_summary(results)
            print(f"wrote {os.path.join(out, 'train.json')}, train.png, weights/ and checkpoints/")
        else:
            report = study(models, args.dataset, frameworks, out=out, recipe=args.recipe, resume=args.resume, log=log,
                           settings={**common, **given},
                           per_model={model: {"image_size": plans[model]["image_size"]} for model in models})
            print()
            print(format_table([list(STUDY_COLUMNS), *study_rows(report)], align=STUDY_ALIGN))
            print(f"wrote {os.path.join(out, 'study.md')}, study.json, study.png and a folder per model")
    except DatasetError as error:  # the file's content, or a download
        raise UsageError(f"--dataset: {error}") from None
    except ResumeError as error:
        raise UsageError(f"--resume: {error}") from None
    except (WeightFileError, WeightMismatchError) as error:
        if not args.weights:
            raise
        raise UsageError(f"--weights: {error}") from None
    return 0


def print_summary(results: Mapping[str, Any]) -> None:
    summary = results["summary"]
    if not summary:
        print("\nno framework finished training")
        return
    print(f"\n{'framework':>9}  {'final test':>10}  {'first-step loss':>15}  {'vs ' + summary['reference']:>9}  "
          f"{'median img/s':>12}")
    for fw, run in results["frameworks"].items():
        if "loss" not in run:
            print(f"{fw:>9}  failed: {run.get('error', '')}")
            continue
        diff = summary["first_step_loss_rel_diff"].get(fw)
        print(f"{fw:>9}  {100 * run['test_accuracy'][-1]:9.2f}%  {run['first_step_loss']:15.7f}  "
              f"{'-' if diff is None else f'{diff:.1e}':>9}  {summary['median_images_per_sec'][fw]:12,.0f}")
    print(f"final test accuracies lie within {100 * summary['final_test_accuracy_spread']:.2f} percentage points")
