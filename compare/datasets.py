"""Training data for `compare train`: scikit-learn's handwritten digits, or a user's own `.npz`.

Images come out NCHW float32, resized to the model's input size, normalised with the training
split's mean and standard deviation, and split into train and test with a fixed seed, so every
framework trains on exactly the same arrays.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from zoo.errors import ZooError

BUILTIN = ("digits",)


class DatasetError(ZooError, ValueError):
    """A dataset that cannot be used: unknown name, missing arrays, bad labels or image shapes."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # (N, C, H, W) float32, normalised
    y_train: np.ndarray  # (N,) int64 in [0, num_classes)
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def describe(self) -> str:
        _, c, h, w = self.x_train.shape
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test images, "
                f"{c}x{h}x{w}, {self.num_classes} classes")


def check_source(source: str | os.PathLike) -> None:
    """Refuse, without reading it, a dataset that cannot be loaded: an unknown name or a missing file."""
    source = os.fspath(source)
    if source in BUILTIN:
        return
    if source.endswith(".npz") or os.path.exists(source):
        if not os.path.isfile(source):
            raise DatasetError(f"dataset file {source!r} does not exist")
        return
    raise DatasetError(
        f"unknown dataset {source!r}: expected one of {', '.join(BUILTIN)} "
        "or the path of an existing .npz file with arrays 'x' (images) and 'y' (labels)"
    )


def load_dataset(source: str | os.PathLike, *, image_size: int, in_channels: int, seed: int = 0,
                 test_fraction: float = 0.2, limit: int | None = None,
                 num_classes: int | None = None) -> Dataset:
    """`source` is "digits" or the path of an `.npz` with arrays `x` (images) and `y` (integer labels).

    `x` may be (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3}; gray images are repeated
    over `in_channels`. `limit` keeps a random subset of that many images first.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    if image_size < 1:
        raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
    source = os.fspath(source)
    check_source(source)
    if source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are counts 0..16 (the UCI set's 4x4-block sums).
        x, y, name = digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64), "digits"
    else:
        x, y = _read_npz(source)
        name = os.path.basename(source)
    x = _to_nchw(x, name)
    y, num_classes = _check_labels(y, len(x), num_classes, name)
    x = _match_channels(x, in_channels, name)

    rng = np.random.default_rng(seed)
    if limit is not None:
        if limit < 2:
            raise DatasetError(f"limit must be at least 2 images, got {limit}")
        if limit < len(y):
            keep = np.sort(rng.permutation(len(y))[:limit])
            x, y = x[keep], y[keep]
    train, test = _stratified_split(y, test_fraction, rng)
    if not len(train) or not len(test):
        raise DatasetError(f"{name}: {len(y)} images are too few to split into train and test")

    x = resize(x, image_size)
    mean, std = float(x[train].mean()), float(x[train].std())
    x = (x - mean) / (std if std > 0 else 1.0)
    return Dataset(name, np.ascontiguousarray(x[train]), y[train], np.ascontiguousarray(x[test]), y[test],
                   num_classes)


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(path):
        raise DatasetError(f"dataset file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path!r} lacks array(s) {', '.join(map(repr, missing))}: a dataset .npz needs "
                    f"'x' (images) and 'y' (integer labels); it holds {sorted(archive.files) or 'nothing'}"
                )
            return archive["x"], archive["y"]
    except DatasetError:
        raise
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path!r} is not a readable .npz file: {error}") from None


def _to_nchw(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DatasetError(f"{name}: images must be numeric, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
            x = x.transpose(0, 3, 1, 2)  # NHWC
        elif x.shape[1] not in (1, 3):
            raise DatasetError(
                f"{name}: cannot tell the channel axis of images shaped {x.shape}: expected "
                "(N, C, H, W) or (N, H, W, C) with C = 1 or 3"
            )
    else:
        raise DatasetError(
            f"{name}: images must be (N, H, W), (N, C, H, W) or (N, H, W, C); got {x.ndim}-d array of shape {x.shape}"
        )
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise DatasetError(f"{name}: images shaped {x.shape} are empty")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"{name}: images contain NaN or infinite values")
    return x


def _check_labels(y: np.ndarray, count: int, num_classes: int | None, name: str) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != count:
        raise DatasetError(f"{name}: labels must be a 1-d array of {count} class indices (one per image), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or (np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0)):
        raise DatasetError(f"{name}: labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise DatasetError(
            f"{name}: labels must lie in [0, {num_classes}); {int(bad.sum())} do not "
            f"(min {int(y.min())}, max {int(y.max())})"
        )
    if num_classes < 2:
        raise DatasetError(f"{name}: need at least 2 classes, labels give {num_classes}")
    return y, int(num_classes)


def _match_channels(x: np.ndarray, in_channels: int, name: str) -> np.ndarray:
    channels = x.shape[1]
    if channels == in_channels:
        return x
    if channels == 1:
        return np.repeat(x, in_channels, axis=1)
    if in_channels == 1 and channels == 3:
        return x.mean(axis=1, keepdims=True)
    raise DatasetError(f"{name}: images have {channels} channels; the model takes {in_channels}")


def _stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _interpolation_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Bilinear weights with half-pixel centres (PyTorch's `interpolate(align_corners=False)`)."""
    scale = size_in / size_out
    centres = np.clip((np.arange(size_out) + 0.5) * scale - 0.5, 0.0, size_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    frac = (centres - low).astype(np.float32)
    matrix = np.zeros((size_out, size_in), np.float32)
    matrix[np.arange(size_out), low] += 1.0 - frac
    matrix[np.arange(size_out), high] += frac
    return matrix


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an NCHW batch to size x size."""
    _, _, h, w = x.shape
    if (h, w) == (size, size):
        return x.astype(np.float32, copy=False)
    rows, cols = _interpolation_matrix(h, size), _interpolation_matrix(w, size)
    return np.einsum("oh,nchw,pw->ncop", rows, x, cols, optimize=True).astype(np.float32)
