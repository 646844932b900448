"""One framework-neutral operation count per model: multiply-adds (MACs) of its convolutions and dense layers.

The count is taken once, by the reference framework's backend (`count_macs`, which propagates shapes
without allocating weights or doing arithmetic), so it is the same number for every framework and
every table. MACs are the figure papers quote as "FLOPs"; element-wise work (activations, BatchNorm,
pooling, additions) is not counted, as in the papers.

Counts are memoised in-process and cached as JSON under the user's cache folder
($ZOO_CACHE_DIR, else $XDG_CACHE_HOME/classic-cnn-zoo, else ~/.cache/classic-cnn-zoo), keyed by
everything that changes them, so `list` over the whole registry stays fast.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import zoo

from .files import atomic_write_text

_MEMO: dict[str, int] = {}
_DISK: dict[str, int] | None = None


class FlopsUnavailable(RuntimeError):
    """The counter needs the reference framework; raised with the reason when it is missing or the model
    cannot be traced."""


def cache_path() -> Path:
    root = os.environ.get("ZOO_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "classic-cnn-zoo"
    return Path(root) / "macs.json"


def _key(name: str, input_size: int, num_classes: int | None, in_channels: int | None, counter,
         overrides: dict | None = None) -> str:
    spec = zoo.get_spec(name)
    # The config's repr holds every knob, so an edited spec (or a --set variant) does not reuse a stale count.
    return json.dumps([name, input_size, num_classes or spec.num_classes, in_channels or spec.in_channels,
                       repr(spec.configure(**(overrides or {}))), counter.version()])


def _counter():
    """The reference framework's backend, which counts the multiply-adds."""
    try:
        return zoo.backend(zoo.REFERENCE_FRAMEWORK)
    except zoo.FrameworkUnavailableError:
        title = zoo.FRAMEWORKS[zoo.REFERENCE_FRAMEWORK].title
        raise FlopsUnavailable(f"the operation counter needs {title}, which is not installed here") from None


def _load_disk() -> dict[str, int]:
    global _DISK
    if _DISK is None:
        try:
            _DISK = {k: int(v) for k, v in json.loads(cache_path().read_text()).items()}
        except (OSError, ValueError, AttributeError):
            _DISK = {}
    return _DISK


def _save_disk() -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(_load_disk(), indent=0, sort_keys=True))
    except OSError:
        pass  # a read-only home only costs a recount next time


def count_macs(name: str, input_size: int | None = None, *, num_classes: int | None = None,
               in_channels: int | None = None, overrides: dict | None = None) -> int:
    """Multiply-adds of one forward pass of one image of `input_size` x `input_size` (default: the spec's),
    of the model built with the family's knobs `overrides` where given."""
    spec = zoo.get_spec(name)
    input_size = input_size or spec.input_size[1]
    counter = _counter()
    key = _key(name, input_size, num_classes, in_channels, counter, overrides)
    if key in _MEMO:
        return _MEMO[key]
    disk = _load_disk()
    if key not in disk:
        try:
            extra = (overrides,) if overrides else ()
            disk[key] = int(counter.count_macs(name, input_size, num_classes, in_channels, *extra))
        except zoo.ZooError:
            raise
        except Exception as error:  # noqa: BLE001  (a model the counter cannot trace)
            raise FlopsUnavailable(str(error)) from None
        _save_disk()
    _MEMO[key] = disk[key]
    return disk[key]


def gflops(name: str, input_size: int | None = None) -> float:
    """Forward GFLOPs in the papers' sense: billions of multiply-adds per image."""
    return count_macs(name, input_size) / 1e9


_PROFILES: dict[str, dict] = {}


def stage_profile(name: str, input_size: int | None = None, *, overrides: dict | None = None) -> dict:
    """Per-stage multiply-adds, parameters, output shapes and receptive fields of registered model `name`
    (built with the family's knobs `overrides`), the stages being its spec's outline (`config.outline()`):
    the same counter as `count_macs`, so the stages add up to its total. The reference backend's
    `stage_profile` documents the fields; "outline" holds the spec's stages."""
    spec = zoo.get_spec(name)
    input_size = input_size or spec.input_size[1]
    config = spec.configure(**(overrides or {}))
    counter = _counter()
    key = _key(name, input_size, None, None, counter, overrides)
    if key not in _PROFILES:
        outline = config.outline()
        try:
            profile = counter.stage_profile(name, input_size, [stage.end for stage in outline],
                                            overrides=overrides or None)
        except zoo.ZooError:
            raise
        except Exception as error:  # noqa: BLE001  (a model the counter cannot trace)
            raise FlopsUnavailable(f"{name}: {error}") from None
        _PROFILES[key] = {**profile, "outline": outline}
    return _PROFILES[key]
