"""Readers of the formats datasets come in: IDX (MNIST, Fashion-MNIST), CIFAR's python pickles (read
from the tarball without extracting it), a user's `.npz`, and folders of images (one subfolder per class).

Every reader returns raw arrays, NCHW as stored; nothing here resizes (except image folders, whose
images differ in size and are brought to one size as they are decoded) or normalises.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import DatasetError

IDX_LABELS, IDX_IMAGES = 0x0801, 0x0803  # unsigned bytes, 1 and 3 dimensions
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


# --- IDX ------------------------------------------------------------------------------------------

def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """The array of an IDX file (gzip-compressed when its name ends in .gz) whose magic number is
    `magic` (IDX_LABELS or IDX_IMAGES): uint8, shaped as its header says."""
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: not a readable {'gzip' if path.endswith('.gz') else 'IDX'} file ({error})") from None
    return parse_idx(data, magic, path)


def parse_idx(data: bytes, magic: int, name: str = "IDX data") -> np.ndarray:
    ndim = magic & 0xFF
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(f"{name}: not an IDX file (it starts with {data[:4].hex() or 'nothing'}, "
                           f"expected magic number {magic:08x})")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        what = {IDX_LABELS: "labels", IDX_IMAGES: "images"}.get(magic, "data")
        raise DatasetError(f"{name}: IDX magic number {found:08x}, expected {magic:08x} (unsigned-byte {what}, "
                           f"{ndim}-d)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{name}: IDX header cut short: {len(data)} bytes, a {ndim}-d header needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != size:
        raise DatasetError(f"{name}: IDX header says {'x'.join(map(str, shape))} = {size} bytes of data, "
                           f"the file holds {len(data) - header}")
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(shape).copy()


# --- CIFAR ----------------------------------------------------------------------------------------

def _latin1_encode(text, encoding="latin1"):
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1"); nothing else is let through.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise DatasetError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}) in a pickle")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct
    return {
        # CIFAR's batches were pickled by NumPy 1 (numpy.core); NumPy 2 writes numpy._core.
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only: a pickle naming any other global (a function that
    would run on load, such as os.system) is refused before anything of it is called."""

    source = "pickle"

    def find_class(self, module: str, name: str):
        allowed = _allowed_globals().get((module, name))
        if allowed is None:
            raise DatasetError(f"{self.source}: refusing to unpickle {module}.{name}: only NumPy arrays and plain "
                               "data (dicts, lists, bytes, numbers) are read")
        return allowed


def unpickle(stream, source: str = "pickle"):
    unpickler = RestrictedUnpickler(stream, encoding="bytes")
    unpickler.source = source
    try:
        return unpickler.load()
    except DatasetError:
        raise
    except Exception as error:  # a corrupt pickle raises about anything (UnpicklingError, EOFError, ...)
        raise DatasetError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from None


def _key(entry: dict, key: str):
    for candidate in (key.encode(), key):
        if candidate in entry:
            return entry[candidate]
    raise DatasetError(f"has no {key!r} entry (it holds {sorted(map(repr, entry))})")


