"""compare.data: the named sets' formats and downloads (served from 127.0.0.1, never the internet), image
folders, the Dataset's batches, background batches, and the old behaviours of digits and .npz files."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import struct
import tarfile
import threading
import time

import numpy as np
import pytest

from compare.data import (NAMED, DatasetError, DownloadError, batches_in_background, check_source, data_dir,
                          load_dataset, resize, time_pipeline)
from compare.data import sources
from compare.data.formats import IDX_IMAGES, IDX_LABELS, parse_idx, read_idx, unpickle

pytestmark = pytest.mark.core

IDX_NAMES = sources.IDX_FILES


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    # Whatever a test forgets to pass, nothing leaves this machine: the mirror is a closed loopback port
    # and the cache a temporary folder.
    monkeypatch.setenv("ZOO_DATA_MIRROR", "http://127.0.0.1:9")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "env-cache"))


# --- files in the datasets' own formats, made here --------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    magic = IDX_LABELS if array.ndim == 1 else IDX_IMAGES
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def idx_files(n_train=20, n_test=10, seed=0) -> dict[str, bytes]:
    """The four gzip'd IDX files of a tiny MNIST-like set: every class in both splits."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
              rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10]
    return {name: gzip.compress(idx_bytes(a.astype(np.uint8)), mtime=0) for name, a in zip(IDX_NAMES, arrays)}


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 wrote its str (BINSTRING), as in CIFAR's own batches."""

    def save_bytes(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def py2_pickle(obj) -> bytes:
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


CIFAR_NAMES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar_tarball(per_batch=4, n_test=6, seed=0) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A CIFAR-10 python tarball: five training batches and a test batch as CIFAR's (Python-2 style
    pickles), batches.meta pickled by Python 3 at protocol 2 (bytes through _codecs.encode)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (5 * per_batch + n_test, 3072)).astype(np.uint8)
    y = np.arange(len(x)) % 10
    members = {f"data_batch_{i + 1}": py2_pickle({b"data": x[i * per_batch:(i + 1) * per_batch],
                                                 b"labels": [int(v) for v in y[i * per_batch:(i + 1) * per_batch]]})
               for i in range(5)}
    members["test_batch"] = py2_pickle({b"data": x[5 * per_batch:], b"labels": [int(v) for v in y[5 * per_batch:]]})
    members["batches.meta"] = pickle.dumps({b"label_names": [n.encode() for n in CIFAR_NAMES]}, protocol=2)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue(), x.reshape(-1, 3, 32, 32), y


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def use_files(monkeypatch, set_name: str, files: dict[str, bytes]) -> None:
    """Make `set_name`'s published checksums those of `files`."""
    named = sources.SOURCES[set_name]
    monkeypatch.setitem(sources.SOURCES, set_name,
                        dataclasses.replace(named, files=tuple((name, md5(files[name])) for name, _ in named.files)))


# --- a loopback HTTP server --------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        name = self.path.rsplit("/", 1)[-1]
        server.requests.append(self.path)
        data = server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) + (1000 if name in server.truncate else 0)))
        self.end_headers()
        self.wfile.write(data)
        if name in server.truncate:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 serving `server.files` ({name: bytes}) from any folder; names in
    `server.truncate` promise 1000 bytes more than they send."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.truncate, httpd.requests = {}, set(), []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/fashion-mnist"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/data"


def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


# --- downloads ---------------------------------------------------------------------------------------

