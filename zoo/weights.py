"""Canonical weights: a flat mapping `name -> numpy array` in PyTorch names and layouts, stored as safetensors.

Names are the `state_dict` keys of the `zoo_torch` model (torchvision's keys where torchvision has
the model); layouts are PyTorch's: conv OIHW, dense (out, in), depthwise (C, 1, kH, kW).

Every backend's `load_weights` calls `check_mapping` before it touches the model, so that a mapping
is loaded whole or not at all, and one error names everything wrong with it.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from .errors import WeightFileError, WeightMismatchError


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")


def as_weight(value: Any) -> tuple[np.ndarray | None, str]:
    """(`value` as a numpy array, "") if it is a real floating-point array, else (None, what is wrong).

    Arrays of other frameworks (anything with `__array__`: a CPU torch tensor, a jax array) are read
    as numpy arrays. Complex, integer and boolean arrays are refused rather than cast: a cast would
    drop an imaginary part or turn a mask or an index table into weights without a word.
    """
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
    elif hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError) as error:
            return None, f"a {_kind(value)} that does not convert to a numpy array ({error})"
    else:
        return None, f"not an array but {_kind(value)}"
    kind = array.dtype.kind
    if kind == "f":
        return array, ""
    why = {"c": "complex (its imaginary part would be lost)", "i": "integer (not cast to floating point)",
           "u": "integer (not cast to floating point)", "b": "boolean (not cast to floating point)"}
    return None, f"dtype {array.dtype}: expected real floating point, got {why.get(kind, 'no number type')}"


def check_mapping(expected: Mapping[str, tuple[int, ...]], mapping: Mapping[str, Any],
                  model_name: str = "model", *, what: str = "weights") -> dict[str, np.ndarray]:
    """Check the whole of `mapping` against `expected` (canonical name -> shape): names, shapes and
    dtypes of every tensor, before anything is loaded.

    Returns `mapping` as numpy arrays in `expected`'s order; raises one WeightMismatchError, a summary
    line then one line per bad tensor, naming every missing, unexpected, mis-shaped and mis-typed tensor.
    `what` names the mapping in messages (a Trainer's state is checked here too).
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"mapping must be a mapping of canonical weight names to numpy arrays (zoo.weights.load(path) "
            f"reads a weight file), got {_kind(mapping)}" if what == "weights" else
            f"{what} must be a mapping of names to numpy arrays, got {_kind(mapping)}"
        )
    problems: dict[str, list[str]] = {"missing": [], "unexpected": [], "mis-shaped": [], "wrong type": []}
    arrays: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        if name not in mapping:
            problems["missing"].append(f"{name} (expected shape {tuple(shape)})")
            continue
        array, wrong = as_weight(mapping[name])
        if array is None:
            problems["wrong type"].append(f"{name}: {wrong}")
        elif tuple(array.shape) != tuple(shape):
            problems["mis-shaped"].append(f"{name}: expected {tuple(shape)}, got {tuple(array.shape)}")
        else:
            arrays[name] = array
    for name in mapping:
        if not isinstance(name, str):
            problems["unexpected"].append(f"{name!r} (names are strings)")
        elif name not in expected:
            problems["unexpected"].append(name)
    count = sum(map(len, problems.values()))
    if not count:
        return arrays
    summary = ", ".join(f"{len(items)} {title}" for title, items in problems.items() if items)
    lines = [f"{what} do not fit {model_name} ({len(expected)} tensors), nothing was loaded: {summary}"]
    for title, items in problems.items():
        lines += [f"  {title}: {item}" for item in items]
    raise WeightMismatchError("\n".join(lines))


def _check_path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {_kind(path)}")
    return os.fspath(path)


def save(path: str | os.PathLike, mapping: Mapping[str, np.ndarray]) -> None:
    """Write `mapping` (names -> real floating-point arrays) to `path` as safetensors (no pickle)."""
    from safetensors.numpy import save_file

    path = _check_path(path)
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a mapping of weight names to numpy arrays, got {_kind(mapping)}")
    tensors, problems = {}, []
    for name, value in mapping.items():
        array, wrong = as_weight(value)
        if not isinstance(name, str):
            problems.append(f"  {name!r}: weight names must be strings")
        elif array is None:
            problems.append(f"  {name}: {wrong}")
        else:
            tensors[name] = np.ascontiguousarray(array)
    if problems:
        raise WeightMismatchError("\n".join([f"cannot save {len(problems)} of {len(mapping)} weights to {path!r}:",
                                             *problems]))
    if os.path.isdir(path):
        raise WeightFileError(f"cannot save weights to {path!r}: it is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise WeightFileError(f"cannot save weights to {path!r}: folder {folder!r} does not exist")
    save_file(tensors, path)


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors weight file; a missing, truncated or malformed file, or a folder, raises
    WeightFileError naming the path."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = _check_path(path)
    if os.path.isdir(path):
        raise WeightFileError(f"weight file {path!r} is a folder, not a safetensors file")
    if not os.path.isfile(path):
        raise WeightFileError(f"weight file {path!r} does not exist")
    try:
        return dict(load_file(path))
    except (SafetensorError, ValueError, TypeError, OSError) as error:
        size = os.path.getsize(path)
        raise WeightFileError(
            f"{path!r} ({size} bytes) is not a readable safetensors weight file: {error}"
        ) from None


# ---------------------------------------------------------------- a Trainer's optimiser state

MOMENTUM = "momentum."  # Trainer.state(): MOMENTUM + canonical name -> that tensor's momentum buffer


def check_state(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any],
                model_name: str = "model") -> dict[str, np.ndarray]:
    """`check_mapping` for a Trainer's `load_state`: the whole state checked before any of it is applied."""
    return check_mapping(expected, state, model_name, what="optimizer state tensors")
