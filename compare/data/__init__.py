"""Training data for `zoo-compare train`: named sets downloaded from their owners (Fashion-MNIST, MNIST,
CIFAR-10), scikit-learn's digits, a user's `.npz`, or a folder of images with one subfolder per class.

    data = load_dataset("fashion-mnist", image_size=224, in_channels=1)
    for x in batches_in_background(lambda index: data.batch("train", index), index_batches):
        ...   # float32 NCHW at the model's size, the same arrays in every framework

Downloads land in `data_dir()` (--data-dir, $ZOO_DATA_DIR, else ~/.cache/zoo/datasets), checked against
the published MD5; `mirror` / $ZOO_DATA_MIRROR replaces the official hosts. See the modules:
sources (the named sets), download, formats (IDX, CIFAR, .npz, image folders), dataset (Dataset and
load_dataset), loader (background batches, pipeline timing).
"""
from __future__ import annotations

from .dataset import NORMALIZE, Dataset, check_source, load_dataset, resize
from .download import data_dir
from .errors import DatasetError, DownloadError
from .loader import batches_in_background, time_pipeline
from .sources import NAMED

__all__ = ["NAMED", "NORMALIZE", "Dataset", "DatasetError", "DownloadError", "batches_in_background", "check_source",
           "data_dir", "load_dataset", "resize", "time_pipeline"]
