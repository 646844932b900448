"""Training checkpoints of `compare train`: one safetensors file per framework, rewritten after every epoch.

A checkpoint holds the model's canonical weights (BatchNorm statistics included) under `model.`, the
trainer's optimiser state (`Trainer.state()`, the framework's own names and layouts) under `optimizer.`,
and in the file's metadata the finished epoch count, the run's settings and the curves so far. Dropout
draws from a seed fixed per epoch (`epoch_seed`), so a run resumed at an epoch boundary takes the same
steps as one that was never stopped. Files are written whole (a temporary file renamed into place): a run
killed while writing leaves the previous epoch's checkpoint.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from zoo.errors import WeightFileError

from .files import atomic_write_bytes, json_safe

MODEL, OPTIMIZER = "model.", "optimizer."
FORMAT = "zoo-train-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    epoch: int                        # epochs finished
    weights: dict[str, np.ndarray]    # canonical
    optimizer: dict[str, np.ndarray]  # Trainer.state()
    settings: dict[str, Any]
    record: dict[str, Any]            # the framework's curves over the finished epochs


def epoch_seed(seed: int, epoch: int) -> int:
    """The dropout seed of `epoch` (0-based) in a run seeded `seed`: every epoch starts its own stream."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def write_tensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                  metadata: Mapping[str, str] | None = None) -> None:
    """`tensors` as a safetensors file, written whole (a temporary file renamed into place)."""
    from safetensors.numpy import save

    # np.asarray, not ascontiguousarray: that makes a 0-d array 1-d.
    arrays = {name: np.asarray(array, order="C") for name, array in tensors.items()}
    atomic_write_bytes(path, save(arrays, metadata=dict(metadata) if metadata else None))


def save(path: str | os.PathLike, *, epoch: int, weights: Mapping[str, np.ndarray],
         optimizer: Mapping[str, np.ndarray], settings: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    tensors = {MODEL + name: array for name, array in weights.items()}
    tensors.update({OPTIMIZER + name: array for name, array in optimizer.items()})
    metadata = {"format": FORMAT, "epoch": str(epoch), "settings": json.dumps(json_safe(settings)),
                "record": json.dumps(json_safe(record))}
    write_tensors(path, tensors, metadata)


def peek(path: str | os.PathLike) -> tuple[int, dict[str, Any]]:
    """(epochs finished, settings) of a checkpoint, without reading its tensors."""
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
        _check_format(path, metadata)
        return int(metadata["epoch"]), json.loads(metadata["settings"])
    except WeightFileError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise WeightFileError(f"{path!r} is not a readable training checkpoint: {error}") from None


def _check_format(path: str, metadata: Mapping[str, str]) -> None:
    if metadata.get("format") != FORMAT:
        raise WeightFileError(f"{path!r} is not a training checkpoint of this tool "
                              f"(format {metadata.get('format')!r}, expected {FORMAT!r})")


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint; anything that is not one of ours raises WeightFileError naming the file."""
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            _check_format(path, metadata)
            tensors = {name: file.get_tensor(name) for name in file.keys()}
        epoch, settings, record = int(metadata["epoch"]), json.loads(metadata["settings"]), json.loads(metadata["record"])
    except WeightFileError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise WeightFileError(f"{path!r} is not a readable training checkpoint: {error}") from None
    weights = {name[len(MODEL):]: array for name, array in tensors.items() if name.startswith(MODEL)}
    optimizer = {name[len(OPTIMIZER):]: array for name, array in tensors.items() if name.startswith(OPTIMIZER)}
    return Checkpoint(epoch, weights, optimizer, settings, record)
