"""`train MODEL --dataset digits`: train one model in every framework the same way and compare the curves.

Every framework starts from the same initial weights (the reference framework's initialisation, its
backend's `initial_weights`, carried to the others through the canonical format), sees the same batches
in the same order and takes the same steps: mean cross-entropy, SGD with momentum and coupled
(PyTorch-style) weight decay on every trainable tensor, and one learning-rate schedule:

    g = grad + weight_decay * w;   buf = momentum * buf + g;   w = w - lr_t * buf

Each backend's `make_trainer` applies exactly this update. Several frameworks' own SGD fold the learning
rate into the momentum buffer, which equals the rule only while the rate is constant; each Trainer says
how it keeps to the rule under a changing rate.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import zoo
from zoo.errors import WeightFileError, WeightMismatchError

from .files import atomic_write_bytes, writable_dir, writable_file, write_json
from .frameworks import resolve_frameworks
from .knobs import add_set_option, check_knobs, input_size_for, knob_variants
from .options import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                      add_model_argument, add_out_option, add_overwrite_option, add_seed_option, int_at_least,
                      non_negative_float, positive_float, positive_int, selected_model, unit_interval)
from .datasets import Dataset, DatasetError, check_source, load_dataset

SCHEDULES = ("cosine", "step", "constant")
EVAL_BATCH = 512


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


def _accuracy(trainer, x, y: np.ndarray) -> float:
    predicted = np.concatenate([trainer.logits(x[i:i + EVAL_BATCH]).argmax(1) for i in range(0, len(y), EVAL_BATCH)])
    return float((predicted == y).mean())


def initial_weights(model: str, num_classes: int, seed: int, overrides: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The reference framework's initialisation of `model`, as canonical weights: every framework's start."""
    return zoo.backend(zoo.REFERENCE_FRAMEWORK).initial_weights(model, num_classes, seed, overrides)


