"""What input a model accepts, checked once at the model's edge (never inside `forward`/`call`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import InputError, InputShapeError


@dataclass(frozen=True)
class InputSignature:
    """Channels and spatial sizes a built model accepts, and how many classes its labels may name.

    `min_size` is the smallest height/width for which every feature map stays non-empty;
    `fixed_size` is set for networks whose flatten + dense head pins the input to one size.
    """

    in_channels: int
    min_size: int = 1
    fixed_size: int | None = None
    num_classes: int | None = None

    def describe(self, layout: str) -> str:
        size = f"{self.fixed_size}" if self.fixed_size else f">={self.min_size}"
        dims = {"NCHW": f"(batch, {self.in_channels}, H, W)", "NHWC": f"(batch, H, W, {self.in_channels})"}[layout]
        return f"{dims} with H and W {size}"

    def check(self, shape: Sequence[int | None], layout: str) -> None:
        """Raise InputShapeError unless `shape` fits; unknown (None) dimensions pass."""
        shape = tuple(shape)
        expected = self.describe(layout)
        if len(shape) != 4:
            raise InputShapeError(f"expected a 4-d {layout} batch {expected}, got shape {shape}")
        if layout == "NCHW":
            channels, height, width = shape[1], shape[2], shape[3]
        else:
            height, width, channels = shape[1], shape[2], shape[3]
        if channels is not None and channels != self.in_channels:
            hint = ""
            other = shape[3] if layout == "NCHW" else shape[1]
            if other == self.in_channels:
                wrong = "NHWC" if layout == "NCHW" else "NCHW"
                hint = f" (this looks like an {wrong} batch; this framework takes {layout})"
            raise InputShapeError(
                f"expected {self.in_channels} input channels, {layout} {expected}; got shape {shape}{hint}"
            )
        for label, size in (("height", height), ("width", width)):
            if size is None:
                continue
            if self.fixed_size is not None and size != self.fixed_size:
                raise InputShapeError(
                    f"this model takes only {self.fixed_size}x{self.fixed_size} images "
                    f"(its dense head is sized for it); got {label} {size} in shape {shape}"
                )
            if size < self.min_size:
                raise InputShapeError(
                    f"input {label} {size} is below this model's minimum of {self.min_size} "
                    f"(feature maps would vanish); got shape {shape}"
                )


# Numpy scalars are valid numbers wherever Python's are (an index or a size computed with numpy),
# booleans are not (True would pass for 1 channel), and neither are NaN or infinity.
def is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    if is_integer(value):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value)


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")


def check_images(images: Any, signature: InputSignature | None) -> np.ndarray:
    """The NCHW numpy batch that the backends' `predict` and `loss_gradients` take, checked whole.

    Refused, each with one line saying what came: anything but a numpy array; dtypes other than real
    floating point and integers (strings, objects, booleans, complex: casting would drop the
    imaginary part); a shape that does not fit `signature`; an empty batch, which some frameworks
    answer with an empty result and others with an error; and NaN or infinity, which the frameworks
    do not treat alike (PyTorch's max pool propagates NaN, TensorFlow's and MXNet's drop it, so the
    same weights would give NaN logits in one and finite ones in the others).
    """
    expected = signature.describe("NCHW") if signature is not None else "(batch, C, H, W)"
    if not isinstance(images, np.ndarray):
        raise InputError(f"images must be a numpy array {expected}, got {_kind(images)}")
    if images.dtype.kind not in "fiu":
        raise InputError(
            f"images must hold real numbers (a floating point or integer dtype), got dtype {images.dtype}"
        )
    if signature is not None:
        signature.check(images.shape, "NCHW")
    elif images.ndim != 4:
        raise InputShapeError(f"expected a 4-d NCHW batch {expected}, got shape {images.shape}")
    if images.shape[0] == 0:
        raise InputShapeError(f"images must be a batch of at least one image {expected}, "
                              f"got an empty batch of shape {images.shape}")
    if images.dtype.kind == "f":
        finite = np.isfinite(images)
        if not finite.all():
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            count = int(images.size - finite.sum())
            raise InputError(
                f"images must be finite: {count} {'value is' if count == 1 else 'values are'} NaN or infinite, the first "
                f"({images[first]}) at index {first}; the frameworks do not agree on NaN, so the zoo refuses it"
            )
    return images


def check_labels(labels: Any, batch: int | None, num_classes: int | None) -> np.ndarray:
    """Integer class indices, one per image of a batch of `batch` (None: any), in [0, num_classes), as int64."""
    expected = "one integer class index per image (a 1-d array" + (f" of {batch})" if batch is not None else ")")
    if isinstance(labels, (list, tuple)):
        try:
            labels = np.asarray(labels)
        except ValueError:
            raise InputError(f"labels must be {expected}; got a ragged {type(labels).__name__}") from None
    if not isinstance(labels, np.ndarray):
        raise InputError(f"labels must be {expected}, got {_kind(labels)}")
    if labels.dtype.kind not in "iu":
        raise InputError(f"labels must be {expected}; got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise InputError(f"labels must be {expected}; got shape {labels.shape}")
    if batch is not None and len(labels) != batch:
        raise InputError(f"labels must be {expected}; got {len(labels)} labels for {batch} images")
    upper = num_classes if num_classes is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((labels < 0) | (labels >= upper))
    if bad.size:
        where = int(bad[0])
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise InputError(
            f"labels must be class indices in {bound}; got {labels[where]} at position {where}"
            + (f" ({bad.size} out of range)" if bad.size > 1 else "")
        )
    return labels.astype(np.int64)


def model_classes(model: Any) -> int | None:
    """The number of classes a zoo-built model's labels may name (None for a model the zoo did not build)."""
    signature = getattr(model, "zoo_signature", None)
    return signature.num_classes if signature is not None else None


