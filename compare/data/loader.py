"""Batches made ahead in a background thread, and a way to time the data pipeline alone.

NumPy's resize (matrix products) and Pillow release the GIL, so one thread making the next batches
overlaps them with the framework's step. To see whether the pipeline keeps up, compare
`time_pipeline(data, batch_size)` with the seconds per training step: while it is the smaller,
the background thread hides it entirely.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

_DONE, _VALUE, _ERROR = range(3)


def batches_in_background(make_batch: Callable[[T], R], items: Iterable[T], depth: int = 2) -> Iterator[R]:
    """Yield make_batch(item) for each item in order, computed up to `depth` batches ahead in one
    background thread. An exception in make_batch (or in iterating `items`) is raised here, in the
    consumer, at the batch it belongs to. Stopping early (break, close(), an exception in the loop)
    stops the thread: it finishes at most the batch it is making and exits."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth!r}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message) -> bool:
        while not stop.is_set():
            try:
                ready.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if stop.is_set() or not put((_VALUE, make_batch(item))):
                    return
        except BaseException as error:  # handed to the consumer, whatever it is
            put((_ERROR, error))
            return
        put((_DONE, None))

    thread = threading.Thread(target=work, name="zoo-batches", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == _DONE:
                return
            if kind == _ERROR:
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def time_pipeline(dataset, batch_size: int, count: int = 20, *, split: str = "train", seed: int = 0) -> float:
    """Seconds to make one batch of `batch_size` random images with `dataset.batch`, in this thread:
    the mean over `count` batches after one warm-up batch. This is the cost the background thread
    has to hide behind each training step."""
    if batch_size < 1 or count < 1:
        raise ValueError(f"batch_size and count must be positive, got {batch_size!r} and {count!r}")
    total = len(dataset.y_train if split == "train" else dataset.y_test)
    rng = np.random.default_rng(seed)
    draws = [rng.choice(total, size=min(batch_size, total), replace=False) for _ in range(count + 1)]
    dataset.batch(split, draws[0])
    start = time.perf_counter()
    for indices in draws[1:]:
        dataset.batch(split, indices)
    return (time.perf_counter() - start) / count
