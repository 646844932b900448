"""Fetching a named set's files into the cache: checked against the published MD5, written atomically.

The cache is `data_dir()/<set name>/<file name>`. A file there whose MD5 is the published one is used
without touching the network, so a machine without one works once the files are put there by hand.
A download streams to `<file>.part-<random>` beside its final name, is checked (length against
Content-Length, then MD5) and only then renamed over the final name: an interrupted or corrupt
download leaves nothing behind, and two processes fetching the same file cannot see half of it.

`mirror` (or `$ZOO_DATA_MIRROR`) is a base URL that replaces every official host: the files are fetched
from `{mirror}/{file name}` only (one flat folder per set, so a mirror of several sets needs a mirror URL
per set, e.g. `http://host/datasets/cifar10`).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import socket
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DatasetError, DownloadError
from .sources import NamedSet

TIMEOUT_S = 30  # per connection attempt and per read: a stalled host fails instead of hanging
USER_AGENT = "classic-cnn-zoo/0.1 (zoo-compare train; Python urllib)"
CHUNK = 1 << 20


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The cache of downloaded datasets: `explicit` (--data-dir), else $ZOO_DATA_DIR, else
    $XDG_CACHE_HOME/zoo/datasets, else ~/.cache/zoo/datasets."""
    if explicit is not None and os.fspath(explicit):
        return Path(explicit).expanduser()
    if os.environ.get("ZOO_DATA_DIR"):
        return Path(os.environ["ZOO_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "zoo" / "datasets"


def mirror_url(explicit: str | None = None) -> str | None:
    """The mirror base URL: `explicit`, else $ZOO_DATA_MIRROR, else None (the official hosts)."""
    return explicit or os.environ.get("ZOO_DATA_MIRROR") or None


def md5_of(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Failed(Exception):
    """One URL that did not give the file; `offline` when no connection could be made at all."""

    def __init__(self, why: str, offline: bool = False) -> None:
        super().__init__(why)
        self.offline = offline


def fetch(named: NamedSet, folder: str | os.PathLike, *, mirror: str | None = None,
          progress: bool = True) -> dict[str, Path]:
    """Every file of `named` in `folder` (downloaded where missing or corrupt): {file name: path}."""
    folder = Path(folder)
    hosts = (mirror.rstrip("/") + "/",) if mirror else named.hosts
    paths = {name: folder / name for name, _ in named.files}
    missing = [(name, md5) for name, md5 in named.files if not _cached(paths[name], md5, progress)]
    if not missing:
        return paths
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot create the data folder {str(folder)!r} for {named.name}: {error}") from None
    try:
        _fetch_missing(named, folder, paths, missing, hosts, progress)
    except DownloadError:
        for made in created:  # a failed first download leaves no empty folders behind
            try:
                made.rmdir()
            except OSError:
                break
        raise
    return paths


def _fetch_missing(named: NamedSet, folder: Path, paths: dict[str, Path], missing: list[tuple[str, str]],
                   hosts: tuple[str, ...], progress: bool) -> None:
    for position, (name, md5) in enumerate(missing):
        tried = []
        for host in hosts:
            url = host + name
            try:
                _download(url, paths[name], md5, progress)
                break
            except _Failed as failure:
                tried.append((url, failure))
        else:
            if all(failure.offline for _, failure in tried):
                names = ", ".join(file for file, _ in missing[position:])
                raise DownloadError(
                    f"no network to download {named.name}: put {names} (from {' or '.join(hosts)}) "
                    f"into {os.path.join(str(folder), '')}"
                )
            reasons = "; ".join(f"{url}: {failure}" for url, failure in tried)
            raise DownloadError(f"could not download {name} for {named.name}: {reasons}")


def _cached(path: Path, md5: str, progress: bool) -> bool:
    if not path.is_file():
        return False
    actual = md5_of(path)
    if actual == md5:
        return True
    if progress:
        print(f"{path} has MD5 {actual}, expected {md5}: downloading it again", file=sys.stderr, flush=True)
    return False


def _download(url: str, target: Path, md5: str, progress: bool) -> None:
    part = target.with_name(f"{target.name}.part-{secrets.token_hex(6)}")
    try:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        except ValueError as error:  # a mirror given without its scheme, e.g. "host:8000/mnist"
            raise _Failed(f"not a URL ({error})") from None
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as error:
            raise _Failed(f"HTTP {error.code} {error.reason}") from None
        except urllib.error.URLError as error:
            # A refused or unresolvable connection means no network; a certificate it refused is not that.
            raise _Failed(_reason(error.reason), offline=not isinstance(error.reason, ssl.SSLError)) from None
        except (OSError, http.client.HTTPException) as error:
            raise _Failed(_reason(error), offline=True) from None
        with response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.strip().isdigit() else None
            digest, received = hashlib.md5(), 0
            bar = _bar(expected, target.name, url, progress)
            try:
                with open(part, "wb") as out:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                # An OSError may also be our own disk; say which, not just "network".
                if isinstance(error, OSError) and error.filename:
                    raise DownloadError(f"cannot write {error.filename}: {error.strerror}") from None
                raise _Failed(f"the transfer broke off after {received} bytes: {_reason(error)}") from None
            finally:
                if bar is not None:
                    bar.close()
        if expected is not None and received != expected:
            raise _Failed(f"the connection closed after {received} of {expected} bytes")
        actual = digest.hexdigest()
        if actual != md5:
            raise _Failed(f"MD5 {actual}, expected {md5} ({received} bytes)")
        os.replace(part, target)
        if progress and bar is None:
            print(f"downloaded {url} ({received:,} bytes) to {target}", file=sys.stderr, flush=True)
    finally:
        try:
            part.unlink(missing_ok=True)
        except OSError:
            pass


def _reason(reason: object) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"timed out after {TIMEOUT_S} s"
    if isinstance(reason, http.client.IncompleteRead):
        return f"incomplete read ({len(reason.partial)} bytes)"
    return str(reason) or type(reason).__name__


def _bar(total: int | None, name: str, url: str, progress: bool):
    """tqdm over bytes on a terminal; elsewhere one line when the download starts (and one when it ends)."""
    if not progress:
        return None
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                        dynamic_ncols=True, leave=False)
        except ImportError:
            pass
    size = f" ({total:,} bytes)" if total else ""
    print(f"downloading {url}{size}", file=sys.stderr, flush=True)
    return None


__all__ = ["DatasetError", "DownloadError", "data_dir", "fetch", "md5_of", "mirror_url"]