def test_a_download_lands_in_the_cache_loads_and_is_then_read_offline(tmp_path, monkeypatch, server, capsys):
    files = idx_files()
    use_files(monkeypatch, "fashion-mnist", files)
    server.files.update(files)
    cache = tmp_path / "cache"
    data = load_dataset("fashion-mnist", image_size=28, in_channels=1, data_dir=cache, mirror=server.url + "/")
    assert f"downloaded {server.url}/{IDX_NAMES[0]} ({len(files[IDX_NAMES[0]]):,} bytes)" in capsys.readouterr().err
    assert leftovers(cache / "fashion-mnist") == sorted(IDX_NAMES)
    assert sorted(server.requests) == sorted(f"/fashion-mnist/{name}" for name in IDX_NAMES)  # the mirror only
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_train.dtype == np.uint8 and data.x_test.shape == (10, 1, 28, 28)
    assert data.y_train.dtype == np.int64 and list(data.y_test) == [i % 10 for i in range(10)]
    assert data.classes == sources.SOURCES["fashion-mnist"].classes and data.num_classes == 10
    assert data.scale == 1 / 255 and data.mean is None
    expected = np.frombuffer(gzip.decompress(files[IDX_NAMES[0]])[16:], np.uint8).reshape(20, 1, 28, 28)
    np.testing.assert_array_equal(data.x_train, expected)
    assert data.source["split"] == "official"
    assert [f["md5"] for f in data.source["files"]] == [md5(files[n]) for n in IDX_NAMES]
    assert "no resize (stored at 28x28)" in data.source["preprocessing"] and "[0, 1]" in data.source["preprocessing"]

    server.shutdown()
    server.server_close()
    again = load_dataset("fashion-mnist", image_size=28, in_channels=1, data_dir=cache, mirror=server.url, progress=False)
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_a_wrong_checksum_names_both_md5s_and_leaves_nothing(tmp_path, monkeypatch, server):
    files = idx_files()
    use_files(monkeypatch, "fashion-mnist", files)
    served = dict(files, **{IDX_NAMES[0]: b"not the published file"})
    server.files.update(served)
    with pytest.raises(DownloadError) as caught:
        load_dataset("fashion-mnist", image_size=28, in_channels=1, data_dir=tmp_path, mirror=server.url, progress=False)
    message = str(caught.value)
    assert IDX_NAMES[0] in message and f"{server.url}/{IDX_NAMES[0]}" in message
    assert f"MD5 {md5(served[IDX_NAMES[0]])}, expected {md5(files[IDX_NAMES[0]])}" in message
    assert not (tmp_path / "fashion-mnist").exists()  # no file, no .part file, no empty folder


def test_a_truncated_body_fails_and_leaves_nothing(tmp_path, monkeypatch, server):
    files = idx_files()
    use_files(monkeypatch, "fashion-mnist", files)
    server.files.update(files)
    server.truncate.add(IDX_NAMES[0])
    with pytest.raises(DownloadError, match=rf"{IDX_NAMES[0]}.*closed after {len(files[IDX_NAMES[0]])} of "
                                            rf"{len(files[IDX_NAMES[0]]) + 1000} bytes"):
        load_dataset("fashion-mnist", image_size=28, in_channels=1, data_dir=tmp_path, mirror=server.url, progress=False)
    assert leftovers(tmp_path / "fashion-mnist") == []


def test_a_missing_file_names_the_url_and_its_404(tmp_path, monkeypatch, server):
    files = idx_files()
    use_files(monkeypatch, "fashion-mnist", files)
    server.files.update({name: data for name, data in files.items() if name != IDX_NAMES[2]})
    with pytest.raises(DownloadError, match=rf"could not download {IDX_NAMES[2]} for fashion-mnist: "
                                            rf"{server.url}/{IDX_NAMES[2]}: HTTP 404"):
        load_dataset("fashion-mnist", image_size=28, in_channels=1, data_dir=tmp_path, mirror=server.url, progress=False)
    assert leftovers(tmp_path / "fashion-mnist") == sorted(IDX_NAMES[:2])  # the good ones stay, checked


