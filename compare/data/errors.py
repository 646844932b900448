"""The data package's exceptions."""
from __future__ import annotations

from zoo.errors import ZooError


class DatasetError(ZooError, ValueError):
    """A dataset that cannot be used: unknown name, missing arrays, bad labels, images or files."""


class DownloadError(DatasetError):
    """A download that failed: unreachable host, HTTP error, truncated body or wrong checksum."""
