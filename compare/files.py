"""Output files: folders and files checked writable before any work, and written atomically, JSON kept
valid (no NaN tokens) and CSV with known columns first."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from .options import UsageError


def writable_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the folder `path` if needed and check that files can be written there, before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a file; expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"{option}: cannot write to output folder {str(path)!r}: "
                         f"{error.strerror or error}") from None
    return path


def writable_file(path: str | os.PathLike, option: str = "--json") -> Path:
    """Check, before any work, that the file `path` can be written: not a folder, in an existing,
    writable folder (a missing folder is more often a typo than a wish)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a folder; expected a file name")
    folder = path.parent
    if not folder.exists():
        raise UsageError(f"{option}: folder {str(folder)!r} of {str(path)!r} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{option}: {str(folder)!r} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"{option}: cannot write to folder {str(folder)!r}: {error.strerror or error}") from None
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_safe(value: Any) -> Any:
    """`value` as plain JSON data: numpy arrays and scalars as lists and numbers, tuples as lists, and
    every NaN or infinity as null. A dict entry that held one gets a `<key>_note` beside it saying
    what was there (unless the producer wrote its own note), so a reader learns why it is null."""
    return _safe(value)[0]


def _safe(value: Any) -> tuple[Any, list[tuple[tuple[int, ...], float]]]:
    """The converted value, and the non-finite numbers it held that no dict has noted yet (index paths)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None, [((), value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], bad = _safe(item)
            note_key = f"{key}_note"
            if bad and isinstance(key, str) and note_key not in value:
                (path, first), more = bad[0], len(bad) - 1
                where = "".join(f"[{index}]" for index in path)
                out[note_key] = (f"{first}{' at ' + where if where else ''}"
                                 f"{f' and {more} more' if more else ''} written as null")
        return out, []
    if isinstance(value, (list, tuple)):
        out, bad = [], []
        for index, item in enumerate(value):
            converted, inner = _safe(item)
            out.append(converted)
            bad += [((index, *path), number) for path, number in inner]
        return out, bad
    return value, []


def write_json(path: str | os.PathLike, data) -> None:
    """Valid JSON, atomically: non-finite numbers become null (see `json_safe`); anything else
    that JSON cannot hold is a TypeError, never a NaN token that strict readers reject."""
    text = json.dumps(json_safe(data), indent=1, allow_nan=False, default=_json_default)
    atomic_write_text(path, text + "\n")


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_csv(path: str | os.PathLike, records: Sequence[dict], columns: Sequence[str]) -> None:
    """Records to CSV: the given columns first, then any others in first-seen order."""
    extra = [key for record in records for key in record if key not in columns]
    header = list(columns) + list(dict.fromkeys(extra))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in record.items()})
    atomic_write_text(path, buffer.getvalue())