def test_without_a_network_one_line_says_which_files_to_put_where(tmp_path, monkeypatch):
    files = idx_files()
    use_files(monkeypatch, "mnist", files)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / IDX_NAMES[0]).write_bytes(files[IDX_NAMES[0]])  # already there: not asked for
    url = closed_port_url()
    with pytest.raises(DownloadError) as caught:
        load_dataset("mnist", image_size=28, in_channels=1, data_dir=tmp_path, mirror=url, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message == (f"no network to download mnist: put {', '.join(IDX_NAMES[1:])} (from {url}/) "
                       f"into {os.path.join(str(folder), '')}")
    assert leftovers(folder) == [IDX_NAMES[0]]


def test_the_official_hosts_are_tried_in_turn_and_all_named(tmp_path, monkeypatch, server):
    files = idx_files()
    gone = closed_port_url() + "/"
    named = sources.SOURCES["mnist"]
    monkeypatch.setitem(sources.SOURCES, "mnist", dataclasses.replace(
        named, files=tuple((n, md5(files[n])) for n in IDX_NAMES), hosts=(gone, server.url + "/")))
    monkeypatch.delenv("ZOO_DATA_MIRROR")
    server.files.update(files)
    data = load_dataset("mnist", image_size=14, in_channels=1, data_dir=tmp_path, progress=False)
    assert len(data.y_train) == 20 and data.classes == tuple("0123456789")
    server.files.clear()
    for name in IDX_NAMES:
        (tmp_path / "mnist" / name).write_bytes(b"corrupt")  # re-fetched, since its MD5 is wrong: now 404 and gone
    with pytest.raises(DownloadError, match=rf"{gone}{IDX_NAMES[0]}: .*; {server.url}/{IDX_NAMES[0]}: HTTP 404"):
        load_dataset("mnist", image_size=14, in_channels=1, data_dir=tmp_path, progress=False)


def test_the_data_folder_comes_from_the_option_the_environment_or_the_cache(monkeypatch, tmp_path):
    assert data_dir(tmp_path / "x") == tmp_path / "x"
    assert data_dir() == tmp_path / "env-cache"
    monkeypatch.delenv("ZOO_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "zoo" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_dir() == data_dir().home() / ".cache" / "zoo" / "datasets"


def test_published_checksums_and_hosts_are_torchvisions():
    fashion, mnist, cifar = (sources.SOURCES[n] for n in ("fashion-mnist", "mnist", "cifar10"))
    assert dict(mnist.files)["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert dict(fashion.files)["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"
    assert cifar.files == (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),)
    assert mnist.hosts[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert set(NAMED) == {*sources.SOURCES, "digits"}


# --- formats -----------------------------------------------------------------------------------------

def test_idx_files_are_parsed_and_bad_ones_refused(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images), IDX_IMAGES), images)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.array([3, 1, 4], np.uint8))))
    assert read_idx(path, IDX_LABELS).tolist() == [3, 1, 4]
    with pytest.raises(DatasetError, match="magic number 00000801, expected 00000803"):
        read_idx(path, IDX_IMAGES)
    with pytest.raises(DatasetError, match=r"header says 2x3x4 = 24 bytes of data, the file holds 23"):
        parse_idx(idx_bytes(images)[:-1], IDX_IMAGES)
    with pytest.raises(DatasetError, match="header cut short"):
        parse_idx(idx_bytes(images)[:9], IDX_IMAGES)
    with pytest.raises(DatasetError, match="not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x00", IDX_IMAGES)
    (tmp_path / "bad.gz").write_bytes(b"plain bytes")
    with pytest.raises(DatasetError, match="bad.gz: not a readable gzip file"):
        read_idx(tmp_path / "bad.gz", IDX_IMAGES)


