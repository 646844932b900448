"""The Dataset that `compare train` feeds every framework, and `load_dataset`, which makes one.

A Dataset keeps the raw images as stored (uint8 for the named sets and image folders, float32 for
digits and a user's .npz) and makes each batch at the model's size on request, so a set never sits
in memory at model size: Fashion-MNIST at 224x224 would take 60000 x 3 x 224 x 224 float32 = 36 GB.

A batch is `raw[indices]` -> float32 x scale -> channel matching -> bilinear resize with half-pixel
centres (PyTorch's `interpolate(align_corners=False)`, antialias off) -> (x - mean) / std when
normalising. It is computed in NumPy alone, so every framework sees the same array bit for bit.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import sources
from .download import data_dir as default_data_dir
from .download import fetch, md5_of, mirror_url
from .errors import DatasetError
from .formats import (IDX_IMAGES, IDX_LABELS, decode_images, list_image_folder, read_cifar, read_idx, read_npz,
                      split_folders, to_nchw)
from .sources import NAMED

NORMALIZE = ("none", "dataset")
SPLITS = ("train", "test")
_STATS_CHUNK = 1 << 22  # values per chunk when computing the normalisation statistics


@dataclass(frozen=True, eq=False)  # eq=False: arrays make field-wise == ambiguous; a Dataset is equal to itself
class Dataset:
    name: str
    num_classes: int
    classes: tuple[str, ...] | None
    x_train: np.ndarray  # (N, C, H, W) as stored: uint8 (named sets, image folders) or float32 (digits, .npz)
    y_train: np.ndarray  # (N,) int64 in [0, num_classes)
    x_test: np.ndarray
    y_test: np.ndarray
    image_size: int      # the model's input size: batches come out image_size x image_size
    in_channels: int     # the model's channels
    scale: float         # raw value x scale lies in [0, 1] (1/255 for uint8)
    mean: tuple[float, ...] | None = None  # per model channel, after scaling; None: no normalisation
    std: tuple[float, ...] | None = None
    source: dict = field(default_factory=dict)  # for the results file: origin, split, preprocessing

    def batch(self, split: str, indices) -> np.ndarray:
        """Images `indices` of split "train" or "test" as float32 (len, in_channels, image_size, image_size)."""
        raw = {"train": self.x_train, "test": self.x_test}.get(split)
        if raw is None:
            raise DatasetError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if not isinstance(indices, slice):
            indices = np.asarray(indices)
            if indices.size == 0:
                indices = indices.astype(np.intp)
        x = prepare(raw[indices], self.scale, self.in_channels, self.image_size)
        if self.mean is not None:
            x -= np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
            x /= np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return x

    def describe(self) -> str:
        _, c, h, w = self.x_train.shape
        stored = "" if (c, h, w) == (self.in_channels, self.image_size, self.image_size) else f" (stored {c}x{h}x{w})"
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test images, "
                f"{self.in_channels}x{self.image_size}x{self.image_size}{stored}, {self.num_classes} classes")


# --- the per-batch pipeline -----------------------------------------------------------------------

def prepare(raw: np.ndarray, scale: float, in_channels: int, image_size: int) -> np.ndarray:
    """Raw NCHW images -> float32 scaled, channel-matched and resized (a new array)."""
    x = raw.astype(np.float32)
    if scale != 1.0:
        # Divide, as the usual `ToTensor` transform does: 255 / 255 is exactly 1, 255 x float32(1 / 255) is not.
        x /= np.float32(1.0 / scale)
    if x.shape[1] != in_channels and in_channels == 1:
        x = x.mean(axis=1, keepdims=True, dtype=np.float32)  # RGB averaged before resizing: a third of the work
    x = resize(x, image_size)
    if x.shape[1] != in_channels:
        x = np.repeat(x, in_channels, axis=1)  # gray repeated after resizing: the same values, a third of the work
    return x


@functools.lru_cache(maxsize=64)
def _taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps with half-pixel centres (PyTorch's `interpolate(align_corners=False)`, which takes two
    taps even when shrinking): output i reads inputs low[i] and high[i] with weight frac[i] on high."""
    centres = np.clip((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0, size_in - 1)
    low = np.floor(centres).astype(np.intp)
    high = np.minimum(low + 1, size_in - 1)
    frac = (centres - low).astype(np.float32)
    for array in (low, high, frac):
        array.flags.writeable = False
    return low, high, frac


def _lerp(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    low, high, frac = _taps(x.shape[axis], size)
    a, b = np.take(x, low, axis=axis), np.take(x, high, axis=axis)
    # a + (b - a) * frac, in place: a constant image stays exactly constant, values stay within [a, b].
    b -= a
    b *= frac.reshape((-1,) + (1,) * (x.ndim - 1 - axis % x.ndim))
    b += a
    return b


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an NCHW batch to size x size (float32), a few images at a time: two taps per
    axis, elementwise, so the result is the same bit for bit on every machine and for any batch."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x.astype(np.float32, copy=False)
    out = np.empty((n, c, size, size), np.float32)
    step = max(1, (1 << 20) // max(1, c * max(h, size) * size))  # about 4 MB of float32 per temporary
    for start in range(0, n, step):
        part = np.asarray(x[start:start + step], np.float32)
        if w != size:
            part = _lerp(part, size, axis=3)
        out[start:start + step] = _lerp(part, size, axis=2) if h != size else part
    return out


def channel_stats(x: np.ndarray, scale: float, in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of raw images after scaling and channel matching, at the
    stored size, in float64, a chunk at a time. Resizing moves them a little (for natural images the mean
    hardly, the std down a little where upsampling smooths), so normalised batches have mean and std
    near 0 and 1, exactly so only at the stored size."""
    per_image = max(1, int(np.prod(x.shape[1:])))
    step = max(1, _STATS_CHUNK // per_image)

    def chunks():
        for start in range(0, len(x), step):
            chunk = x[start:start + step].astype(np.float64) * scale
            if chunk.shape[1] != in_channels and in_channels == 1:
                chunk = chunk.mean(axis=1, keepdims=True)
            yield chunk

    total, count = 0.0, 0
    for chunk in chunks():
        total = total + chunk.sum(axis=(0, 2, 3))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / count
    squares = 0.0
    for chunk in chunks():
        squares = squares + ((chunk - mean.reshape(1, -1, 1, 1)) ** 2).sum(axis=(0, 2, 3))
    std = np.sqrt(squares / count)
    std = np.where(std > 0, std, 1.0)  # a constant channel: centre it, do not divide by zero
    repeat = in_channels if len(mean) == 1 else 1
    return tuple(float(v) for v in np.repeat(mean, repeat)), tuple(float(v) for v in np.repeat(std, repeat))


# --- checks shared by every source ----------------------------------------------------------------

def check_labels(y: np.ndarray, count: int, num_classes: int | None, name: str) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != count:
        raise DatasetError(f"{name}: labels must be a 1-d array of {count} class indices (one per image), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or (np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0)):
        raise DatasetError(f"{name}: labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if len(y) else 0
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise DatasetError(
            f"{name}: labels must lie in [0, {num_classes}); {int(bad.sum())} do not "
            f"(min {int(y.min())}, max {int(y.max())})"
        )
    if num_classes < 2:
        raise DatasetError(f"{name}: need at least 2 classes, labels give {num_classes}")
    return y, int(num_classes)


def check_channels(channels: int, in_channels: int, name: str) -> str:
    """How images of `channels` channels become the model's `in_channels` (for the record), or an error."""
    if channels == in_channels:
        return ""
    if channels == 1:
        return f"gray repeated to {in_channels} channels"
    if channels == 3 and in_channels == 1:
        return "RGB averaged to 1 channel"
    raise DatasetError(f"{name}: images have {channels} channels; the model takes {in_channels}")


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, picked) with about `fraction` of every class picked, each class at least once
    where it has two or more images."""
    picked = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        take = int(round(fraction * len(members)))
        if len(members) > 1:
            take = min(max(take, 1), len(members) - 1)
        picked.append(members[:take])
    picked = np.sort(np.concatenate(picked))
    rest = np.setdiff1d(np.arange(len(y)), picked)
    return rest, picked


def _take(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    if len(index) == len(x) and np.array_equal(index, np.arange(len(x))):
        return x  # the whole split: no copy of 50000 images
    return np.ascontiguousarray(x[index])


def _subset(count: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= count:
        return np.arange(count)
    return np.sort(rng.permutation(count)[:limit])


# --- sources --------------------------------------------------------------------------------------

ACCEPTED = (f"one of {', '.join(NAMED)}, the path of an existing .npz file with arrays 'x' (images) and 'y' "
            "(labels), or a folder of images with one subfolder per class (optionally inside train/ and val/)")


def _is_named(source) -> bool:
    text = os.fspath(source)
    return text in NAMED and (isinstance(source, str) or not os.path.exists(text))


def check_source(source: str | os.PathLike) -> None:
    """Refuse, without reading it, a dataset that cannot be loaded: an unknown name, a missing file or folder.
    A named set wins over a folder of the same name (write ./mnist for the folder)."""
    if _is_named(source):
        return
    path = os.fspath(source)
    if os.path.isdir(path):
        return
    if path.endswith(".npz") or os.path.exists(path):
        if not os.path.isfile(path):
            raise DatasetError(f"dataset file {path!r} does not exist")
        return
    if path.endswith(("/", os.sep)):
        raise DatasetError(f"dataset folder {path!r} does not exist")
    if os.sep in path or "/" in path:
        raise DatasetError(f"no dataset file or folder {path!r}: expected {ACCEPTED}")
    raise DatasetError(f"unknown dataset {path!r}: expected {ACCEPTED}")


@dataclass
class _Raw:
    """What a source gives before subsetting and splitting: either `whole` (x, y) to split ourselves,
    or `train` and `test`; x may be a list of image paths, which `take` decodes."""
    name: str
    classes: tuple[str, ...] | None
    scale: float
    scaling: str  # for the record
    origin: dict
    whole: tuple | None = None
    train: tuple | None = None
    test: tuple | None = None
    num_classes: int | None = None
    take: Callable[[object, np.ndarray], np.ndarray] = lambda x, index: _take(x, index)
    resized_at_load: str = ""


def _digits() -> _Raw:
    import sklearn
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are counts 0..16 (the UCI set's 4x4-block sums).
    x = digits.images.astype(np.float32)[:, None] / 16.0
    return _Raw("digits", tuple(str(c) for c in digits.target_names), 1.0, "scaled to [0, 1] (/16)",
                {"origin": "scikit-learn's load_digits (UCI optical recognition of handwritten digits)",
                 "scikit_learn": sklearn.__version__},
                whole=(x, digits.target.astype(np.int64)))


def _named(name: str, folder, mirror, progress) -> _Raw:
    named = sources.SOURCES[name]
    paths = fetch(named, folder, mirror=mirror, progress=progress)
    if named.format == "idx":
        files = [paths[file] for file, _ in named.files]
        x_train, y_train, x_test, y_test = (read_idx(files[0], IDX_IMAGES), read_idx(files[1], IDX_LABELS),
                                            read_idx(files[2], IDX_IMAGES), read_idx(files[3], IDX_LABELS))
        x_train, x_test, classes = x_train[:, None], x_test[:, None], named.classes
    elif named.format == "cifar":
        [(file, _)] = named.files
        x_train, y_train, x_test, y_test, classes = read_cifar(paths[file], sources.CIFAR10_BATCHES)
    else:
        raise DatasetError(f"{name}: unknown format {named.format!r}")
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DatasetError(f"{name}: the {split} split has {len(x)} images but {len(y)} labels")
    hosts = (mirror.rstrip("/") + "/",) if mirror else named.hosts
    origin = {"title": named.title, "homepage": named.homepage, "folder": str(folder), "hosts": list(hosts),
              "files": [{"name": file, "md5": md5} for file, md5 in named.files]}
    return _Raw(name, tuple(classes), 1.0 / 255, "scaled to [0, 1] (/255)", origin,
                train=(x_train, y_train), test=(x_test, y_test), num_classes=len(classes))


def _npz(path: str) -> _Raw:
    name = os.path.basename(path)
    x, y = read_npz(path)
    x = to_nchw(x, name)
    return _Raw(name, None, 1.0, "values as stored", {"path": os.path.abspath(path), "md5": md5_of(path)},
                whole=(x, y))


def _folder(path: str, image_size: int, in_channels: int, progress: bool) -> _Raw:
    name = os.path.basename(os.path.normpath(path))
    check_channels(3, in_channels, name)
    mode = "L" if in_channels == 1 else "RGB"
    origin = {"path": os.path.abspath(path)}
    splits = split_folders(path)

    def take(paths, index):
        return decode_images([paths[i] for i in index], image_size, in_channels, progress)

    note = f"decoded with Pillow as {mode} and resized to {image_size}x{image_size} (Pillow's bilinear) at load"
    common = {"scale": 1.0 / 255, "scaling": "scaled to [0, 1] (/255)", "origin": origin, "take": take,
              "resized_at_load": note}
    if splits is None:
        classes, paths, labels = list_image_folder(path)
        return _Raw(name, classes, whole=(paths, labels), num_classes=len(classes), **common)
    (train_classes, train_paths, train_labels), (test_classes, test_paths, test_labels) = map(list_image_folder, splits)
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DatasetError(
            f"image folder {path!r}: {splits[0].name}/ and {splits[1].name}/ must hold the same class folders; "
            f"only in {splits[0].name}/: {', '.join(only_train) or 'none'}; only in {splits[1].name}/: "
            f"{', '.join(only_test) or 'none'}"
        )
    origin["splits"] = [splits[0].name, splits[1].name]
    return _Raw(name, train_classes, train=(train_paths, train_labels), test=(test_paths, test_labels),
                num_classes=len(train_classes), **common)


def load_dataset(source: str | os.PathLike, *, image_size: int, in_channels: int, seed: int = 0,
                 test_fraction: float = 0.2, limit: int | None = None, normalize: str = "none",
                 data_dir: str | os.PathLike | None = None, mirror: str | None = None, progress: bool = True,
                 num_classes: int | None = None) -> Dataset:
    """A named set (fashion-mnist, mnist, cifar10: downloaded into `data_dir()` once; digits), the path
    of an `.npz` with arrays `x` (images) and `y` (integer labels), or a folder of images.

    Named sets and folders with train/ and val/ keep their own test split; the others are split with a
    stratified `test_fraction` from `seed`. `limit` keeps a random subset (from `seed`) of at most that
    many images of each given split, or of the whole set before splitting it. `normalize` "none" scales
    to [0, 1] only (d2l); "dataset" also standardises each channel with the training split's mean and std.
    `num_classes` fixes the class count (labels must lie below it) where the labels alone would set it.
    An .npz's `x` may be (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3}; it is kept as float32,
    as stored (scale 1). An image folder's images differ in size, so each is decoded (RGB, or L for a
    one-channel model) and resized to image_size x image_size once, here, and kept as uint8.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    if not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
    if not isinstance(in_channels, (int, np.integer)) or in_channels < 1:
        raise DatasetError(f"in_channels must be a positive integer, got {in_channels!r}")
    if normalize not in NORMALIZE:
        raise DatasetError(f"normalize must be 'none' (scale to [0, 1]) or 'dataset' (the training split's "
                           f"per-channel mean and std), got {normalize!r}")
    if limit is not None and limit < 2:
        raise DatasetError(f"limit must be at least 2 images, got {limit}")
    check_source(source)

    if _is_named(source) and os.fspath(source) == "digits":
        raw = _digits()
    elif _is_named(source):
        named = os.fspath(source)
        raw = _named(named, default_data_dir(data_dir) / named, mirror_url(mirror), progress)
    elif os.path.isdir(os.fspath(source)):
        raw = _folder(os.fspath(source), image_size, in_channels, progress)
    else:
        raw = _npz(os.fspath(source))
    name = raw.name
    fixed = num_classes if num_classes is not None else raw.num_classes

    rng = np.random.default_rng(seed)
    if raw.whole is not None:
        x, y = raw.whole
        y, classes_count = check_labels(y, len(x), fixed, name)
        keep = _subset(len(y), limit, rng)
        train, test = stratified_split(y[keep], test_fraction, rng)
        if not len(train) or not len(test):
            raise DatasetError(f"{name}: {len(keep)} images are too few to split into train and test")
        train, test = keep[train], keep[test]
        (x_train, y_train), (x_test, y_test) = (raw.take(x, train), y[train]), (raw.take(x, test), y[test])
        percent = round(100 * test_fraction)
        split = f"{100 - percent}/{percent} stratified, seed {seed}"
        if limit is not None and limit < len(y):
            split += f", of a random subset of {limit} of {len(y)} images"
    else:
        (x_train, y_train), (x_test, y_test) = raw.train, raw.test
        y_train, classes_count = check_labels(y_train, len(x_train), fixed, f"{name} (train)")
        y_test, _ = check_labels(y_test, len(x_test), classes_count, f"{name} (test)")
        train, test = _subset(len(y_train), limit, rng), _subset(len(y_test), limit, rng)
        split = "official" if raw.resized_at_load == "" else f"official (the folders {', '.join(raw.origin['splits'])})"
        if limit is not None and (limit < len(y_train) or limit < len(y_test)):
            split += f", a random subset of at most {limit} images of each split (seed {seed})"
        x_train, y_train = raw.take(x_train, train), y_train[train]
        x_test, y_test = raw.take(x_test, test), y_test[test]

    channels = check_channels(x_train.shape[1], in_channels, name)
    mean = std = None
    if normalize == "dataset":
        mean, std = channel_stats(x_train, raw.scale, in_channels)
    height, width = x_train.shape[2:]
    if raw.resized_at_load:
        resizing = raw.resized_at_load
    elif (height, width) == (image_size, image_size):
        resizing = f"no resize (stored at {image_size}x{image_size})"
    else:
        resizing = f"bilinear resize from {height}x{width} to {image_size}x{image_size} (half-pixel centres)"
    steps = [resizing,
             raw.scaling, channels]
    if mean is not None:
        steps.append(f"normalised per channel with the training split's mean {_short(mean)} and std {_short(std)}")
    record = {"dataset": name, **raw.origin, "split": split, "train_images": int(len(y_train)),
              "test_images": int(len(y_test)), "preprocessing": ", ".join(step for step in steps if step),
              "normalize": normalize}
    if mean is not None:
        record["mean"], record["std"] = list(mean), list(std)
    return Dataset(name, classes_count, raw.classes, x_train, y_train, x_test, y_test, int(image_size),
                   int(in_channels), raw.scale, mean, std, record)


def _short(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