def check_model(model: Any, expected: type, framework: str) -> None:
    """A backend's functions take that framework's models only: another framework's model (or an
    array where the model goes) would otherwise fail deep inside with an unrelated AttributeError."""
    if not isinstance(model, expected):
        raise TypeError(
            f"model must be a {expected.__module__}.{expected.__qualname__} as zoo.create_model(name, "
            f"{framework!r}) builds, got {_kind(model)}"
        )


def check_input_shape(input_shape: Any, signature: InputSignature | None) -> tuple[int, int, int, int]:
    """An NCHW shape (batch, channels, height, width) of positive integers that fits `signature`, as
    the backends' `infer_output_shape` takes it."""
    expected = signature.describe("NCHW") if signature is not None else "(batch, C, H, W)"
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 4
            or not all(is_integer(d) and d > 0 for d in input_shape)):
        raise InputShapeError(f"input_shape must be 4 positive integers, NCHW {expected}; got {input_shape!r}")
    shape = tuple(int(d) for d in input_shape)
    if signature is not None:
        signature.check(shape, "NCHW")
    return shape


def check_optimizer(momentum: Any, weight_decay: Any, seed: Any) -> None:
    """The SGD settings every backend's `make_trainer` takes: momentum in [0, 1), weight decay >= 0,
    both finite numbers, and a seed (`check_seed`)."""
    if not is_real(momentum) or not 0 <= momentum < 1:
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
    if not is_real(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    check_seed(seed)


def check_seed(seed: Any) -> int:
    """A random seed: an integer in [0, 2**32) (what every framework's generator takes whole)."""
    if not is_integer(seed):
        raise TypeError(f"seed must be an integer, got {_kind(seed)} {seed!r}")
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def check_learning_rate(lr: Any) -> float:
    """A training step's learning rate: a finite number >= 0 (a schedule may end at zero)."""
    if not is_real(lr) or lr < 0:
        raise ValueError(f"the learning rate must be a finite number >= 0, got {lr!r}")
    return float(lr)