def test_cifar_is_read_from_its_tarball_in_the_cache_without_a_network(tmp_path, monkeypatch):
    tarball, x, y = cifar_tarball()
    use_files(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": tarball})
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(tarball)
    data = load_dataset("cifar10", image_size=32, in_channels=3, data_dir=tmp_path, mirror=closed_port_url())
    np.testing.assert_array_equal(data.x_train, x[:20])
    np.testing.assert_array_equal(data.x_test, x[20:])
    np.testing.assert_array_equal(data.y_test, y[20:])
    assert data.classes == CIFAR_NAMES and data.x_train.dtype == np.uint8
    np.testing.assert_array_equal(data.batch("test", [1]), x[21:22] / np.float32(255))


class _Evil:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_the_unpickler_refuses_anything_but_arrays_and_plain_data(tmp_path):
    with pytest.raises(DatasetError, match=r"refusing to unpickle (posix|nt|os)\.system"):
        unpickle(io.BytesIO(pickle.dumps({b"data": _Evil()}, protocol=2)))
    with pytest.raises(DatasetError, match=r"refusing to unpickle builtins\.eval"):
        unpickle(io.BytesIO(b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R."))
    with pytest.raises(DatasetError, match=r"refusing _codecs.encode"):
        unpickle(io.BytesIO(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R."))
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(unpickle(io.BytesIO(pickle.dumps(array, protocol=2))), array)
    np.testing.assert_array_equal(unpickle(io.BytesIO(py2_pickle({b"data": array}))) [b"data"], array)
    with pytest.raises(DatasetError, match="not a readable pickle"):
        unpickle(io.BytesIO(b"\x80\x02}q"))


# --- image folders -----------------------------------------------------------------------------------

def write_image(path, size, colour, fmt=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


def test_an_image_folder_is_classes_of_images_split_by_us(tmp_path):
    root = tmp_path / "flowers"
    for i in range(5):
        write_image(root / "tulip" / f"{i}.png", (10 + i, 7), (255, 0, 0))
        write_image(root / "daisy" / "sub" / f"{i}.JPG", (12, 12 + i), (0, 0, 255), "JPEG")
    (root / "daisy" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    check_source(root)
    data = load_dataset(root, image_size=8, in_channels=3, seed=1)
    assert data.name == "flowers" and data.classes == ("daisy", "tulip") and data.num_classes == 2
    assert len(data.y_train) == 8 and len(data.y_test) == 2 and set(data.y_test) == {0, 1}
    assert data.x_train.shape == (8, 3, 8, 8) and data.x_train.dtype == np.uint8
    tulips = data.x_train[data.y_train == 1]
    assert (tulips[:, 0] == 255).all() and (tulips[:, 1:] == 0).all()
    assert data.source["split"] == "80/20 stratified, seed 1" and "resized to 8x8" in data.source["preprocessing"]
    gray = load_dataset(root, image_size=8, in_channels=1, seed=1)
    assert gray.x_train.shape == (8, 1, 8, 8)
    assert abs(int(gray.x_train[gray.y_train == 1].mean()) - 76) <= 1  # Pillow's L of pure red: 299/1000 x 255


def test_an_image_folder_with_train_and_val_keeps_its_split(tmp_path):
    root = tmp_path / "set"
    for split, count in (("train", 3), ("val", 2)):
        for label, colour in enumerate(((0, 0, 0), (255, 255, 255))):
            for i in range(count):
                write_image(root / split / f"c{label}" / f"{i}.jpeg", (9, 9), colour, "JPEG")
    data = load_dataset(root, image_size=4, in_channels=3, normalize="dataset")
    assert (len(data.y_train), len(data.y_test)) == (6, 4) and data.classes == ("c0", "c1")
    assert data.source["split"].startswith("official")
    assert data.mean == pytest.approx((0.5, 0.5, 0.5), abs=0.01) and data.std == pytest.approx((0.5,) * 3, abs=0.01)
    limited = load_dataset(root, image_size=4, in_channels=3, limit=3)
    assert (len(limited.y_train), len(limited.y_test)) == (3, 3)

    write_image(root / "val" / "c2" / "0.png", (9, 9), (1, 2, 3))
    with pytest.raises(DatasetError, match="train/ and val/ must hold the same class folders; only in train/: none; "
                                           "only in val/: c2"):
        load_dataset(root, image_size=4, in_channels=3)


@pytest.mark.parametrize("make, message", [
    (lambda root: root.mkdir(), "has no class subfolders"),
    (lambda root: (root / "a").mkdir(parents=True) or write_image(root / "b" / "x.png", (4, 4), (0, 0, 0)),
     "class folder.*'a' hold no .jpg, .jpeg, .png images"),
    (lambda root: [write_image(root / c / f"{i}.png", (4, 4), (0, 0, 0)) for c in "ab" for i in range(3)]
     and (root / "b" / "broken.png").write_bytes(b"\x89PNG not really"), r"cannot read image '.*b/broken.png'"),
    (lambda root: write_image(root / "a" / "x.png", (4, 4), (0, 0, 0)) or write_image(root / "a" / "y.png", (4, 4), (0, 0, 0)),
     "need at least 2 classes"),
])
def test_bad_image_folders_are_clear_errors(tmp_path, make, message):
    make(tmp_path / "imgs")
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path / "imgs", image_size=4, in_channels=3)


# --- the Dataset's batches ---------------------------------------------------------------------------

def npz_set(tmp_path, x, y, name="data.npz"):
    path = tmp_path / name
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def tiny_named(tmp_path, monkeypatch):
    """Fashion-MNIST made of idx_files(), already in the cache."""
    files = idx_files(n_train=40, n_test=20)
    use_files(monkeypatch, "fashion-mnist", files)
    (tmp_path / "fashion-mnist").mkdir()
    for name, data in files.items():
        (tmp_path / "fashion-mnist" / name).write_bytes(data)
    return lambda **kw: load_dataset("fashion-mnist", data_dir=tmp_path, **{"image_size": 28, "in_channels": 1, **kw})


def test_batches_are_scaled_resized_float32_and_deterministic(tiny_named):
    data = tiny_named(image_size=56, in_channels=3)
    batch = data.batch("train", [3, 0, 7])
    assert batch.shape == (3, 3, 56, 56) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, data.batch("train", np.array([3, 0, 7])))
    np.testing.assert_array_equal(batch[:, 0], batch[:, 2])  # gray repeated
    np.testing.assert_array_equal(batch[1:2], data.batch("train", [0]))
    same_size = tiny_named().batch("test", slice(0, 4))
    np.testing.assert_array_equal(same_size, tiny_named().x_test[:4] / np.float32(255))
    assert same_size.min() >= 0 and same_size.max() <= 1
    assert data.batch("test", []).shape == (0, 3, 56, 56)
    with pytest.raises(DatasetError, match="split must be one of train, test"):
        data.batch("val", [0])
    assert data.describe() == "fashion-mnist: 40 train / 20 test images, 3x56x56 (stored 1x28x28), 10 classes"


def test_a_constant_image_stays_constant_and_extremes_map_to_0_and_1(tmp_path):
    x = np.zeros((4, 6, 6, 3), np.uint8)  # NHWC
    x[0], x[1], x[2, :, :3], x[3] = 128, 255, 255, 7
    data = load_dataset(npz_set(tmp_path, x.astype(np.float32) / 255, np.array([0, 1, 0, 1])), image_size=15,
                        in_channels=3, test_fraction=0.5, seed=0)
    everything = np.concatenate([data.batch("train", range(2)), data.batch("test", range(2))])
    constants = sorted(float(b.flat[0]) for b in everything if np.ptp(b) == 0)
    assert constants == [np.float32(7 / 255), np.float32(128 / 255), 1.0]
    half = next(b for b in everything if np.ptp(b) > 0)
    assert half.min() == 0 and half.max() == 1 and half[..., :6].min() == 1 and half[..., -6:].max() == 0


def test_normalisation_uses_the_training_split(tiny_named):
    data = tiny_named(normalize="dataset")
    train = data.batch("train", range(len(data.y_train)))
    assert abs(train.mean()) < 1e-5 and abs(train.std() - 1) < 1e-5
    raw = data.x_train / 255
    assert data.mean == pytest.approx((raw.mean(),)) and data.std == pytest.approx((raw.std(),))
    assert data.source["mean"] == list(data.mean) and "normalised per channel" in data.source["preprocessing"]
    three = tiny_named(normalize="dataset", in_channels=3)
    assert three.mean == data.mean * 3 and three.std == data.std * 3
    np.testing.assert_allclose(three.batch("train", range(40)).std(axis=(0, 2, 3)), 1, atol=1e-5)
    with pytest.raises(DatasetError, match="normalize must be 'none' .* or 'dataset' .* got 'imagenet'"):
        tiny_named(normalize="imagenet")


def test_rgb_is_averaged_for_a_one_channel_model(tmp_path):
    x = np.random.default_rng(0).random((6, 3, 5, 5)).astype(np.float32)
    data = load_dataset(npz_set(tmp_path, x, np.arange(6) % 2), image_size=5, in_channels=1, test_fraction=0.5)
    assert data.x_train.shape[1] == 3  # stored as given
    np.testing.assert_allclose(data.batch("train", [0]), data.x_train[:1].mean(axis=1, keepdims=True), rtol=1e-6)
    assert "RGB averaged to 1 channel" in data.source["preprocessing"]
    with pytest.raises(DatasetError, match="images have 3 channels; the model takes 2"):
        load_dataset(npz_set(tmp_path, x, np.arange(6) % 2), image_size=5, in_channels=2)


def test_limit_subsets_each_given_split_or_the_whole_set_before_splitting(tiny_named):
    data = tiny_named(limit=15, seed=3)
    assert (len(data.y_train), len(data.y_test)) == (15, 15)
    assert "at most 15 images of each split (seed 3)" in data.source["split"]
    np.testing.assert_array_equal(data.x_train, tiny_named(limit=15, seed=3).x_train)
    digits = load_dataset("digits", image_size=8, in_channels=1, limit=100, seed=2)
    assert len(digits.y_train) + len(digits.y_test) == 100 and abs(len(digits.y_test) - 20) <= 3
    with pytest.raises(DatasetError, match="limit must be at least 2"):
        tiny_named(limit=1)


# --- background batches ------------------------------------------------------------------------------

def test_background_batches_come_in_order_and_raise_where_they_fail():
    assert list(batches_in_background(lambda i: i * i, range(10), depth=3)) == [i * i for i in range(10)]

    def fail_at_4(i):
        if i == 4:
            raise KeyError("batch 4")
        return i

    got = []
    with pytest.raises(KeyError, match="batch 4"):
        for value in batches_in_background(fail_at_4, range(10)):
            got.append(value)
    assert got == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="depth"):
        next(batches_in_background(str, range(2), depth=0))


def test_background_batches_stop_when_the_consumer_stops():
    made = []

    def make(i):
        made.append(i)
        return i

    stream = batches_in_background(make, range(1000), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert not any(t.name == "zoo-batches" and t.is_alive() for t in threading.enumerate())
    assert len(made) <= 3 + 2 + 1  # those taken, the queue's depth, the one in hand
    for _ in batches_in_background(make, iter(range(1000))):
        break
    time.sleep(0.01)
    assert not any(t.name == "zoo-batches" and t.is_alive() for t in threading.enumerate())


def test_the_pipeline_can_be_timed_alone(tiny_named):
    seconds = time_pipeline(tiny_named(image_size=32, in_channels=3), batch_size=8, count=3)
    assert 0 < seconds < 5


# --- digits and .npz, as before ----------------------------------------------------------------------

def test_digits_are_split_by_class_and_kept_raw():
    data = load_dataset("digits", image_size=32, in_channels=3, seed=0)
    assert data.x_train.shape[1:] == (1, 8, 8) and data.x_train.dtype == np.float32 and data.x_train.max() == 1
    assert len(data.y_train) + len(data.y_test) == 1797 and data.num_classes == 10
    assert abs(len(data.y_test) - 0.2 * 1797) < 10 and set(np.unique(data.y_test)) == set(range(10))
    assert data.batch("train", [0]).shape == (1, 3, 32, 32) and data.scale == 1.0
    assert data.source["split"] == "80/20 stratified, seed 0"
    again = load_dataset("digits", image_size=32, in_channels=3, seed=0)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    np.testing.assert_array_equal(again.batch("test", [5, 6]), data.batch("test", [5, 6]))


def test_resize_is_bilinear_with_half_pixel_centres():
    image = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(resize(image, 4)[0, 0, 0], [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(resize(image, 4)[0, 0, :, 0], [0, 0.5, 1.5, 2])
    image = np.random.default_rng(0).random((3, 2, 9, 7)).astype(np.float32)
    np.testing.assert_array_equal(resize(image, 5)[1:2], resize(image[1:2], 5))  # the same in any batch
    shrunk = resize(np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8).repeat(8, axis=2), 4)
    np.testing.assert_allclose(shrunk[0, 0, 0], [0.5, 2.5, 4.5, 6.5])  # two taps, no antialiasing (PyTorch's default)


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda tmp: "imagenet", "unknown dataset 'imagenet': expected one of fashion-mnist, mnist, cifar10, digits, "
                             "the path of an existing .npz file"),
    (lambda tmp: str(tmp / "no" / "such"), "no dataset file or folder"),
    (lambda tmp: str(tmp / "nothing") + "/", "dataset folder .* does not exist"),
    (lambda tmp: _npz(tmp, images=np.zeros((4, 8, 8)), y=np.arange(4)), "lacks array.*'x'"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 8, 8)), y=np.array([0, 1, -1, 1])), r"labels must lie in \[0, 2\)"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 8, 8)), y=np.array([0, 1, 0.5, 1])), "integer class indices"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 8, 8)), y=np.zeros(4)), "need at least 2 classes"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 64)), y=np.arange(4)), "got 2-d array of shape"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 1, 8, 8, 1)), y=np.arange(4)), "got 5-d array"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 5, 8, 8)), y=np.arange(4)), "cannot tell the channel axis"),
    (lambda tmp: _npz(tmp, x=np.full((4, 8, 8), np.nan), y=np.arange(4)), "NaN or infinite"),
    (lambda tmp: _npz(tmp, x=np.zeros((4, 8, 8)), y=np.arange(3)), "one per image"),
    (lambda tmp: tmp / "missing.npz", "does not exist"),
])
def test_bad_datasets_are_clear_errors(tmp_path, make, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(make(tmp_path), image_size=32, in_channels=1)


def test_labels_beyond_the_class_count_are_an_error():
    with pytest.raises(DatasetError, match=r"labels must lie in \[0, 5\); .* \(min 0, max 9\)"):
        load_dataset("digits", image_size=8, in_channels=1, num_classes=5)


def test_an_npz_is_kept_as_float32_and_recorded_with_its_checksum(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (10, 4, 4, 3)).astype(np.uint8)
    path = npz_set(tmp_path, x, np.arange(10) % 2)
    data = load_dataset(path, image_size=4, in_channels=3, test_fraction=0.3, seed=4)
    assert data.x_train.dtype == np.float32 and data.x_train.shape == (6, 3, 4, 4) and data.scale == 1.0
    assert data.source["md5"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert data.source["split"] == "70/30 stratified, seed 4" and "values as stored" in data.source["preprocessing"]


# --- through the command line: download, cache and errors as `train` meets them ----------------------

def test_train_downloads_through_the_mirror_then_trains_from_the_cache(tmp_path, monkeypatch, server, capsys):
    from compare import cli

    files = idx_files(n_train=40, n_test=20)
    use_files(monkeypatch, "fashion-mnist", files)
    server.files.update(files)
    args = ["train", "lenet_d2l", "--dataset", "fashion-mnist", "--data-mirror", server.url, "--data-dir",
            str(tmp_path / "data"), "--frameworks", "torch", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["dataset"] == "fashion-mnist" and saved["settings"]["train_images"] == 40
    recorded = json.dumps(saved["data"])
    assert all(md5(data) in recorded for data in files.values())  # the files trained on, by checksum
    server.files.clear()  # the server has nothing now: the second run needs the cache only
    requests = len(server.requests)
    assert cli.main([*args, "--overwrite"]) == 0
    assert len(server.requests) == requests


def test_train_reports_a_bad_download_in_one_line_and_leaves_nothing(tmp_path, monkeypatch, server, capsys):
    from compare import cli

    files = idx_files()
    use_files(monkeypatch, "fashion-mnist", files)
    server.files.update(files)
    server.files[IDX_NAMES[1]] = b"not the published file"
    code = cli.main(["train", "lenet_d2l", "--dataset", "fashion-mnist", "--data-mirror", server.url, "--data-dir",
                     str(tmp_path / "data"), "--frameworks", "torch", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("zoo-compare: error: --dataset: ") and IDX_NAMES[1] in err[-1]
    assert md5(files[IDX_NAMES[1]]) in err[-1]  # the checksum expected
    assert IDX_NAMES[1] not in leftovers(tmp_path / "data" / "fashion-mnist")
    assert not (tmp_path / "run" / "train.json").exists()


def test_train_takes_an_image_folder(tmp_path, capsys):
    from compare import cli

    root = tmp_path / "shapes"
    for i in range(6):
        write_image(root / "red" / f"{i}.png", (20 + i, 20), (200 + i, 0, 0))
        write_image(root / "blue" / f"{i}.png", (20, 24 + i), (0, 0, 200 + i))
    assert cli.main(["train", "lenet5", "--dataset", str(root), "--frameworks", "torch", "--epochs", "2",
                     "--out", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert saved["dataset"] == "shapes" and saved["settings"]["num_classes"] == 2
    assert (tmp_path / "run" / "weights" / "torch.safetensors").exists()