def train(model: str, dataset: str | os.PathLike = "digits", frameworks: Sequence[str] | None = None, *,
          epochs: int = 30, batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
          weight_decay: float = 5e-4, schedule: str = "cosine", seed: int = 0, out: str | os.PathLike | None = None,
          image_size: int | None = None, limit: int | None = None, test_fraction: float = 0.2,
          weights: str | os.PathLike | Mapping[str, np.ndarray] | None = None,
          overrides: Mapping[str, Any] | None = None,
          log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train `model` on `dataset` in each of `frameworks` (default: all installed) from the same start.

    Returns the results dict that `out/train.json` holds: settings, and per framework per-epoch
    `loss` (mean training loss of the epoch), `train_accuracy` and `test_accuracy` (inference mode,
    after the epoch), `images_per_sec` (training steps only, evaluation excluded), plus every step's
    loss and the accuracies before training. `weights` (a canonical mapping or a safetensors file)
    replaces the reference framework's initialisation as the common start.
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
    config = spec.configure(**overrides)
    signature = spec.signature(config)
    image_size = image_size or signature.fixed_size or spec.input_size[1]
    signature.check((1, spec.in_channels, image_size, image_size), "NCHW")
    if out is not None:
        check_out(out)
    log = log or (lambda line: None)

    data = load_dataset(dataset, image_size=image_size, in_channels=spec.in_channels, seed=seed,
                        test_fraction=test_fraction, limit=limit)
    log(data.describe())
    if isinstance(weights, (str, os.PathLike)):
        weights = zoo.weights.load(weights)
    start = dict(weights) if weights is not None else initial_weights(model, data.num_classes, seed, overrides)
    epoch_batches = [batches(len(data.y_train), batch_size, epoch, seed) for epoch in range(epochs)]
    steps = sum(len(b) for b in epoch_batches)
    if not steps:
        raise ValueError(f"{len(data.y_train)} training images make no batch of at least 2")

    results: dict[str, Any] = {
        "model": model,
        "dataset": data.name,
        "settings": {
            "epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum,
            "weight_decay": weight_decay, "schedule": schedule, "seed": seed, "image_size": image_size,
            "train_images": int(len(data.y_train)), "test_images": int(len(data.y_test)),
            "num_classes": data.num_classes, "steps": steps, "overrides": overrides,
            "optimizer": "SGD, momentum, coupled weight decay on every trainable tensor: "
                         "buf = momentum*buf + grad + wd*w; w -= lr*buf",
            "loss": "mean cross-entropy",
        },
        "frameworks": {},
    }
    for framework in frameworks:
        results["frameworks"][framework] = _train_one(
            framework, model, data, start, epoch_batches, overrides,
            lr=lr, momentum=momentum, weight_decay=weight_decay, schedule=schedule, seed=seed, log=log,
        )
    results["summary"] = summarize(results)
    if out is not None:
        write(results, out)
    return results


def _train_one(framework: str, model: str, data: Dataset, start: Mapping[str, np.ndarray],
               epoch_batches: list[list[np.ndarray]], overrides: Mapping[str, Any], *, lr: float,
               momentum: float, weight_decay: float, schedule: str, seed: int,
               log: Callable[[str], None]) -> dict[str, Any]:
    backend = zoo.backend(framework)
    built = zoo.create_model(model, framework, num_classes=data.num_classes, **overrides)
    backend.load_weights(built, start)
    trainer = backend.make_trainer(built, momentum, weight_decay, seed)
    x_train, x_test = trainer.prepare(data.x_train), trainer.prepare(data.x_test)
    y_train = trainer.labels(data.y_train)
    record: dict[str, Any] = {
        "loss": [], "train_accuracy": [], "test_accuracy": [], "images_per_sec": [], "train_seconds": [],
        "step_loss": [], "lr": [],  # lr: the rate of each epoch's last step
        "initial": {"train_accuracy": _accuracy(trainer, x_train, data.y_train),
                    "test_accuracy": _accuracy(trainer, x_test, data.y_test)},
    }
    epochs, steps, step = len(epoch_batches), sum(len(b) for b in epoch_batches), 0
    for epoch, chunks in enumerate(epoch_batches):
        losses, seen = [], 0
        began = time.perf_counter()
        for chunk in chunks:
            rate = learning_rate(schedule, lr, step, epoch, steps, epochs)
            losses.append(trainer.step(x_train[chunk], y_train[chunk], rate) * len(chunk))
            record["step_loss"].append(losses[-1] / len(chunk))
            seen += len(chunk)
            step += 1
        seconds = time.perf_counter() - began
        record["lr"].append(rate)
        record["loss"].append(sum(losses) / seen)
        record["train_seconds"].append(seconds)
        record["images_per_sec"].append(seen / seconds)
        record["train_accuracy"].append(_accuracy(trainer, x_train, data.y_train))
        record["test_accuracy"].append(_accuracy(trainer, x_test, data.y_test))
        log(f"{framework:>6}  epoch {epoch + 1:>3}/{epochs}  loss {record['loss'][-1]:.4f}  "
            f"train {100 * record['train_accuracy'][-1]:6.2f}%  test {100 * record['test_accuracy'][-1]:6.2f}%  "
            f"{record['images_per_sec'][-1]:9,.0f} img/s")
        if not math.isfinite(record["loss"][-1]):
            bad = next(i for i, loss in enumerate(record["step_loss"]) if not math.isfinite(loss))
            # JSON has no NaN: write_json stores these losses as null, and this says why.
            record["loss_note"] = record["step_loss_note"] = \
                f"diverged: {record['step_loss'][bad]} at step {bad + 1} (epoch {epoch + 1}); training stopped"
            log(f"{framework:>6}  loss is no longer finite; stopping this framework (try a lower --lr)")
            break
    record["first_step_loss"] = record["step_loss"][0]
    return record


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Final accuracies, their spread, and how far each framework's curves stray from the reference's
    (the reference framework where it ran, else the first framework)."""
    runs = results["frameworks"]
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


def check_out(out: str | os.PathLike, *, overwrite: bool = True) -> tuple[str, str]:
    """The paths `write` will fill, checked before any training: `out` a writable folder (made if needed),
    neither file a folder, and without `overwrite` no earlier results there."""
    folder = writable_dir(out, "--out")
    paths = [writable_file(folder / name, "--out") for name in OUTPUTS]
    if not overwrite:
        found = [path.name for path in paths if path.exists()]
        if found:
            raise UsageError(f"--out: {str(folder)!r} already holds {' and '.join(found)} of an earlier run; "
                             "give another --out or --overwrite")
    return str(paths[0]), str(paths[1])


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

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for index, (fw, run) in enumerate(results["frameworks"].items()):
        # Frameworks that agree draw on top of each other: wider lines and distinct markers underneath
        # keep every curve visible.
        style = {"color": f"C{index}", "linewidth": 1.2 + 2.0 * (len(results["frameworks"]) - 1 - index),
                 "marker": "osD^v"[index % 5], "markersize": 3 + 2 * (len(results["frameworks"]) - 1 - index),
                 "alpha": 0.85}
        epochs = np.arange(1, len(run["loss"]) + 1)
        left.plot(epochs, run["loss"], label=fw, **style)
        right.plot(epochs, 100 * np.asarray(run["test_accuracy"]), label=f"{fw} test", **style)
        right.plot(epochs, 100 * np.asarray(run["train_accuracy"]), label=f"{fw} train",
                   **{**style, "linestyle": "--", "marker": None})
    left.set(xlabel="epoch", ylabel="mean training loss", yscale="log", title="loss")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"{results['model']} on {results['dataset']}")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())


# --- command line ---

def add_parser(commands) -> None:
    parser = commands.add_parser(
        "train", help="train one model in every framework from the same start and compare the curves",
        description="Train MODEL in each framework from the same initial weights, on the same batches, with "
                    "the same loss, SGD (momentum, weight decay) and schedule; write DIR/train.json and DIR/train.png.",
    )
    add_model_argument(parser)
    parser.add_argument("--dataset", default="digits",
                        help="'digits' (scikit-learn's 8x8 digits) or PATH.npz with arrays x, y (default digits)")
    add_frameworks_option(parser)
    parser.add_argument("--epochs", type=positive_int, default=30, metavar="N",
                        help="passes over the training images (default 30)")
    add_batch_size_option(parser, 64)
    parser.add_argument("--lr", type=positive_float, default=0.05, metavar="X",
                        help="peak learning rate (default 0.05)")
    parser.add_argument("--momentum", type=unit_interval, default=0.9, metavar="X",
                        help="SGD momentum, in [0, 1) (default 0.9)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=5e-4, metavar="X",
                        help="coupled L2 weight decay on every trainable tensor (default 5e-4)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                        help="cosine: per step down to 0; step: x0.1 at 50%% and 75%% of the epochs (default cosine)")
    add_seed_option(parser)
    add_input_size_option(parser, "the model's fixed or default size")
    parser.add_argument("--limit", type=int_at_least(2), metavar="N",
                        help="use a random subset of this many images")
    parser.add_argument("--weights", metavar="PATH",
                        help="start from this canonical safetensors file instead of the reference "
                             "framework's initialisation")
    add_set_option(parser)
    add_out_option(parser, None, "runs/train-MODEL-DATASET")
    add_overwrite_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Everything the command line says is checked here, before a dataset is read or a model built.
    model = selected_model(args)
    frameworks = resolve_frameworks(args.frameworks)
    [overrides] = knob_variants(args.knobs)
    check_knobs(model, overrides)
    image_size = input_size_for(model, args.input_size, overrides)
    try:
        check_source(args.dataset)
    except DatasetError as error:
        raise UsageError(f"--dataset: {error}") from None
    if args.weights and not os.path.isfile(args.weights):
        raise UsageError(f"--weights: no file {args.weights!r}")
    stem = os.path.splitext(os.path.basename(os.fspath(args.dataset)))[0]
    out = args.out or os.path.join("runs", f"train-{model}-{stem}")
    json_path, png_path = check_out(out, overwrite=args.overwrite)
    try:
        weights = zoo.weights.load(args.weights) if args.weights else None
        results = train(
            model, args.dataset, frameworks, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule, seed=args.seed,
            out=out, image_size=image_size, limit=args.limit, weights=weights, overrides=overrides,
            log=lambda line: print(line, flush=True),
        )
    except DatasetError as error:  # the file's content: its arrays, labels or shapes
        raise UsageError(f"--dataset: {error}") from None
    except (WeightFileError, WeightMismatchError) as error:
        if not args.weights:
            raise
        raise UsageError(f"--weights: {error}") from None
    summary = results["summary"]
    print(f"\n{'framework':>9}  {'final test':>10}  {'first-step loss':>15}  {'vs ' + summary['reference']:>9}  "
          f"{'median img/s':>12}")
    for fw, run in results["frameworks"].items():
        diff = summary["first_step_loss_rel_diff"].get(fw)
        print(f"{fw:>9}  {100 * run['test_accuracy'][-1]:9.2f}%  {run['first_step_loss']:15.7f}  "
              f"{'-' if diff is None else f'{diff:.1e}':>9}  {summary['median_images_per_sec'][fw]:12,.0f}")
    print(f"final test accuracies lie within {100 * summary['final_test_accuracy_spread']:.2f} percentage points")
    print(f"wrote {json_path} and {png_path}")
    return 0
