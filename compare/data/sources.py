"""The named datasets: where their owners publish them, and the published checksums.

Files, hosts and MD5s are those the datasets' pages publish, as PyTorch's vision library checks them
(its `datasets/mnist.py` and `cifar.py`). Hosts are tried in turn; `--data-mirror` replaces them all.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NamedSet:
    name: str                              # what --dataset takes, and the cache folder's name
    title: str
    format: str                            # "idx": four IDX .gz files; "cifar": the python-pickle tarball
    files: tuple[tuple[str, str], ...]     # (file name, MD5), fetched from every host as host + file name
    hosts: tuple[str, ...]                 # base URLs ending in "/", tried in turn
    classes: tuple[str, ...]
    homepage: str


IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR10_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")

# Looked up at load time, so tests can swap an entry (monkeypatch.setitem) for files they serve themselves.
SOURCES: dict[str, NamedSet] = {
    "fashion-mnist": NamedSet(
        "fashion-mnist", "Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017)", "idx",
        tuple(zip(IDX_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                              "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "https://github.com/zalandoresearch/fashion-mnist",
    ),
    "mnist": NamedSet(
        "mnist", "MNIST (LeCun, Cortes and Burges)", "idx",
        tuple(zip(IDX_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        # LeCun's page has refused downloads (HTTP 403) for years; PyTorch's copy is tried first.
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        tuple(str(digit) for digit in range(10)),
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "cifar10": NamedSet(
        "cifar10", "CIFAR-10 (Krizhevsky, 2009)", "cifar",
        (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        ("https://www.cs.toronto.edu/~kriz/",),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        "https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
}

# scikit-learn's 8x8 digits ship with scikit-learn: nothing to download.
BUILTIN = ("digits",)
NAMED = ("fashion-mnist", "mnist", "cifar10", "digits")
