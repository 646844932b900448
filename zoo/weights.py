"""Canonical weights: a flat mapping `name -> numpy array` in PyTorch names and layouts, stored as safetensors.

Names are the `state_dict` keys of the `zoo_torch` model (torchvision's keys where torchvision has
the model); layouts are PyTorch's: conv OIHW, dense (out, in), depthwise (C, 1, kH, kW).
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from .errors import WeightFileError, WeightMismatchError


def save(path: str | os.PathLike, mapping: Mapping[str, np.ndarray]) -> None:
    """Write `mapping` to `path` as safetensors (no pickle)."""
    from safetensors.numpy import save_file

    tensors = {}
    for name, value in mapping.items():
        if not isinstance(name, str):
            raise TypeError(f"weight names must be strings, got {name!r}")
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"weight {name!r} is not numeric (dtype object)")
        tensors[name] = np.ascontiguousarray(array)
    save_file(tensors, os.fspath(path))


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors weight file; a missing, truncated or malformed file raises WeightFileError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightFileError(f"weight file {path!r} does not exist")
    try:
        return dict(load_file(path))
    except (SafetensorError, ValueError, OSError) as error:
        size = os.path.getsize(path)
        raise WeightFileError(
            f"{path!r} ({size} bytes) is not a readable safetensors weight file: {error}"
        ) from None


def check_mapping(expected: Mapping[str, tuple[int, ...]], mapping: Mapping[str, np.ndarray],
                  model_name: str = "model") -> None:
    """Raise one WeightMismatchError naming every missing, unexpected and mis-shaped tensor."""
    missing = [name for name in expected if name not in mapping]
    unexpected = [name for name in mapping if name not in expected]
    misshaped = [
        f"{name}: expected {tuple(expected[name])}, got {tuple(np.shape(mapping[name]))}"
        for name in expected
        if name in mapping and tuple(np.shape(mapping[name])) != tuple(expected[name])
    ]
    if not (missing or unexpected or misshaped):
        return
    lines = [f"weights do not fit {model_name}:"]
    for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if items:
            lines.append(f"  {len(items)} {title}: " + "; ".join(items))
    raise WeightMismatchError("\n".join(lines))