def read_cifar(path: str | os.PathLike, batches: tuple[str, ...], test: str = "test_batch",
               meta: str = "batches.meta") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, class names) from CIFAR-10's python tarball, read in place:
    images uint8 (N, 3, 32, 32), labels int64."""
    path = os.fspath(path)
    wanted = {*batches, test, meta}
    entries: dict[str, dict] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:  # in archive order: a gzip stream reads forward only, cheaply
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in entries:
                    stream = archive.extractfile(member)
                    entry = unpickle(stream, f"{path}:{member.name}")
                    if not isinstance(entry, dict):
                        raise DatasetError(f"{path}:{member.name}: expected a pickled dict, got {type(entry).__name__}")
                    entries[base] = entry
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: not a readable CIFAR tarball ({error})") from None
    absent = [name for name in (*batches, test, meta) if name not in entries]
    if absent:
        raise DatasetError(f"{path}: the tarball lacks {', '.join(absent)}")

    def images_and_labels(name):
        try:
            x, y = _key(entries[name], "data"), _key(entries[name], "labels")
        except DatasetError as error:
            raise DatasetError(f"{path}:{name} {error}") from None
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise DatasetError(f"{path}:{name}: 'data' must be uint8 (N, 3072), got "
                               f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{path}:{name}: 'labels' must be {len(x)} integers, got {y.dtype} {y.shape}")
        return x.reshape(-1, 3, 32, 32), y.astype(np.int64)

    train = [images_and_labels(name) for name in batches]
    x_test, y_test = images_and_labels(test)
    try:
        names = tuple(name.decode() if isinstance(name, bytes) else str(name)
                      for name in _key(entries[meta], "label_names"))
    except DatasetError as error:
        raise DatasetError(f"{path}:{meta} {error}") from None
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
            np.ascontiguousarray(x_test), y_test, names)


# --- .npz -----------------------------------------------------------------------------------------

def read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
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


def to_nchw(x: np.ndarray, name: str) -> np.ndarray:
    """A user's images as float32 NCHW, from (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3}."""
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
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"{name}: images contain NaN or infinite values")
    return x


# --- image folders --------------------------------------------------------------------------------

def _visible_dirs(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))


def list_image_folder(root: str | os.PathLike) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """(class names, image paths, labels) of a folder with one subfolder per class, read as the
    usual `ImageFolder` reads it: classes are the sorted subfolder names, labels their indices, images every
    .jpg/.jpeg/.png file (any case) below a class folder; hidden files and folders are skipped."""
    root = Path(root)
    try:
        classes = _visible_dirs(root)
    except OSError as error:
        raise DatasetError(f"cannot read the image folder {str(root)!r}: {error}") from None
    if not classes:
        raise DatasetError(f"image folder {str(root)!r} has no class subfolders: it needs one subfolder of "
                           f"{', '.join(IMAGE_EXTENSIONS)} images per class")
    paths, labels, empty = [], [], []
    for label, name in enumerate(classes):
        found = []
        for folder, dirs, files in os.walk(root / name, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [os.path.join(folder, f) for f in sorted(files)
                      if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
        if not found:
            empty.append(name)
        paths += found
        labels += [label] * len(found)
    if empty:
        raise DatasetError(f"image folder {str(root)!r}: class folder(s) {', '.join(map(repr, empty))} hold no "
                           f"{', '.join(IMAGE_EXTENSIONS)} images")
    return tuple(classes), paths, np.asarray(labels, np.int64)


def split_folders(root: str | os.PathLike) -> tuple[Path, Path] | None:
    """(train, test) when `root` holds train/ and val/ (or test/) folders, else None."""
    root = Path(root)
    if not (root / "train").is_dir():
        return None
    for name in ("val", "test"):
        if (root / name).is_dir():
            return root / "train", root / name
    return None


def decode_images(paths: list[str], image_size: int, channels: int, progress: bool = False) -> np.ndarray:
    """The images at `paths` as uint8 (N, channels, image_size, image_size): decoded by Pillow, converted to
    RGB (or L for one channel), each resized once with Pillow's bilinear filter."""
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("reading an image folder needs Pillow: pip install pillow "
                           "(or the project's [compare] extra)") from None
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(paths), 1 if mode == "L" else 3, image_size, image_size), np.uint8)

    def decode(index: int) -> None:
        path = paths[index]
        try:
            with Image.open(path) as image:
                image = image.convert(mode).resize((image_size, image_size), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise DatasetError(f"cannot read image {path!r}: {error}") from None
        out[index] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    bar = None
    if progress and len(paths) > 1000:
        import sys

        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                bar = tqdm(total=len(paths), desc="decoding images", unit="img", file=sys.stderr, leave=False)
            except ImportError:
                pass
    # Pillow decodes and resizes without the GIL, so threads share the work.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        try:
            for _ in pool.map(decode, range(len(paths))):
                if bar is not None:
                    bar.update(1)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # one bad file: stop, do not decode the rest first
            raise
        finally:
            if bar is not None:
                bar.close()
    return out
